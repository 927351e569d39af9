"""One read of a connector into the warehouse: the protocol's `read`, driven by the runtime itself.

The Airbyte protocol (airbyte-protocol-models) is the contract: the connector gets `read --config
--catalog --state` (the configured catalog catalog.py builds, the state state.py stored), and
sends RECORD, STATE, LOG and TRACE messages on its stdout (messages.py). Records go to the
warehouse writer as they come (destination_postgres.py); when the connector has exited cleanly,
each stream commits with its state. The connector runs through the same process code as the lake's
(connector.py: wide pipe, read ahead, killed with the runtime). A connector that fails, or a load
that fails, commits nothing of the read: its stages are dropped and its state does not move.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from include.airbyte_runtime.connector import ConnectorError, secret_file, start_connector, stop
from include.airbyte_runtime.messages import read_messages
from include.airbyte_runtime.report import log


def read_into(spec: dict, catalog: dict, state: list, writer: Any) -> None:
    """Run the connector's `read` and hand everything it sends to `writer`; commit when it exits 0."""
    from airbyte_protocol.models import AirbyteStreamStatus, Type

    folder = spec.get("work_dir") or None
    files = [
        secret_file(spec["config"], folder, "config-"),
        secret_file(catalog, folder, "catalog-"),
        secret_file(state, folder, "state-"),
    ]
    args = [spec["executable"], "read", "--config", files[0], "--catalog", files[1], "--state", files[2]]
    said: list[str] = []  # the connector's errors and log lines, for a failure's message
    process = None
    try:
        process = start_connector(args)
        for message in read_messages(iter(process.stdout.readline, ""), writer.take_record):
            if isinstance(message, str):
                said[:] = (said + [message])[-30:]
                continue
            kind = message.type
            if kind is Type.STATE:
                writer.take_state(message.state)
            elif kind is Type.TRACE and message.trace.stream_status is not None:
                status = message.trace.stream_status
                if status.status is AirbyteStreamStatus.COMPLETE:
                    writer.stream_complete(status.stream_descriptor.name)
            elif kind is Type.TRACE and message.trace.error is not None:
                text = message.trace.error.message
                log(f"connector error: {text}")
                said[:] = (said + [text])[-30:]
            elif kind is Type.LOG:
                level = str(message.log.level.value)
                writer.connector_log(level, message.log.message, message.log.stack_trace)
                if level in ("WARN", "ERROR", "FATAL"):
                    said[:] = (said + [message.log.message])[-30:]
        code = process.wait()
        if code != 0:
            said += process.stderr_tail()
            raise ConnectorError(
                f"{spec['connector']} read failed (exit {code}); nothing of this read was committed. "
                "It said:\n" + "\n".join(said[-30:])
            )
        writer.commit()
    except BaseException:
        if process is not None:
            stop(process)
        writer.abort()
        raise
    finally:
        for path in files:
            with contextlib.suppress(OSError):
                os.unlink(path)
