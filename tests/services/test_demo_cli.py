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
import uuid

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


def airflow_run_tables(url: str):
    """dag_run and task_instance with the columns and column types of Airflow's own models
    (UtcDateTime stores timestamps as Airflow does), without their foreign keys to other tables."""
    import sqlalchemy as sa
    from airflow.models.base import Base
    from airflow.models.dagrun import DagRun  # noqa: F401 - registers the tables
    from airflow.models.taskinstance import TaskInstance  # noqa: F401

    meta = sa.MetaData()
    tables = {
        name: sa.Table(
            name,
            meta,
            *[
                sa.Column(c.name, c.type, primary_key=c.primary_key, autoincrement=c.autoincrement)
                for c in Base.metadata.tables[name].columns
            ],
        )  # fmt: skip
        for name in ("dag_run", "task_instance")
    }
    engine = sa.create_engine(url)
    meta.create_all(engine)
    return engine, tables


def make_run(engine, tables, run_id: str, started: dt.datetime, tasks: dict[str, str], *, row_id: int = 1) -> None:
    """The run `dags test` makes of 2026-01-09, as it writes it: a dag_run row and its task instances."""
    day = dt.datetime(2026, 1, 9, tzinfo=dt.UTC)
    with engine.begin() as conn:
        conn.execute(tables["dag_run"].insert().values(
            id=row_id, dag_id="ecommerce_daily", run_id=run_id, run_type="manual", logical_date=day,
            run_after=started, start_date=started, state="running",
        ))  # fmt: skip
        for n, (task_id, state) in enumerate(tasks.items()):
            conn.execute(tables["task_instance"].insert().values(
                id=uuid.uuid4(), task_id=task_id, dag_id="ecommerce_daily", run_id=run_id, map_index=-1,
                try_number=1, state=state, pool="default_pool", duration=1.5,
                start_date=started, end_date=started + dt.timedelta(seconds=n + 1),
            ))  # fmt: skip


def delete_runs(engine, tables) -> None:
    """What `dags test` does first with a logical date it has seen: delete its run and task instances."""
    with engine.begin() as conn:
        conn.execute(tables["task_instance"].delete())
        conn.execute(tables["dag_run"].delete())


def test_a_rerun_of_a_date_prints_the_task_lines_of_the_new_run(tmp_path):
    """A second `make demo` of the same date: `dags test` deletes the run and creates it again, and
    SQLite gives the new dag_run row the id the old one had. The poller follows the run started
    since it was made, never the old run's finished tasks."""
    from include.pipeline.cli.demo import TaskProgress

    url = f"sqlite:///{tmp_path / 'airflow.db'}"
    engine, tables = airflow_run_tables(url)
    first = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    make_run(engine, tables, "manual__first", first, {"shop_export": "success", "ingest.shop_to_warehouse": "success"})

    progress = TaskProgress(url, "ecommerce_daily", "2026-01-09")
    try:
        assert progress.new_lines() == [], "the old run's tasks are not this command's"
        delete_runs(engine, tables)
        assert progress.new_lines() == []
        rerun = dt.datetime.now(dt.UTC)
        make_run(
            engine, tables, "manual__rerun", rerun, {"shop_export": "success", "ingest.shop_to_warehouse": "running"}
        )
        with engine.connect() as conn:
            assert conn.execute(tables["dag_run"].select()).one().id == 1, "the same id as the deleted run"
        lines = progress.new_lines()
        assert len(lines) == 1 and "shop_export" in lines[0] and "success" in lines[0], lines
        ti = tables["task_instance"]
        with engine.begin() as conn:
            conn.execute(ti.update().where(ti.c.task_id == "ingest.shop_to_warehouse").values(state="failed"))
        lines = progress.new_lines()
        assert len(lines) == 1 and "[  2/2] ingest.shop_to_warehouse" in lines[0] and "failed" in lines[0], lines
    finally:
        progress.close()
