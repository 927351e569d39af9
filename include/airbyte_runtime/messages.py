"""Airbyte protocol messages as the runtime reads them, with a fast path for RECORD lines.

The contract is the Airbyte protocol as published in airbyte-protocol-models (`AirbyteMessage`
and friends, pinned by tests/ingest/test_runtime_contract.py). A RECORD line is most of a
connector's output, and parsing it into pydantic models costs more than the rest of the sync's
work per record, so RECORD lines are read with orjson into the few fields the writer uses; every
other message (STATE, LOG, TRACE) is parsed by the protocol models.
"""

from __future__ import annotations

from typing import Any

import orjson  # a PyAirbyte dependency, in .venv-airbyte

RECORD_PREFIXES = ('{"type":"RECORD"', '{"type": "RECORD"')


class FastRecord:
    """The fields of an AirbyteRecordMessage the processor and progress tracker read."""

    __slots__ = ("stream", "data", "emitted_at", "namespace")

    def __init__(self, stream: str, data: dict, emitted_at: int, namespace: str | None) -> None:
        self.stream, self.data, self.emitted_at, self.namespace = stream, data, emitted_at, namespace


class FastMessage:
    """A RECORD AirbyteMessage without pydantic: `type`, `record`, and no trace/state/log."""

    __slots__ = ("record",)
    trace = state = log = control = None

    def __init__(self, record: FastRecord) -> None:
        self.record = record

    @property
    def type(self):  # noqa: ANN201 - airbyte_protocol's Type.RECORD, imported once, lazily
        record_type = FastMessage.__dict__.get("_record_type")
        if record_type is None:
            from airbyte_protocol.models import Type

            record_type = FastMessage._record_type = Type.RECORD
        return record_type


# Where `fast_execute` hands each record line's stream, data, emitted_at and size, while a processor
# is reading (set by CopyPostgresSqlProcessor.process_airbyte_messages), instead of yielding it.
RECORD_SINK: Any = None


def fast_execute(self, args: list[str], stdin=None, *, progress_tracker=None):  # noqa: ANN001, ANN201
    """PyAirbyte's `ConnectorBase._execute` with RECORD lines parsed by orjson instead of pydantic.

    Same contract: yields messages, peeks non-record ones (logs, connector errors), wraps failures
    in AirbyteConnectorFailedError. A RECORD line orjson cannot read, or one without stream/data,
    falls back to PyAirbyte's parser, which raises or logs it exactly as before.

    While the cache's processor reads (RECORD_SINK is set), a record goes straight to it instead
    of up PyAirbyte's chain of generators (progress tally, read loop, processor loop), a sizeable
    share of the runner's work per record. It is written before the next line is read, so every
    STATE message still reaches the processor after the records it covers, as before.
    """
    from airbyte import exceptions as exc
    from airbyte_protocol.models import AirbyteMessage, Type

    record_type = Type.RECORD
    loads = orjson.loads
    self.executor.ensure_installation(auto_fix=False)
    try:
        for line in self.executor.execute(args, stdin=stdin, suppress_stderr=progress_tracker is not None):
            if line.startswith(RECORD_PREFIXES):
                try:
                    record = loads(line)["record"]
                    stream, data, emitted_at = record["stream"], record["data"], record["emitted_at"]
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    pass
                else:
                    if type(data) is dict and type(stream) is str:
                        sink = RECORD_SINK
                        if sink is not None:
                            sink(stream, data, emitted_at, len(line))
                            continue
                        message = FastMessage(FastRecord(stream, data, emitted_at, record.get("namespace")))
                        if progress_tracker:
                            progress_tracker.tally_bytes_read(bytes_read=len(line), stream_name=stream)
                        yield message
                        continue
            try:
                parsed: AirbyteMessage = AirbyteMessage.model_validate_json(json_data=line)
                if progress_tracker and parsed.type is record_type:
                    progress_tracker.tally_bytes_read(bytes_read=len(line), stream_name=parsed.record.stream)
                self._peek_airbyte_message(parsed)
                yield parsed
            except Exception:  # noqa: BLE001 - as PyAirbyte: a line that is not a message is a log line
                self._print_info_message(line)
    except exc.AirbyteSubprocessFailedError as ex:
        raise exc.AirbyteConnectorFailedError(
            connector_name=self.name, log_text=ex.log_text, context={"exit_code": ex.exit_code}
        ) from None
    except Exception as e:  # noqa: BLE001
        raise exc.AirbyteConnectorFailedError(
            connector_name=self.name, log_text=self._last_log_messages, original_exception=e
        ) from None
