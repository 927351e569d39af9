"""The embedded engine's sync of a connection into the lake (`type: s3`), from Airflow's side.

Resolves the declaration (the connector's executable and config, the catalog, the secrets to
redact) and hands the run to the runtime's lake destination (include/airbyte_runtime/lake.py),
whose connector process code is the warehouse's. When a warehouse connection's read feeds this
lake connection too (shared_read.py), `lake_part` is what that read is given of the lake, and
`result_from_reader` the lake task's result from what it reports.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from include.airbyte_runtime import lake
from include.airbyte_runtime.lake import (
    LakeSync,
    S3DestinationError,
    client_for,
    discover,
    load_state,
    object_key,
    run_connector,
)
from include.airbyte_runtime.parquet import StreamLayout
from include.airbyte_runtime.shared_lake import normalized
from include.pipeline.ingest.declaration import FILE_COLUMNS, FILE_CURSOR, Connection, load_catalog
from include.pipeline.ingest.embedded import EmbeddedSyncError, child_env, connector_executable, secret_redactor


def configured_catalog(connection, discovered: dict[str, dict]) -> dict:
    """The configured catalog of the connection's streams (append into the lake)."""
    streams = []
    for s in connection.streams:
        if s.name not in discovered:
            raise S3DestinationError(
                f"connection '{connection.name}': the source does not offer stream {s.name!r} (it offers {sorted(discovered)})"
            )
        stream = discovered[s.name]
        incremental = s.sync_mode.startswith("incremental")
        entry = {
            "stream": stream,
            "sync_mode": "incremental" if incremental else "full_refresh",
            "destination_sync_mode": "overwrite" if s.sync_mode == "full_refresh_overwrite" else "append",
        }
        if incremental:
            entry["cursor_field"] = [s.cursor_field] if s.cursor_field else stream.get("default_cursor_field") or []
        if s.primary_key:
            entry["primary_key"] = [[k] for k in s.primary_key]
        streams.append(entry)
    return {"streams": streams}


def sync_to_lake(
    connection,
    *,
    full_refresh: bool = False,
    log: Callable[[str], None] = print,
    environ: dict[str, str] | None = None,
    rows_per_group: int | None = None,
    rows_per_object: int | None = None,
    config_overrides: dict | None = None,
) -> dict:
    """Run the connection's source and land its records in the lake; return the figures per stream.
    `config_overrides`: source settings over the declared ones (a test's bucket)."""
    destination = connection.destination
    if destination.type != "s3" or destination.s3 is None:
        raise S3DestinationError(f"connection '{connection.name}' does not go to an s3 destination")
    s3 = destination.s3.resolved(environ)
    executable = connector_executable(connection.source.connector)
    if not executable.exists():
        raise EmbeddedSyncError(
            f"the connector {connection.source.connector} is not installed ({executable}): run `make setup`"
        )
    config = {**connection.source.resolved_config(environ), **(config_overrides or {})}
    redact = secret_redactor(connection.source.connector, config, [s3.secret_access_key, s3.access_key_id])

    def say(line: str) -> None:
        log(redact(line))

    client = client_for(s3)
    if not client.bucket_exists(s3.bucket):
        client.make_bucket(s3.bucket)
    started = time.monotonic()
    tail: list[str] = []
    with tempfile.TemporaryDirectory(prefix=f"lake-sync-{connection.name}-") as private:  # mode 0700
        config_path = Path(private) / "config.json"
        fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(config, fh)
        env = child_env()
        discovered = declared_catalog(connection.source) or discover(executable, config_path, env, say, tail)
        catalog = configured_catalog(connection, discovered)
        catalog_path = Path(private) / "catalog.json"
        catalog_path.write_text(json.dumps(catalog))
        args = ["read", "--config", str(config_path), "--catalog", str(catalog_path)]
        state = None if full_refresh else load_state(client, s3, connection.name)
        if state:
            state_path = Path(private) / "state.json"
            state_path.write_text(json.dumps(state))
            args += ["--state", str(state_path)]
        say(
            f"embedded engine: '{connection.name}' with {connection.source.connector} into s3://{s3.bucket}/{s3.path_prefix}/"
            f" ({len(catalog['streams'])} streams, {'from its saved state' if state else 'from the start'})"
        )
        layouts = {
            s["stream"]["name"]: StreamLayout.of(s["stream"].get("json_schema") or {}) for s in catalog["streams"]
        }
        overwrite = {s.name for s in connection.streams if s.sync_mode == "full_refresh_overwrite"}
        sink = LakeSync(s3, connection.name, client, layouts, overwrite, rows_per_group=rows_per_group or lake.ROWS_PER_GROUP,
                        rows_per_object=rows_per_object or lake.ROWS_PER_OBJECT, log=say,
                        schema_policy=connection.non_breaking_schema_updates_behavior)  # fmt: skip
        messages = run_connector(executable, args, env, say, tail)
        try:
            sink.consume(messages)
            figures = sink.commit()
        finally:
            messages.close()  # a failed upload stops the connector too: nothing left running
            sink.close()
    seconds = round(time.monotonic() - started, 3)
    total = sum(f["records"] for f in figures.values())
    say(f"embedded engine: '{connection.name}' done in {seconds} s, {total} records into the lake")
    return lake_result(connection, s3, figures, sink.started, seconds=seconds, uploaded=sink.uploaded_bytes,
                       schema_changes=sink.schema_changes)  # fmt: skip


