"""The fake Airbyte public API (tests/fakes/airbyte_api/) as fixtures, the platform engine's
settings, and helpers that drive the engine's operator as Airflow would.

No Airflow metadata DB and no AIRFLOW_HOME are needed: hooks, operators, sensors and triggers
are used directly, and connections come from AIRFLOW_CONN_* variables (env secrets backend).
AIRFLOW_HOME is deliberately left alone: Airflow reads it once at import, it is process-wide,
and include.pipeline.environments.airflow_env() derives the e2e environment from it.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.airbyte_api import FakeAirbyteApi
from tests.support import REPO_ROOT
from tests.support.declarations import warehouse_only
from tests.support.s3 import stage_keys

# The connection of the shipped include/airbyte/connections.yaml.
CONNECTION = "shop_to_warehouse"


def set_airbyte_conn_env(
    monkeypatch: pytest.MonkeyPatch,
    fake: FakeAirbyteApi,
    conn_id: str = "airbyte_default",
    **overrides: Any,
) -> str:
    """Point ``AIRFLOW_CONN_<CONN_ID>`` at ``fake`` (JSON form); returns the conn id.

    ``overrides`` replace connection fields: ``password="wrong"``, ``extra={"timeout": 0.5}``,
    ``login=None`` (no auth), ``schema=...`` (the provider's token URL field).
    """
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fake.airflow_connection(**overrides)))
    return conn_id


@pytest.fixture
def airbyte_api() -> Iterator[FakeAirbyteApi]:
    """A started fake Airbyte public API on 127.0.0.1:<free port>, fresh per test."""
    fake = FakeAirbyteApi()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def airbyte_conn_env(monkeypatch: pytest.MonkeyPatch, airbyte_api: FakeAirbyteApi) -> Callable[..., str]:
    """Sets ``AIRFLOW_CONN_AIRBYTE_DEFAULT`` for ``airbyte_api`` and returns a callable to
    re-point it (or another conn id) with overrides: ``airbyte_conn_env(password="wrong")``."""
    no_proxy = os.environ.get("NO_PROXY", "")
    if "127.0.0.1" not in no_proxy:
        monkeypatch.setenv("NO_PROXY", ",".join(p for p in (no_proxy, "127.0.0.1", "localhost") if p))

    def configure(conn_id: str = "airbyte_default", **overrides: Any) -> str:
        return set_airbyte_conn_env(monkeypatch, airbyte_api, conn_id, **overrides)

    configure()
    return configure


def declared(path: Path | str | None = None) -> dict[str, list[str]]:
    """What plan/apply manages for a declaration (settings.CONNECTIONS_FILE unless `path`), by
    kind and name: the sources and destinations its connections use, and its connections. The
    tests derive their expected counts and names from it, not from the demo's."""
    from include.pipeline.ingest.declaration import load_connections

    config = load_connections(path)
    return {
        "source": sorted({c.source.name for c in config.connections}),
        "destination": sorted({c.destination.name for c in config.connections}),
        "connection": sorted(c.name for c in config.connections),
    }


def declared_count(path: Path | str | None = None) -> int:
    """How many resources plan/apply manages for a declaration: `Plan: N to create` on an empty
    workspace."""
    return sum(len(names) for names in declared(path).values())


def by_name(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The one resource named `name` among the fake's sources, destinations or connections."""
    [item] = [i for i in items if i["name"] == name]
    return item


@pytest.fixture
def platform_env(monkeypatch, airbyte_conn_env, tmp_path):
    """Platform engine, fast polls, the warehouse_ingest Airflow connection (generated password),
    the shipped declaration without the lake's connection (see `warehouse_only`)."""
    from include.pipeline import settings

    declaration = tmp_path / "connections-warehouse.yaml"
    declaration.write_text(warehouse_only(settings.CONNECTIONS_FILE.read_text()))
    monkeypatch.setattr(settings, "CONNECTIONS_FILE", declaration)
    monkeypatch.setenv("AIRBYTE_ENGINE", "platform")
    monkeypatch.setenv("AIRBYTE_POLL_SECONDS", "0.05")
    monkeypatch.setenv("AIRBYTE_SUBMIT_TRIES", "4")
    monkeypatch.delenv("AIRBYTE_WORKSPACE", raising=False)
    monkeypatch.delenv("AIRBYTE_CONN_ID", raising=False)
    password = secrets.token_urlsafe(12)
    # the exports' S3 that connections.yaml's source refers to as ${S3_...}
    monkeypatch.setenv("S3_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("S3_ACCESS_KEY", secrets.token_hex(8))
    monkeypatch.setenv("S3_SECRET_KEY", secrets.token_urlsafe(16))
    for key, value in stage_keys(os.environ["S3_ACCESS_KEY"], os.environ["S3_SECRET_KEY"]).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE_INGEST",
        json.dumps(
            {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "warehouse_ingest",
             "password": password, "schema": "warehouse"}
        ),
    )  # fmt: skip
    return {"warehouse_password": password, "configure": airbyte_conn_env}


@pytest.fixture
def applied(airbyte_api, platform_env):
    """The shipped connections.yaml applied to the fake; returns the connection's id."""
    import contextlib
    import io

    from include.pipeline.ingest.airbyte_server.apply import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["apply"])
    assert code == 0, f"apply exited {code}: {err.getvalue().strip()}"  # the cause in the summary line
    [conn] = [c for c in airbyte_api.connections() if c["name"] == CONNECTION]
    airbyte_api.reset_request_log()
    return conn["connectionId"]


class RecordingTI:
    """What the operator and the metrics callback need of a task instance: its key, xcom_push
    (recorded) and xcom_pull of this task's latest value of a key."""

    dag_id, run_id, task_id, try_number = "ecommerce_daily", "manual__2026-01-05", CONNECTION, 1

    def __init__(self):
        self.xcoms: list[tuple[str, Any]] = []

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms.append((key, json.loads(json.dumps(value))))  # stored as JSON, as Airflow does

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        assert task_ids == self.task_id
        return next((value for k, value in reversed(self.xcoms) if k == key), None)


def make_operator(**kwargs):
    from include.pipeline.ingest.connection_sync import AirbyteConnectionSync

    return AirbyteConnectionSync(task_id=CONNECTION, connection_name=CONNECTION, **kwargs)


def run_deferrable(op, context, *, between=None, make_resumed=None):
    """Drive a deferral as Airflow does: execute raises TaskDeferred; the trigger, rebuilt from its
    serialized form, runs until its first event; a fresh operator resumes with the event."""
    from airflow.sdk._shared.module_loading import import_string
    from airflow.sdk.exceptions import TaskDeferred

    try:
        return op.execute(context), None
    except TaskDeferred as deferred:
        classpath, kwargs = deferred.trigger.serialize()
        trigger = import_string(classpath)(**kwargs)
        if between:
            between(trigger)
        event = asyncio.run(anext(trigger.run()))
        resumed = (make_resumed or (lambda: op))()
        return resumed.resume_execution(
            deferred.method_name, {**(deferred.kwargs or {}), "event": event.payload}, context
        ), event


def api_spec_path() -> Path:
    """Airbyte's official public-API document (api_sdk.yaml), the slice the tests read: the
    connector configuration schemas, vendored in tests/fakes/airbyte_api_spec/ (its README.md
    says where it comes from and how it was cut)."""
    path = REPO_ROOT / "tests" / "fakes" / "airbyte_api_spec" / "api_sdk.yaml"
    assert path.is_file(), f"{path}: the vendored slice of Airbyte's public API spec is missing"
    return path


class TaskStateStore:
    """`context["task_state_store"]` of one task instance (Airflow 3.3's TaskStateStoreAccessor:
    get/set/delete, values JSON, None refused), kept in a dict that outlives the operator objects
    the way the metadata DB's rows outlive a crashed worker."""

    def __init__(self):
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        if value is None:
            raise ValueError("Cannot set value as None")
        self.values[key] = json.loads(json.dumps(value))

    def delete(self, key: str) -> None:
        self.values.pop(key, None)
