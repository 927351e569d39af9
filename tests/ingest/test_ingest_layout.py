"""The shape of the ingest code: the engine-choosing task, the old trigger path, no shadowing.

- the ingest task reads the engine once and calls the embedded engine as a plain function;
- a trigger serialized before `platform/` was renamed `airbyte_server/` still imports (Airflow
  stores its class path in the trigger table);
- nothing under include/pipeline/ingest shadows the standard library's `platform` any more;
- building the DAG's ingest tasks does not import the simulated shop (numpy) or the embedded runner.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

INGEST_DIR = Path(__file__).resolve().parents[2] / "include" / "pipeline" / "ingest"
REPO_ROOT = INGEST_DIR.parents[2]


class TI:
    """What the operator needs of a task instance: xcom_push, recorded."""

    def __init__(self):
        self.xcoms: list[tuple[str, object]] = []

    def xcom_push(self, key: str, value: object) -> None:
        self.xcoms.append((key, value))


@pytest.mark.parametrize(
    ("params", "full_refresh"),
    [({"reset_ingest": True}, True), ({"reset_ingest": True, "full_refresh": True}, True), ({}, False),
     ({"full_refresh": True}, False)],  # a dbt full refresh leaves the ingest's state alone
)  # fmt: skip
def test_the_embedded_engine_is_a_plain_call_with_the_runs_day(monkeypatch, params, full_refresh):
    from include.pipeline.ingest import embedded_sync as daily
    from include.pipeline.ingest.tasks import ingest_step

    calls: list[tuple] = []
    monkeypatch.setattr(daily, "run_embedded", lambda *args, pull: calls.append((*args, pull)) or {"streams": {}})
    monkeypatch.delenv("AIRFLOW_VAR_AIRBYTE_ENGINE", raising=False)
    monkeypatch.setenv("AIRBYTE_ENGINE", "embedded")
    ti = TI()
    result = ingest_step("shop_to_warehouse").execute({"ti": ti, "ds": "2026-01-05", "params": params})
    assert [call[:3] for call in calls] == [("shop_to_warehouse", "2026-01-05", full_refresh)]
    assert callable(calls[0][3]), "a lake task can read its reader's result (shared_read.py)"
    assert result == {"streams": {}}
    assert ti.xcoms == [("ingest_engine", "embedded")], "the engine, read once, pushed once"


def test_a_bad_engine_fails_before_anything_runs(monkeypatch):
    from include.pipeline.ingest import embedded_sync as daily
    from include.pipeline.ingest.engine import EngineSettingError
    from include.pipeline.ingest.tasks import ingest_step

    monkeypatch.setattr(daily, "run_embedded", lambda *args: pytest.fail("ran with a bad engine"))
    monkeypatch.delenv("AIRFLOW_VAR_AIRBYTE_ENGINE", raising=False)
    monkeypatch.setenv("AIRBYTE_ENGINE", "airbyte-cloud")
    with pytest.raises(EngineSettingError, match="'airbyte-cloud'.*is not one of embedded, platform"):
        ingest_step("shop_to_warehouse").execute({"ti": TI(), "ds": "2026-01-05", "params": {}})


def test_a_trigger_serialized_under_the_old_path_still_imports():
    from airflow.sdk._shared.module_loading import import_string

    from include.pipeline.ingest.airbyte_server.triggers import PlatformSyncTrigger

    old = import_string("include.pipeline.ingest.platform.operator.PlatformSyncTrigger")
    assert old is PlatformSyncTrigger
    kwargs = {"job_id": 7, "conn_id": "airbyte_default", "end_time": 1.0, "poll_interval": 5.0, "attempts": 2}
    classpath, stored = old(**kwargs).serialize()
    assert classpath == "include.pipeline.ingest.airbyte_server.triggers.PlatformSyncTrigger"
    assert import_string(classpath)(**stored).serialize() == (classpath, stored)


def test_an_unknown_old_path_is_still_an_import_error():
    with pytest.raises(ModuleNotFoundError):
        __import__("include.pipeline.ingest.platform.apply")


def test_no_folder_of_the_ingest_code_shadows_the_standard_library():
    """A script run from include/pipeline/ingest (the embedded runner) sees the stdlib's
    `platform`; before the rename it saw the package and needed `python -P`."""
    assert not (INGEST_DIR / "platform").exists() and not (INGEST_DIR / "platform.py").exists()
    stdlib = {name for name in sys.stdlib_module_names if not name.startswith("_")}
    shadows = sorted(p.stem for p in INGEST_DIR.iterdir() if p.stem in stdlib and p.name != "__pycache__")
    assert shadows == [], f"modules named like the standard library's: {shadows}"
    found = subprocess.run(
        [sys.executable, "-c", "import platform; print(platform.__file__)"],
        cwd=INGEST_DIR, capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"},
    ).stdout.strip()  # fmt: skip
    assert Path(found).parent != INGEST_DIR and "include" not in Path(found).parts, found


def test_building_the_ingest_tasks_imports_neither_numpy_nor_the_embedded_runner():
    """The DAG's parse builds the ingest tasks: the shop (numpy) and the sync are imported by a
    task when it runs, and connection_sync.py does not import tasks.py (no import cycle)."""
    code = (
        "import sys\n"
        "from include.pipeline.ingest.tasks import ingest_step\n"
        "ingest_step('shop_to_warehouse')\n"
        "loaded = [m for m in ('numpy', 'include.pipeline.ingest.embedded_sync', 'include.simulator.shop') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "import include.pipeline.ingest.connection_sync as op, inspect\n"
        "assert 'ingest.tasks' not in inspect.getsource(op), 'connection_sync.py imports tasks.py'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True, capture_output=True, text=True)
