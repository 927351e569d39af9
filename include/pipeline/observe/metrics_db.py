"""A connection to the metrics database bounded on every side, so a database that is down or
stops answering never stalls the pipeline: connect_timeout, TCP keepalives, tcp_user_timeout,
server-side statement and lock timeouts, and a client-side deadline after which the socket is
shut down (a query blocked on a server that never answers then fails at once).

The writer (observe/writer.py) and the migrations (observe/schema.py) both connect through here.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading

from include.pipeline import settings


def connect(params: dict, *, deadline: float | None = None):
    """A short-lived connection (one transaction) to the metrics database, bounded on every side:
    connect_timeout, keepalives, tcp_user_timeout, server-side statement and lock timeouts, and a
    client-side deadline (`deadline` seconds, default STACK_METRICS_DEADLINE) for the whole use."""
    import psycopg2

    params = dict(params)
    params.setdefault("connect_timeout", settings.METRICS_CONNECT_TIMEOUT)
    for key, value in KEEPALIVES.items():
        params.setdefault(key, value)
    conn = psycopg2.connect(
        **params,
        application_name="stack-metrics",
        options="-c statement_timeout=5000 -c lock_timeout=2000",
        connection_factory=_bounded_connection_class(),
    )
    conn.start_deadline(deadline_seconds() if deadline is None else deadline)
    return conn


# libpq: probe an idle connection after 5 s, give up after 2 unanswered probes 2 s apart; give up
# on data the peer has not acknowledged after 10 s (a host that vanished mid-write).
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 2,
    "tcp_user_timeout": 10_000,
}


def deadline_seconds() -> float:
    """STACK_METRICS_DEADLINE: how long one use of a connection may take, in seconds."""
    return float(os.environ.get("STACK_METRICS_DEADLINE", "10"))


_bounded_class = None


def _bounded_connection_class():
    """psycopg2's connection with a deadline: after it, the socket is shut down, so a query
    blocked on a server that never answers fails at once instead of waiting forever."""
    global _bounded_class
    if _bounded_class is not None:
        return _bounded_class
    import psycopg2.extensions

    class BoundedConnection(psycopg2.extensions.connection):
        expired = False

        def start_deadline(self, seconds: float) -> None:
            self._guard = threading.Lock()
            self._timer = threading.Timer(seconds, self._expire)
            self._timer.daemon = True
            self._timer.start()

        def _expire(self) -> None:
            with self._guard:  # never after close(): the descriptor could belong to another socket
                if self.closed:
                    return
                self.expired = True
                with contextlib.suppress(Exception):  # already broken: nothing to shut down
                    sock = socket.fromfd(self.fileno(), socket.AF_INET, socket.SOCK_STREAM)
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    finally:
                        sock.close()  # the duplicate descriptor only

        def close(self) -> None:
            timer = getattr(self, "_timer", None)
            if timer is None:
                return super().close()
            timer.cancel()
            with self._guard:
                super().close()

    _bounded_class = BoundedConnection
    return _bounded_class
