"""Which ingestion engine runs the syncs, read at RUN time (never while the DAG file is parsed).

`embedded` (default): PyAirbyte inside the task, no Airbyte server. `platform`: an Airbyte server
through its public API (include/pipeline/ingest/airbyte_server). Resolution order:
Airflow Variable `airbyte_engine` (UI, or AIRFLOW_VAR_AIRBYTE_ENGINE), then AIRBYTE_ENGINE, then embedded.
"""

from __future__ import annotations

import os

from pydantic import PositiveFloat, PositiveInt, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from include.pipeline.ingest.declaration import ENGINES

VARIABLE = "airbyte_engine"  # Airflow Variable that picks the engine (then AIRBYTE_ENGINE)
DEFAULT_ENGINE = "embedded"  # PyAirbyte inside the task, no Airbyte server

# The engine a task run resolved, pushed as an XCom once, so its metrics (callbacks) record the
# engine that really ran, not a second read of the Variable or the environment.
XCOM_KEY = "ingest_engine"


class EngineSettingError(ValueError):
    """An engine setting of the environment is not one the engines can use; the message names it."""


class PlatformSettings(BaseSettings):
    """Knobs of the platform engine, from the environment at run time (AIRBYTE_<FIELD>; an empty
    variable counts as unset): the Airflow connection of the Airbyte server, the workspace by
    name (None: connections.yaml's, else the first), deferrable or blocking waits, the seconds
    between polls, and how many times a sync's submission is tried."""

    model_config = SettingsConfigDict(env_prefix="AIRBYTE_", env_ignore_empty=True, frozen=True, extra="ignore")

    conn_id: str = "airbyte_default"
    workspace: str | None = None
    deferrable: bool = True
    poll_seconds: PositiveFloat = 30.0
    submit_tries: PositiveInt = 4

    @classmethod
    def from_env(cls) -> PlatformSettings:
        """The settings of this process's environment; EngineSettingError naming each bad variable."""
        try:
            return cls()
        except ValidationError as exc:
            raise EngineSettingError(
                "; ".join(
                    f"AIRBYTE_{str(error['loc'][0]).upper()}={error.get('input')!r}: {error['msg']}"
                    for error in exc.errors(include_url=False)
                )
            ) from None


def current_engine(*, use_variable: bool = True) -> str:
    default = os.environ.get("AIRBYTE_ENGINE", DEFAULT_ENGINE)
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
