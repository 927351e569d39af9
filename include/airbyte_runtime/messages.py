"""Airbyte protocol messages as the runtime reads them from a connector, with a fast path for RECORD lines.

The contract is the Airbyte protocol as published in airbyte-protocol-models (`AirbyteMessage` and
the messages it carries: RECORD, STATE, LOG, TRACE, SPEC, CATALOG; pinned by
tests/ingest/test_runtime_contract.py). A RECORD line is most of a connector's output, and parsing
it into pydantic models costs more than the rest of the sync's work per record, so RECORD lines are
read with orjson into the three fields the writer uses; every other message is parsed by the
protocol models. A line that is not a message is the connector's own log output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson  # in .venv-airbyte (include/airbyte/requirements/pyairbyte.txt)

RECORD_PREFIXES = ('{"type":"RECORD"', '{"type": "RECORD"')


def read_messages(lines: Iterator[str], take_record: Callable[[str, dict, int], None]) -> Iterator[Any]:
    """The connector's non-record messages (AirbyteMessage models, or the text of a line that is no
    message); each record goes to `take_record(stream, data, emitted_at)` before the next line is
    read, so every STATE message comes after the records it covers."""
    from airbyte_protocol.models import AirbyteMessage, Type

    loads, validate, record_type = orjson.loads, AirbyteMessage.model_validate_json, Type.RECORD
    for line in lines:
        if line.startswith(RECORD_PREFIXES):
            try:
                record = loads(line)["record"]
                stream, data, emitted_at = record["stream"], record["data"], record["emitted_at"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                pass  # the models' parser below decides what it is
            else:
                if type(data) is dict and type(stream) is str:
                    take_record(stream, data, emitted_at)
                    continue
        if not line.startswith("{"):
            if line.strip():
                yield line.rstrip("\n")
            continue
        try:
            message = validate(line)
        except ValueError:
            yield line.rstrip("\n")  # not a protocol message: a log line
            continue
        if message.type is record_type:
            take_record(message.record.stream, message.record.data, message.record.emitted_at)
            continue
        yield message


def first_answer(output: str, kind: str) -> dict | None:
    """The content of the first `kind` message (SPEC: its `spec`, CATALOG: its `catalog`) in a
    connector's output, as JSON, or None if there is none."""
    from airbyte_protocol.models import AirbyteMessage

    field = {"SPEC": "spec", "CATALOG": "catalog"}[kind]
    for line in output.splitlines():
        if line.startswith("{") and kind in line[:40]:
            try:
                message = AirbyteMessage.model_validate_json(line)
            except ValueError:
                continue
            if message.type.value == kind:
                return getattr(message, field).model_dump(mode="json", by_alias=True, exclude_none=True)
    return None


def error_of(output: str) -> str:
    """The connector's own words for a failure: its TRACE errors' messages and its last ERROR logs."""
    found = []
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if message.get("type") == "TRACE" and (message.get("trace") or {}).get("type") == "ERROR":
            found.append(((message["trace"].get("error") or {}).get("message") or "").strip())
        elif message.get("type") == "LOG" and (message.get("log") or {}).get("level") in ("ERROR", "FATAL"):
            found.append((message["log"].get("message") or "").strip())
    return "; ".join(f for f in found[-5:] if f)