def lake_result(connection, s3, figures: dict[str, dict], started, *, seconds: float, uploaded: int,
                schema_changes: list) -> dict:  # fmt: skip
    """The lake task's result (its XCom: per-stream figures, for metrics, outlets and lineage)."""
    streams = {
        s.name: {  # `table`: where metrics.syncs' destination_table points for this stream
            "records": 0,
            "bytes": 0,
            **figures.get(s.name, {}),
            "table": f"s3://{s3.bucket}/{object_key(s3, s.name, None, started, 0).rsplit('/', 1)[0]}/",
        }  # fmt: skip
        for s in connection.streams
    }
    return {"connection": connection.name, "streams": streams, "seconds": seconds, "engine": "embedded",
            "destination": f"s3://{s3.bucket}/{s3.path_prefix}/", "bytes": uploaded,
            "schema_changes": schema_changes, "bad_files": []}  # fmt: skip


def lake_part(lake: Connection, environ: dict[str, str] | None = None) -> dict:
    """The runtime spec's `lake` block: the lake connection's destination (its keys resolved from
    `environ`: the spec goes on the runtime's stdin, never argv or env), its streams' schemas as the
    lake's own sync declares them, the overwrite streams and its schema-change policy."""
    s3 = lake.destination.s3.resolved(environ)
    declared = declared_catalog(lake.source) or {}
    return {
        "connection": lake.name,
        "s3": {
            "bucket": s3.bucket,
            "path_prefix": s3.path_prefix,
            "path_format": s3.path_format,
            "endpoint": s3.endpoint,
            "region": s3.region,
            "access_key_id": s3.access_key_id,
            "secret_access_key": s3.secret_access_key,
        },
        "json_schemas": {s.name: declared[s.name]["json_schema"] for s in lake.streams if s.name in declared},
        "overwrite": [s.name for s in lake.streams if s.sync_mode == "full_refresh_overwrite"],
        "schema_policy": lake.non_breaking_schema_updates_behavior,
    }


def result_from_reader(
    lake: Connection, reader: str, reported: dict | None, *, log: Callable[[str], None] = print,
    environ: dict[str, str] | None = None,
) -> dict | None:  # fmt: skip
    """The lake task's result when `reader`'s sync (its result `reported`, this run) wrote the lake's
    part and the lake's saved state is the one it reports; None: the lake reads on its own (why logged)."""
    part = (reported or {}).get("lake") if isinstance(reported, dict) else None
    if not part or part.get("connection") != lake.name:
        log(f"shared read: {reader}'s sync in this run did not write {lake.name}'s part: reading on its own")
        return None
    if part.get("failed"):
        log(f"shared read: {reader}'s sync could not write {lake.name}'s part ({part['failed']}): reading on its own")
        return None
    s3 = lake.destination.s3.resolved(environ)
    saved = load_state(client_for(s3), s3, lake.name)
    if normalized(saved) != normalized(part.get("state")):
        log(f"shared read: {lake.name}'s saved state is not the one {reader}'s sync reported: reading on its own")
        return None
    started = dt.datetime.fromisoformat(part["started"])
    result = lake_result(lake, s3, part["streams"], started, seconds=part.get("seconds", 0.0),
                         uploaded=part.get("bytes", 0), schema_changes=part.get("schema_changes") or [])  # fmt: skip
    total = sum(f["records"] for f in part["streams"].values())
    log(f"read by {reader}'s sync in this run: {total} records into {result['destination']}")
    result["read_by"] = reader
    return result


def declared_catalog(source) -> dict[str, dict] | None:
    """The streams of a file-based source from its declaration (each `input_schema` plus the
    columns source-s3 adds), or of the connector's committed catalog snapshot: what `discover`
    would answer, without starting the connector once more (a start costs seconds). None: unknown."""
    streams = source.config.get("streams")
    if not isinstance(streams, list):
        return load_catalog(source.connector) or None
    catalog = {}
    for item in streams:
        schema = item.get("input_schema")
        if isinstance(schema, str):
            schema = json.loads(schema)
        if not isinstance(schema, dict) or not schema:
            return None  # inferred by the connector: ask it
        properties = {column: {"type": ["null", str(kind).strip().lower()]} for column, kind in schema.items()}
        catalog[item["name"]] = {
            "name": item["name"],
            "json_schema": {"type": "object", "properties": {**properties, **FILE_COLUMNS}},
            "supported_sync_modes": ["full_refresh", "incremental"],
            "source_defined_cursor": True,
            "default_cursor_field": [FILE_CURSOR],
        }
    return catalog
