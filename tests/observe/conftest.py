"""Fixtures of the observability tests: a migrated metrics schema on the session Postgres."""

from __future__ import annotations

import socket
import threading

import pytest

from include.pipeline.observe import schema, writer


@pytest.fixture
def point_metrics_at(monkeypatch):
    """Point the metrics writers at a database the way a deployment outside Airflow does: the
    METRICS_* settings (settings.metrics_env), no Airflow connection to look up first."""

    def point(params: dict) -> None:
        monkeypatch.delenv("AIRFLOW_HOME", raising=False)  # outside Airflow: METRICS_* decide
        for key, name in (("host", "HOST"), ("port", "PORT"), ("user", "USER"), ("password", "PASSWORD")):
            monkeypatch.setenv(f"METRICS_{name}", str(params[key]))
        monkeypatch.setenv("METRICS_DB", params["dbname"])
        monkeypatch.setenv("METRICS_READER_USER", params["user"])
        monkeypatch.setenv("METRICS_READER_PASSWORD", params["password"])
        monkeypatch.setenv("STACK_METRICS_CONNECT_TIMEOUT", str(params.get("connect_timeout", 2)))
        writer.reset()  # forget facts read before (and a down window)

    yield point
    writer.reset()


@pytest.fixture
def metrics_params(warehouse, point_metrics_at) -> dict:
    """psycopg2 params of a fresh database with the metrics schema; the writer is pointed at it."""
    params = {
        "host": warehouse.host, "port": warehouse.port, "user": warehouse.user,
        "password": warehouse.password, "dbname": warehouse.database, "connect_timeout": 2,
    }  # fmt: skip
    assert schema.migrate(params) == [v for v, _ in schema.migrations()]
    point_metrics_at(params)
    return params


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
