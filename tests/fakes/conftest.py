"""Fixtures for tests that talk to the fake Airbyte public API (tests/fakes/airbyte_api.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .airbyte_api import FakeAirbyteApi

# No Airflow metadata DB and no AIRFLOW_HOME are needed: hooks, operators, sensors and triggers
# are used directly, and connections come from AIRFLOW_CONN_* variables (env secrets backend).
# AIRFLOW_HOME is deliberately left alone: Airflow reads it once at import, it is process-wide,
# and include.pipeline.settings.airflow_env() derives the e2e environment from it.


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
