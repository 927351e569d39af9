"""End to end in platform mode: `make airbyte-apply` then the daily DAG through `cli demo`
(`airflow dags test`, deferrable ingest run in-process) against the fake Airbyte API. Each
succeeding fake job writes the raw tables as Airbyte's Postgres destination would: it runs the
real connector through the embedded engine into the destination the job's connection points at."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest

from include.pipeline import settings
from include.pipeline.endpoints import Warehouse
from include.pipeline.ingest.declaration import load_connections
from include.pipeline.ingest.embedded import sync_connection
from include.pipeline.settings import read_env_file
from tests.fakes.airbyte_api import FakeAirbyteApi
from tests.support.airbyte import CONNECTION, by_name, declared_count
from tests.support.declarations import warehouse_only
from tests.support.s3 import stage_keys
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e
DATE, FAILING_DATE = "2026-01-05", "2026-01-06"


def write_like_the_postgres_destination(connection: dict, job: dict) -> int:
    cfg = connection["_destination"]["configuration"]
    target = Warehouse(cfg["host"], int(cfg["port"]), cfg["username"], cfg["password"], cfg["database"])
    # the source as the Airbyte server holds it (endpoint and keys applied from the stack's .env)
    source = {k: v for k, v in connection["_source"]["configuration"].items() if k != "sourceType"}
    declared = load_connections().connection(connection["name"])
    environ = {"S3_ENDPOINT": source["endpoint"], **stage_keys("-", "-")}
    with pytest.MonkeyPatch.context() as patch:  # `${S3_...}` resolve; the stored config wins
        for key, value in environ.items():
            patch.setenv(key, value)
        result = sync_connection(declared, target, log=lambda _: None, config_overrides=source)
    return sum(s["records"] for s in result["streams"].values())


@pytest.fixture(scope="module")
def platform_stack(tmp_path_factory):
    fake = FakeAirbyteApi().start()
    fake.on_job_succeeded = write_like_the_postgres_destination
    stack = Stack(tmp_path_factory.mktemp("platform-stack"))
    conn = fake.airflow_connection(extra={"timeout": 120})  # a poll waits while the fake job writes
    declaration = stack.root / "connections-warehouse.yaml"  # the warehouse connection alone (conftest.py)
    declaration.write_text(warehouse_only(settings.CONNECTIONS_FILE.read_text()))
    in_this_process = pytest.MonkeyPatch()  # load_connections() here reads the same declaration
    in_this_process.setattr(settings, "CONNECTIONS_FILE", declaration)
    stack.env.update(
        AIRBYTE_CONNECTIONS_FILE=str(declaration),
        # the engine comes from the Airflow Variable, which wins over the environment
        AIRBYTE_ENGINE="embedded",
        AIRFLOW_VAR_AIRBYTE_ENGINE="platform",
        AIRBYTE_POLL_SECONDS="0.2",
        AIRFLOW_CONN_AIRBYTE_DEFAULT=json.dumps(conn),
        NO_PROXY=",".join(p for p in (os.environ.get("NO_PROXY", ""), "127.0.0.1", "localhost") if p),
    )
    stack.fake = fake
    stack.cli("services", "start")
    stack.cli("settings")  # the warehouse Airflow connection that apply reads the destination from
    stack.applies = [stack.cli("airbyte-apply"), stack.cli("airbyte-apply")]
    stack.run = stack.cli("demo", "--date", DATE, check=False)
    yield stack
    stack.cli("services", "stop", check=False)
    fake.stop()
    in_this_process.undo()


def test_apply_twice_through_the_cli_second_changes_nothing(platform_stack):
    first, second = platform_stack.applies
    total = declared_count()  # of the declaration the stack applied (the module's CONNECTIONS_FILE)
    assert f"Apply complete: {total} created" in first.stdout, first.stdout + first.stderr
    assert "No changes" in second.stdout and f"{total} unchanged" in second.stdout
    password = read_env_file(platform_stack.root / ".env")["WAREHOUSE_INGEST_PASSWORD"]
    assert password not in first.stdout + second.stdout
    [dest] = platform_stack.fake.destinations()  # the warehouse: the lake's connection is left out
    assert dest["configuration"]["username"] == "warehouse_ingest", "the ingest role, never the superuser"
    assert dest["configuration"]["password"] == password, "taken from the Airflow connection `warehouse_ingest`"


def test_daily_run_in_platform_mode_is_green_with_one_job_per_connection(platform_stack):
    out = platform_stack.run.stdout
    assert platform_stack.run.returncode == 0 and "run state: success" in out, (
        out[-4000:] + platform_stack.run.stderr[-3000:]
    )
    fake = platform_stack.fake
    declared = [c.name for c in load_connections().connections]
    conns = {c["name"]: c["connectionId"] for c in fake.connections()}
    for name in declared:
        assert fake.jobs_by_status(conns[name]) == {"succeeded": [fake.jobs(conns[name])[0]["jobId"]]}
    assert len(fake.jobs()) == len(declared), "exactly one job per connection, none left running"
    assert fake.callback_errors == []
    # reliability case 22: each sync kept its job id in Airflow's task state store while it ran
    # and removed it when done, so a clear syncs again
    log = platform_stack.demo_log(platform_stack.run)
    for name in declared:
        assert f"Airbyte job {fake.jobs(conns[name])[0]['jobId']} kept in the task state store" in log, name
    db = sqlite3.connect(platform_stack.root / ".local" / "airflow" / "airflow.db")
    try:
        left = db.execute("select task_id, key from task_state_store where key = 'airbyte_job_id'").fetchall()
    finally:
        db.close()
    assert left == [], left
    users, distinct = platform_stack.sql("select count(*), count(distinct id) from raw.users")[0]
    assert users == distinct > 0
    assert platform_stack.sql("select count(*) from marts.customers")[0][0] > 0, "dbt ran after the platform sync"
    rows = platform_stack.sql(
        "select connection, engine, job_id, status from metrics.syncs where run_id = %s",
        (_run_id(platform_stack, DATE),),
    )
    assert sorted(rows) == sorted(
        (name, "platform", str(fake.jobs(conns[name])[0]["jobId"]), "succeeded") for name in declared
    ), rows


def test_a_failed_airbyte_job_fails_the_run_and_no_dbt_model_runs(platform_stack):
    fake = platform_stack.fake
    conn = by_name(fake.connections(), CONNECTION)
    fake.script_jobs(conn["connectionId"], "failed")
    before, before_all = len(fake.jobs(conn["connectionId"])), len(fake.jobs())
    run = platform_stack.cli("demo", "--date", FAILING_DATE, check=False)
    assert run.returncode != 0
    assert "run state: failed" in run.stdout, run.stdout[-4000:]
    jobs = fake.jobs(conn["connectionId"])
    assert len(jobs) == before + 1, "one job, no Airflow retry of a job Airbyte already retried"
    assert len(fake.jobs()) == before_all + len(fake.connections()), "and one job of every other connection"
    assert fake.jobs_by_status(conn["connectionId"]).get("failed") == [jobs[-1]["jobId"]]
    states = _task_states(platform_stack, FAILING_DATE)
    assert states[f"ingest.{CONNECTION}"] == "failed"
    dbt = {task: state for task, state in states.items() if task.startswith("transform.")}
    assert dbt and all(state == "upstream_failed" for state in dbt.values()), dbt
    assert states["publish_artifacts"] == "upstream_failed", "no dbt ran: no artifacts to publish, no failure"
    # reliability case 4: one metrics row says failed, with the job's id and attempts and the engine
    rows = platform_stack.sql(
        "select connection, stream, engine, job_id, attempts, status from metrics.syncs where run_id = %s",
        (_run_id(platform_stack, FAILING_DATE),),
    )
    job_id = jobs[-1]["jobId"]
    assert [r[1:] for r in rows if r[0] == CONNECTION] == [
        ("*", "platform", str(job_id), fake.attempts(job_id), "failed")
    ], rows
    others = [r for r in rows if r[0] != CONNECTION]  # one row each, succeeded (none on the shipped file)
    assert sorted(r[0] for r in others) == sorted(c["name"] for c in fake.connections() if c["name"] != CONNECTION)
    assert all(r[5] == "succeeded" for r in others), rows


def _run_id(stack, date: str) -> str:
    import sqlite3

    db = sqlite3.connect(stack.root / ".local" / "airflow" / "airflow.db")
    try:
        [(run_id,)] = db.execute(
            "select run_id from dag_run where dag_id = 'ecommerce_daily' and date(logical_date) = ?", (date,)
        ).fetchall()
    finally:
        db.close()
    return run_id


def _task_states(stack, date: str) -> dict[str, str]:
    """task_id -> state of the run of `date`, from the stack's Airflow metadata DB (SQLite)."""
    import sqlite3

    db = sqlite3.connect(stack.root / ".local" / "airflow" / "airflow.db")
    try:
        rows = db.execute(
            "select ti.task_id, ti.state from task_instance ti join dag_run dr on dr.run_id = ti.run_id "
            "and dr.dag_id = ti.dag_id where dr.dag_id = 'ecommerce_daily' and date(dr.logical_date) = ?",
            (date,),
        ).fetchall()
    finally:
        db.close()
    return dict(rows)
