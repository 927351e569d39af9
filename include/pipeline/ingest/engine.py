"""Which ingestion engine runs the syncs, read at RUN time (never while the DAG file is parsed).

`embedded` (default): PyAirbyte inside the task, no Airbyte server. `platform`: an Airbyte server
through its public API (include/pipeline/ingest/airbyte_server). Resolution order:
Airflow Variable `airbyte_engine` (UI, or AIRFLOW_VAR_AIRBYTE_ENGINE), then AIRBYTE_ENGINE, then embedded.
"""

from __future__ import annotations

import os

from include.pipeline.ingest.declaration import ENGINES
from include.pipeline.settings import DEFAULT_ENGINE, EngineSettingError, PlatformSettings
from include.pipeline.settings import ENGINE_VARIABLE as VARIABLE

# The settings themselves (the Variable's name, the default, PlatformSettings) live in settings.py.
__all__ = ["VARIABLE", "XCOM_KEY", "EngineSettingError", "PlatformSettings", "current_engine"]

# The engine a task run resolved, pushed as an XCom once, so its metrics (callbacks) record the
# engine that really ran, not a second read of the Variable or the environment.
XCOM_KEY = "ingest_engine"


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
