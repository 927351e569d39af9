"""Fixtures of the observability tests: a migrated metrics schema on the session Postgres."""

from __future__ import annotations

import socket
import threading

import pytest

from include.pipeline.observe import schema, writer


@pytest.fixture
def metrics_params(warehouse) -> dict:
    """psycopg2 params of a fresh database with the metrics schema; the writer is pointed at it."""
    params = {
        "host": warehouse.host, "port": warehouse.port, "user": warehouse.user,
        "password": warehouse.password, "dbname": warehouse.database, "connect_timeout": 2,
    }  # fmt: skip
    assert schema.migrate(params) == [v for v, _ in schema.migrations()]
    writer.reset()
    writer._params_cache = dict(params)
    yield params
    writer.reset()


@pytest.fixture
def blackhole():
    """A TCP port that accepts connections and never answers: a hung metrics database."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(256)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():  # accept and hold the sockets open, say nothing
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(timeout=2)
    for s in held:
        s.close()
    server.close()
