"""After the session's end-to-end run (`cli demo`, i.e. `airflow dags test`): the metrics the
listener plugin, callbacks and freshness check wrote, and every dashboard query on them."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from psycopg2 import sql

from include.pipeline import settings
from include.pipeline.observe import dashboards
from tests.support import REPO_ROOT

pytestmark = pytest.mark.e2e

RAW = ("raw.users", "raw.products", "raw.purchases")


def first_run_id(stack) -> str:
    found = re.search(
        r"DagRun Finished: dag_id=ecommerce_daily, logical_date=\S+ \S+, run_id=([^,]+),",
        stack.demo_log(stack.first_run),
    )
    assert found, "the demo output names the finished run"
    return found.group(1)


def test_one_dag_run_row_and_one_row_per_task_try(stack):
    run_id = first_run_id(stack)
    summary = re.search(r"run state: (\w+); tasks: (\d+) success\n", stack.first_run.stdout)
    assert summary and summary.group(1) == "success", stack.first_run.stdout[-2000:]
    tasks = int(summary.group(2))
    (row,) = stack.sql(
        "select state, tasks_total, tasks_failed, duration_seconds, deliveries from metrics.dag_runs where run_id = %s",
        (run_id,),
    )
    assert row[:3] == ("success", tasks, 0)
    assert 0 < row[3] < 900, f"run duration {row[3]} s is the run's working span, not logical date -> end"
    tries = stack.sql(
        "select task_id, try_number, state, duration_seconds from metrics.task_runs where run_id = %s", (run_id,)
    )
    assert len(tries) == tasks == len({t[0] for t in tries}), "one row per task try (every task ran once)"
    assert {t[2] for t in tries} == {"success"} and all(t[1] == 1 and t[3] > 0 for t in tries)
    events = stack.sql(
        "select event, count(*), max(deliveries) from metrics.task_events where run_id = %s and event <> 'running'"
        " group by 1 order by 1",
        (run_id,),
    )
    assert events == [("success", tasks, 1)]
    # A watcher sensor that `dags test` picks before the dbt build starts is rescheduled
    # (include/pipeline/transform/watcher.py; `dags test` keeps no task_reschedule row of it): each
    # of its starts is a real `running` event of the same try, counted on its one row. Every other
    # task starts exactly once.
    running = dict(
        stack.sql(
            "select task_id, deliveries from metrics.task_events where run_id = %s and event = 'running'", (run_id,)
        )
    )
    assert len(running) == tasks
    sensors = {t for t in running if t.startswith("transform.") and t.rsplit(".", 1)[-1] in ("run", "test", "snapshot")}
    assert sensors, "the transform group's per-node tasks are there"
    assert {t: n for t, n in running.items() if t not in sensors} == {t: 1 for t in running if t not in sensors}
    assert all(n >= 1 for n in running.values())
    assert "freshness" in {t[0] for t in tries}


def test_sync_rows_carry_records_equal_to_the_raw_row_delta(stack):
    run_id = first_run_id(stack)
    rows = stack.sql(
        "select destination_table, records, rows_in_table, status, engine from metrics.syncs where run_id = %s"
        " and connection = 'shop_to_warehouse' order by 1",  # shop_to_lake lands in the lake (docs/lake.md)
        (run_id,),
    )
    assert [r[0] for r in rows] == sorted(RAW)
    counted = dict(stack.sql("select table_name, row_count from metrics.freshness where run_id = %s", (run_id,)))
    for table, records, rows_in_table, status, engine in rows:
        # the stack's warehouse was empty before this first run: the raw delta is the table's row count,
        # counted independently by the freshness check right after ingest
        assert status == "succeeded" and engine == "embedded"
        assert records == rows_in_table == counted[table] > 0, (table, records, rows_in_table, counted[table])


def test_dbt_node_rows_for_every_model_and_every_test_cosmos_runs(stack):
    run_id = first_run_id(stack)
    manifest = json.loads((settings.DBT_PROJECT_DIR / "target" / "manifest.json").read_text())
    nodes = manifest["nodes"]
    models = {k for k, n in nodes.items() if n["resource_type"] in ("model", "snapshot")}
    # Cosmos runs a test in the task group of the model it depends on; tests only on sources have no task
    tests = {
        k for k, n in nodes.items()
        if n["resource_type"] == "test" and any(d in models for d in n["depends_on"]["nodes"])
    }  # fmt: skip
    recorded = dict(
        stack.sql("select unique_id, min(status) from metrics.dbt_nodes where run_id = %s group by 1", (run_id,))
    )
    assert models - set(recorded) == set(), "every model has a row"
    assert tests - set(recorded) == set(), "every test has a row"
    # unit tests are left to `make test` (cosmos_config.py): the daily build runs none
    assert manifest["unit_tests"] and not set(manifest["unit_tests"]) & set(recorded)
    assert {recorded[m] for m in models} == {"success"}
    assert {recorded[t] for t in tests} == {"pass"}
    (timed,) = stack.sql(
        "select count(*) from metrics.dbt_nodes where run_id = %s and resource_type = 'model'"
        " and execution_time_seconds > 0 and rows_affected is not null", (run_id,)
    )[0]  # fmt: skip
    assert timed > 0, "models carry execution time and rows affected"


def test_freshness_rows_per_raw_table(stack):
    run_id = first_run_id(stack)
    rows = stack.sql(
        "select table_name, row_count, lag_seconds, is_stale from metrics.freshness where run_id = %s order by 1",
        (run_id,),
    )
    assert [r[0] for r in rows] == sorted(RAW)
    assert all(r[1] > 0 and 0 <= r[2] < 900 and r[3] is False for r in rows), rows
    quarantine = stack.sql(
        "select subject, value from metrics.data_quality where run_id = %s and check_name = 'quarantined_rows'",
        (run_id,),
    )
    assert {s for s, _ in quarantine} >= set(RAW)


@pytest.mark.parametrize(
    "panel", [p for items in dashboards.panels().values() for p in items], ids=lambda p: f"{p.dashboard}/{p.slug}"
)
def test_every_dashboard_query_returns_rows_after_a_run(stack, panel):
    rows = stack.sql(panel.sql)
    # a panel that counts problems (failed tries, quality issues) is empty on a healthy run and says so
    assert rows or panel.empty != dashboards.Panel.empty, f"{panel.path} returned no rows"
    if panel.panel == "timeseries":
        assert all(r[0] is not None for r in rows), "the time column is filled"


def redeliver(stack, times: int) -> tuple[str, int]:
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tests" / "observe" / "redeliver.py"), "ecommerce_daily", str(times)],
        cwd=REPO_ROOT, env=stack.env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    found = re.search(r"redelivered (\d+) task events and \d+ DAG-run events of run_id=(\S+)", proc.stdout)
    return found.group(2), int(found.group(1))


def test_case_10_real_events_redelivered_twice_change_no_row_count(stack):
    """Deliver the newest run's real DagRun/TaskInstance events from Airflow's metadata DB once, then twice more."""
    tables = ("dag_runs", "task_runs", "task_events")
    run_id, once = redeliver(stack, 1)

    def rows_of(table: str) -> int:
        query = sql.SQL("select count(*) from {} where run_id = %s").format(sql.Identifier("metrics", table))
        return stack.sql(query, (run_id,))[0][0]

    before = {t: rows_of(t) for t in tables}
    (deliveries_before,) = stack.sql("select deliveries from metrics.dag_runs where run_id = %s", (run_id,))[0]
    same_run, twice = redeliver(stack, 2)
    assert same_run == run_id and twice == 2 * once > 0
    after = {t: rows_of(t) for t in tables}
    assert after == before, "the same events twice more: not one more row"
    assert before["dag_runs"] == 1 and before["task_runs"] == once
    (deliveries_after,) = stack.sql("select deliveries from metrics.dag_runs where run_id = %s", (run_id,))[0]
    assert deliveries_after == deliveries_before + 2, "each delivery is counted on the one row"
    spread = stack.sql(
        "select max(deliveries) - min(deliveries), min(deliveries) from metrics.task_events"
        " where run_id = %s and event = 'success'", (run_id,),
    )  # fmt: skip
    assert spread[0][0] == 0 and spread[0][1] >= 3
