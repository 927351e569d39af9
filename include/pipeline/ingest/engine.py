"""Which ingestion engine runs the syncs, read at RUN time (never while the DAG file is parsed).

`embedded` (default): PyAirbyte inside the task, no Airbyte server. `platform`: an Airbyte server
through its public API (include/pipeline/ingest/airbyte_server). Resolution order:
Airflow Variable `airbyte_engine` (UI, or AIRFLOW_VAR_AIRBYTE_ENGINE), then AIRBYTE_ENGINE, then embedded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from include.pipeline.ingest.connections import ENGINES

VARIABLE = "airbyte_engine"
# The engine a task run resolved, pushed as an XCom once, so its metrics (callbacks) record the
# engine that really ran, not a second read of the Variable or the environment.
XCOM_KEY = "ingest_engine"


class EngineSettingError(ValueError):
    pass


def current_engine(*, use_variable: bool = True) -> str:
    default = os.environ.get("AIRBYTE_ENGINE", "embedded")
    value = default
    if use_variable:
        from airflow.sdk import Variable

        try:
            value = Variable.get(VARIABLE, default=default)
        except Exception:  # no metadata DB outside a task (tests, CLI): the environment decides
            value = default
    value = (value or "embedded").strip().lower()
    if value not in ENGINES:
        raise EngineSettingError(
            f"ingest engine {value!r} (Airflow Variable {VARIABLE!r} or AIRBYTE_ENGINE) is not one of "
            f"{', '.join(ENGINES)}. Fix: set it to 'embedded' (PyAirbyte, no server) or 'platform' (an Airbyte server)"
        )
    return value


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise EngineSettingError(f"{name}={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise EngineSettingError(f"{name}={raw!r} must be positive")
    return value


@dataclass(frozen=True)
class PlatformSettings:
    """Knobs of the platform engine, from the environment at run time."""

    conn_id: str
    workspace: str | None
    deferrable: bool
    poll_seconds: float
    submit_tries: int

    @classmethod
    def from_env(cls) -> PlatformSettings:
        deferrable = os.environ.get("AIRBYTE_DEFERRABLE", "true").strip().lower()
        if deferrable not in ("true", "false", "1", "0", "yes", "no"):
            raise EngineSettingError(f"AIRBYTE_DEFERRABLE={deferrable!r}: use true or false")
        return cls(
            conn_id=os.environ.get("AIRBYTE_CONN_ID", "airbyte_default"),
            workspace=os.environ.get("AIRBYTE_WORKSPACE") or None,
            deferrable=deferrable in ("true", "1", "yes"),
            poll_seconds=_float("AIRBYTE_POLL_SECONDS", 30.0),
            submit_tries=int(_float("AIRBYTE_SUBMIT_TRIES", 4)),
        )
