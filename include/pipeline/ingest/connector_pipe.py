"""Reading a connector's output through a pipe wide enough for it.

A Python connector (the Airbyte CDK's `PrintBuffer`) writes its messages in bursts every 0.1 s:
~350 KB at once from a source emitting 12,000 records/s. Linux's default pipe holds 64 KiB, so
such a write blocks until the reader has parsed nearly all of it, and meanwhile the connector
produces nothing; then the reader waits, idle, for the next burst. On 2 cores the connector and
its reader took turns instead of working at once: an embedded sync of 2M records ran at 6,200
records/s with both processes half idle, where the connector alone emits 12,800 (350 s, then
163 s with the pipe widened). The embedded runner has its own copy of `widen_pipe` (it imports
only the standard library and PyAirbyte); this one is for readers on the Airflow side.
"""

from __future__ import annotations

import fcntl
from typing import IO, Any

PIPE_BYTES = 8 << 20  # wanted; capped by /proc/sys/fs/pipe-max-size (1 MiB by default)


def widen_pipe(stream: IO[Any], wanted: int = PIPE_BYTES) -> int | None:
    """Grow the pipe under `stream` to `wanted` bytes or the system's limit if lower: its new size,
    or None if the file or the platform does not allow it (then it is left as it was)."""
    try:
        with open("/proc/sys/fs/pipe-max-size", encoding="ascii") as f:
            limit = int(f.read())
    except (OSError, ValueError):
        limit = 1 << 20
    try:
        return fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, min(wanted, limit))
    except (OSError, AttributeError, ValueError):
        return None
