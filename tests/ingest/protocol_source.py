"""A minimal Airbyte source for tests: speaks the protocol (spec, check, discover, read), no CDK.

It serves one stream `items` from a JSON file named in its config, so a test controls every value
(tabs, quotes, unicode, NULLs, changed versions of a record) while PyAirbyte runs it exactly as it
runs a real connector. Incremental reads use the cursor `updated_at` inclusively (records with
the state's cursor value are read again, as file-based sources do), so a rerun re-emits the last
records and the merge must absorb them. `fail_after: N` exits with an error after N records;
`pause_after: N` stops sending after N records and hangs (a sync caught mid-way, for kill tests).
`stall_after: N` emits N records and a STATE message for them, touches the file `stall_marker`
and hangs, so a test can kill the sync mid-way. `fail_discover: true` makes discover exit 1 with
a TRACE error message. `copies: N` serves N streams with the same schema and records (`items`,
`items_2` ... `items_N`) and reads them interleaved, one record of each in turn.
Standard library only: any Python interpreter can run it.
"""

from __future__ import annotations

import json
import sys
import time

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": ["null", "string"]},
        "amount": {"type": ["null", "number"]},
        "active": {"type": ["null", "boolean"]},
        "payload": {"type": ["null", "object"]},
        "tags": {"type": ["null", "array"], "items": {"type": "string"}},
        "updated_at": {"type": "string", "format": "date-time", "airbyte_type": "timestamp_with_timezone"},
    },
}
STREAM = {
    "name": "items",
    "json_schema": SCHEMA,
    "supported_sync_modes": ["full_refresh", "incremental"],
    "source_defined_cursor": True,
    "default_cursor_field": ["updated_at"],
    "source_defined_primary_key": [["id"]],
}


def emit(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")


def option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def streams(config: dict) -> list[dict]:
    return [STREAM] + [{**STREAM, "name": f"items_{k}"} for k in range(2, int(config.get("copies") or 1) + 1)]


def read(config: dict, catalog: dict, state: list | dict | None) -> int:
    records = json.loads(open(config["records_file"], encoding="utf-8").read())
    configured = {s["stream"]["name"]: s for s in catalog["streams"]}
    if len(configured) > 1:
        return read_copies(records, list(configured))
    if "items" not in configured:
        return 0
    cursor = None
    for entry in state or []:
        if entry.get("type") == "STREAM" and entry["stream"]["stream_descriptor"]["name"] == "items":
            cursor = (entry["stream"].get("stream_state") or {}).get("updated_at")
    incremental = configured["items"]["sync_mode"] == "incremental"
    emit({"type": "TRACE", "trace": {"type": "STREAM_STATUS", "emitted_at": 0, "stream_status": {
        "stream_descriptor": {"name": "items"}, "status": "STARTED"}}})  # fmt: skip
    newest = cursor
    for n, record in enumerate(records):
        if incremental and cursor is not None and record["updated_at"] < cursor:
            continue
        if config.get("pause_after") is not None and n >= config["pause_after"]:
            sys.stdout.flush()
            time.sleep(600)
        if config.get("fail_after") is not None and n >= config["fail_after"]:
            sys.stderr.write("protocol_source: failing on purpose\n")
            return 1
        if config.get("stall_after") is not None and n >= config["stall_after"]:
            emit({"type": "STATE", "state": {"type": "STREAM", "stream": {
                "stream_descriptor": {"name": "items"}, "stream_state": {"updated_at": newest}}}})  # fmt: skip
            sys.stdout.flush()
            open(config["stall_marker"], "w").close()
            time.sleep(3600)  # killed before this ends
        emit({"type": "RECORD", "record": {"stream": "items", "data": record, "emitted_at": 1767225600000 + n}})
        newest = max(newest or record["updated_at"], record["updated_at"])
    emit({"type": "STATE", "state": {"type": "STREAM", "stream": {
        "stream_descriptor": {"name": "items"}, "stream_state": {"updated_at": newest}}}})  # fmt: skip
    emit({"type": "TRACE", "trace": {"type": "STREAM_STATUS", "emitted_at": 0, "stream_status": {
        "stream_descriptor": {"name": "items"}, "status": "COMPLETE"}}})  # fmt: skip
    return 0


def read_copies(records: list[dict], names: list[str]) -> int:
    """Every record to each of `names`, interleaved; then each stream's state and COMPLETE."""
    for name in names:
        emit({"type": "TRACE", "trace": {"type": "STREAM_STATUS", "emitted_at": 0, "stream_status": {
            "stream_descriptor": {"name": name}, "status": "STARTED"}}})  # fmt: skip
    for n, record in enumerate(records):
        for name in names:
            emit({"type": "RECORD", "record": {"stream": name, "data": record, "emitted_at": 1767225600000 + n}})
    for name in names:
        newest = max((r["updated_at"] for r in records), default=None)
        emit({"type": "STATE", "state": {"type": "STREAM", "stream": {
            "stream_descriptor": {"name": name}, "stream_state": {"updated_at": newest}}}})  # fmt: skip
        emit({"type": "TRACE", "trace": {"type": "STREAM_STATUS", "emitted_at": 0, "stream_status": {
            "stream_descriptor": {"name": name}, "status": "COMPLETE"}}})  # fmt: skip
    return 0


def main(args: list[str]) -> int:
    command = args[0] if args else ""
    if command == "spec":
        emit({"type": "SPEC", "spec": {"connectionSpecification": {
            "type": "object", "required": ["records_file"],
            "properties": {"records_file": {"type": "string"}, "fail_after": {"type": "integer"},
                           "pause_after": {"type": "integer"},
                           "stall_after": {"type": "integer"}, "stall_marker": {"type": "string"},
                           "fail_discover": {"type": "boolean"}, "copies": {"type": "integer"}},
        }}})  # fmt: skip
        return 0
    config = json.loads(open(option(args, "--config"), encoding="utf-8").read())
    if command == "check":
        emit({"type": "CONNECTION_STATUS", "connectionStatus": {"status": "SUCCEEDED"}})
        return 0
    if command == "discover":
        if config.get("fail_discover"):
            emit({"type": "TRACE", "trace": {"type": "ERROR", "emitted_at": 0, "error": {
                "message": "protocol_source: discover refused (fail_discover)", "failure_type": "config_error"}}})  # fmt: skip
            return 1
        emit({"type": "CATALOG", "catalog": {"streams": streams(config)}})
        return 0
    if command == "read":
        catalog = json.loads(open(option(args, "--catalog"), encoding="utf-8").read())
        state_path = option(args, "--state")
        state = json.loads(open(state_path, encoding="utf-8").read()) if state_path else None
        return read(config, catalog, state)
    sys.stderr.write(f"protocol_source: unknown command {command!r}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
