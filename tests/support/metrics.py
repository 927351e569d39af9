"""The metrics schema on the session Postgres, a hung metrics database, and what the listener
and callbacks read of a task instance."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
from types import SimpleNamespace

import pytest

from include.pipeline.observe import schema, writer

T0 = dt.datetime(2026, 1, 5, 1, 0, tzinfo=dt.UTC)


def runtime_ti(task_id: str, try_number: int, state: str, seconds: float = 3.0):
    """The fields of a task runner's RuntimeTaskInstance the listener reads."""
    return SimpleNamespace(
        dag_id="ecommerce_daily", run_id="manual__2026-01-05", task_id=task_id, map_index=-1,
        try_number=try_number, state=state, start_date=T0, end_date=T0 + dt.timedelta(seconds=seconds),
        task=SimpleNamespace(task_type="PythonOperator"), hostname="worker-1",
    )  # fmt: skip


def metrics_warnings(caplog) -> list[str]:
    """The metrics writer's warnings among the captured log records."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and writer.WARNING_PREFIX in r.getMessage()
    ]


@pytest.fixture
def point_metrics_at(monkeypatch):
    """Point the metrics writers at a database the way a deployment outside Airflow does: the
    METRICS_* settings (environments.metrics_env), no Airflow connection to look up first."""

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
