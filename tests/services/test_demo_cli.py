"""The demo's front door without a whole run: dag_test's start time, argument errors, make clean.

The whole demo (one line per task, the log file, a run that lasts what it lasted) is checked by
tests/e2e/test_daily_dag.py on the session's stack.
"""

from __future__ import annotations

import datetime as dt
import inspect
import shutil
import subprocess
import sys

import pytest

from include.pipeline.cli import dag_test
from tests.support import REPO_ROOT


def test_airflow_dags_test_still_starts_a_run_at_its_logical_date():
    """What dag_test.py works around: if Airflow changes it, the wrapper must be revisited."""
    from airflow.sdk.definitions.dag import DAG

    source = inspect.getsource(DAG.test)
    assert "from airflow.models.dagrun import DagRun, get_or_create_dagrun" in source
    assert "start_date=logical_date or run_after" in source


def test_start_runs_now_gives_the_run_the_time_it_is_created(monkeypatch):
    from airflow.models import dagrun

    calls = []

    def get_or_create_dagrun(*, dag, run_id, logical_date, start_date, session, **rest):
        calls.append({"logical_date": logical_date, "start_date": start_date, "run_id": run_id})
        return "the run"

    monkeypatch.setattr(dagrun, "get_or_create_dagrun", get_or_create_dagrun)  # restored after the test
    dag_test.start_runs_now()
    day = dt.datetime(2026, 1, 7, tzinfo=dt.UTC)
    before = dt.datetime.now(dt.UTC)
    result = dagrun.get_or_create_dagrun(dag=None, run_id="r", logical_date=day, start_date=day, session=None)
    assert result == "the run"
    [call] = calls
    assert call["logical_date"] == day and call["run_id"] == "r", "everything else is passed on unchanged"
    assert before <= call["start_date"] <= dt.datetime.now(dt.UTC), call


def test_start_runs_now_refuses_an_airflow_that_chooses_the_start_elsewhere(monkeypatch):
    from airflow.models import dagrun

    monkeypatch.setattr(dagrun, "get_or_create_dagrun", lambda *, dag, run_id, session: None)
    with pytest.raises(RuntimeError, match="takes no start_date"):
        dag_test.start_runs_now()


def cli(*args: str, tmp_path) -> subprocess.CompletedProcess:
    env = {
        "PATH": "/usr/bin:/bin",
        "STACK_LOCAL_DIR": str(tmp_path / ".local"),
        "STACK_ENV_FILE": str(tmp_path / ".env"),
    }
    return subprocess.run(
        [sys.executable, "-m", "include.pipeline.cli", *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--date", "2026-13-01"], "DATE='2026-13-01' is not a date"),
        (["--days", "0"], "--days 0: give 1 or more"),
    ],
)
def test_demo_refuses_a_bad_date_or_day_count_before_starting_anything(tmp_path, args, message):
    proc = cli("demo", *args, tmp_path=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not (tmp_path / ".local").exists(), "nothing was started"


def test_stop_on_a_clone_where_nothing_was_ever_started_says_so(tmp_path):
    """No .env and no .local: `make stop` (and so `make clean`) must not fail asking for a password."""
    proc = cli("services", "stop", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "nothing to stop" in proc.stdout


def test_make_clean_on_a_fresh_clone_without_a_venv(tmp_path):
    shutil.copy(REPO_ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / ".local").mkdir()
    (tmp_path / ".local" / "state").write_text("x")
    proc = subprocess.run(["make", "-C", str(tmp_path), "clean"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "nothing to stop" in proc.stdout
    assert not (tmp_path / ".local").exists(), "the local state was deleted"
