"""The metrics path's two reliability cases (docs/observability.md) on a real Postgres, with plain
event objects.

Delivered twice: every listener event and callback delivered twice -> exactly one row per
(dag, run, task, try, event); the second delivery is counted, not duplicated.
The metrics database down (refused, or hung) -> nothing raises, one warning per
callback, each bounded by the connect timeout.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from types import SimpleNamespace

import pytest

from include.pipeline.observe import callbacks, freshness, listener, schema, writer
from tests.support.metrics import T0, runtime_ti
from tests.support.metrics import metrics_warnings as _warnings

pytestmark = pytest.mark.integration


def deliver_twice(hook, *args):
    hook(*args)
    hook(*args)


@pytest.mark.parametrize(
    ("final_event", "final_state"),
    [("success", "success"), ("failed", "failed"), ("failed", "up_for_retry"), ("skipped", "skipped")],
)
def test_case_10_task_events_delivered_twice_leave_one_row_per_event(metrics_params, sql, final_event, final_state):
    ti = runtime_ti("ingest.shop", 1, final_state)
    running = runtime_ti("ingest.shop", 1, "running")
    deliver_twice(listener.on_task_instance_running, None, running)
    if final_event == "failed":
        deliver_twice(listener.on_task_instance_failed, "running", ti, RuntimeError("boom"))
    else:
        deliver_twice(getattr(listener, f"on_task_instance_{final_event}"), "running", ti)
    # a late duplicate 'running' after the end must not move the try back to running
    listener.on_task_instance_running(None, running)

    events = sql("select event, deliveries, state from metrics.task_events order by event")
    assert events == sorted([("running", 3, "running"), (final_event, 2, final_state)])
    assert sql("select task_id, try_number, state, duration_seconds, operator from metrics.task_runs") == [
        ("ingest.shop", 1, final_state, 3.0, "PythonOperator")
    ]
    if final_event == "failed":
        assert sql("select error from metrics.task_events where event = 'failed'") == [("boom",)]


def test_case_10_dag_run_events_delivered_twice_leave_one_run_row_and_one_row_per_try(metrics_params, sql):
    tries = [
        SimpleNamespace(dag_id="d", run_id="r", task_id="a", map_index=-1, try_number=1, state="success",
                        start_date=T0, end_date=T0 + dt.timedelta(seconds=5), queued_dttm=T0, duration=5.0,
                        operator="PythonOperator", hostname="h"),
        SimpleNamespace(dag_id="d", run_id="r", task_id="b", map_index=-1, try_number=2, state="success",
                        start_date=T0 + dt.timedelta(seconds=5), end_date=T0 + dt.timedelta(seconds=9),
                        queued_dttm=None, duration=4.0, operator="DbtRunLocalOperator", hostname="h"),
        SimpleNamespace(dag_id="d", run_id="r", task_id="c", map_index=-1, try_number=0, state="upstream_failed",
                        start_date=None, end_date=None, queued_dttm=None, duration=None, operator=None, hostname=None),
    ]  # fmt: skip
    run = SimpleNamespace(
        dag_id="d", run_id="r", state="success", run_type="manual", logical_date=T0, queued_at=None,
        start_date=T0 - dt.timedelta(days=30),  # a run started long before its first task
        end_date=T0 + dt.timedelta(seconds=10),
    )  # fmt: skip
    # what the hooks do (on_dag_run_running / _success), with the tries given rather than read
    # from a metadata DB (listener.read_tries; the end-to-end tests read them from a real one)
    deliver_twice(lambda: listener.record_dag_run(run, "started", "running", tries=None))
    deliver_twice(lambda: listener.record_dag_run(run, "success", "success", tries=lambda _: (tries, [])))
    deliver_twice(lambda: listener.record_dag_run(run, "late duplicate", "running", tries=None))
    assert sql("select state, deliveries, duration_seconds, tasks_total, tasks_failed from metrics.dag_runs") == [
        ("success", 6, 10.0, 3, 1)
    ]
    assert sql("select task_id, try_number, state, duration_seconds from metrics.task_runs order by 1") == [
        ("a", 1, "success", 5.0),
        ("b", 2, "success", 4.0),
    ]  # 'c' never ran: no try to record


def test_case_10_sync_and_dbt_callbacks_called_twice_leave_one_row_per_stream_and_node(metrics_params, sql, tmp_path):
    result = {
        "connection": "shop", "engine": "platform", "seconds": 12.5, "job_id": 42, "attempts": 2,
        "streams": {"users": {"records": 1000, "rows_in_table": 1000, "table": "raw.users", "bytes": 2048},
                    "products": {"records": 100, "rows_in_table": 100, "table": "raw.products"}},
    }  # fmt: skip
    ti = runtime_ti("ingest.shop", 2, "success")
    ti.xcom_pull = lambda task_ids, key: result
    context = {"ti": ti, "task": SimpleNamespace(connection_name="shop")}
    deliver_twice(callbacks.record_sync, context)
    assert sql("select stream, engine, job_id, attempts, records, bytes, status from metrics.syncs order by 1") == [
        ("products", "platform", "42", 2, 100, None, "succeeded"),
        ("users", "platform", "42", 2, 1000, 2048, "succeeded"),
    ]
    failed = {"ti": runtime_ti("ingest.shop", 3, "failed"), "exception": RuntimeError("job 43 was cancelled")}
    deliver_twice(callbacks.record_sync, failed)
    assert sql("select stream, status, try_number from metrics.syncs where try_number = 3") == [("*", "cancelled", 3)]

    project = tmp_path / "project"
    (project / "target").mkdir(parents=True)
    (project / "target" / "run_results.json").write_text(json.dumps({
        "metadata": {"invocation_id": "inv-1"},
        "results": [
            {"unique_id": "model.ecommerce.orders", "status": "success", "execution_time": 1.5,
             "adapter_response": {"rows_affected": 1000}, "failures": None, "message": "SELECT 1000"},
            {"unique_id": "test.ecommerce.unique_orders_order_id.abc", "status": "fail", "execution_time": 0.2,
             "adapter_response": {}, "failures": 3, "message": "Got 3 results"},
        ],
    }))  # fmt: skip
    dbt_context = {"ti": runtime_ti("transform.orders.run", 1, "running")}
    deliver_twice(lambda: callbacks.record_dbt_results(str(project), context=dbt_context))
    assert sql("select resource_type, name, status, rows_affected, failures from metrics.dbt_nodes order by 1") == [
        ("model", "orders", "success", 1000, None),
        ("test", "unique_orders_order_id", "fail", None, 3),
    ]
    assert sql("select check_name, value from metrics.data_quality") == [("dbt_test_failures", 3)]

    figures = [
        {"table": "raw.users", "newest_extracted_at": T0, "row_count": 10, "lag_seconds": 60.0, "type_errors": 2}
    ]
    for _ in range(2):
        writer.write("freshness", freshness.statements("d", "r", figures, {"staging.quarantine": 4}, 26))
    assert sql("select table_name, row_count, is_stale from metrics.freshness") == [("raw.users", 10, False)]
    assert sql("select subject, value from metrics.data_quality where check_name = 'quarantined_rows' order by 1") == [
        ("raw.users", 2), ("staging.quarantine", 4),
    ]  # fmt: skip


def test_case_9_refused_metrics_db_never_raises_and_logs_one_warning_per_callback(caplog, point_metrics_at):
    from include.pipeline.services import find_free_port

    point_metrics_at({"host": "127.0.0.1", "port": find_free_port(), "user": "u", "password": "p",
                      "dbname": "metrics", "connect_timeout": 2})  # fmt: skip
    caplog.set_level(logging.WARNING)
    ti = runtime_ti("ingest.shop", 1, "success")
    ti.xcom_pull = lambda task_ids, key: {"streams": {}}
    started = time.monotonic()
    listener.on_task_instance_running(None, ti)
    listener.on_task_instance_success(None, ti)
    callbacks.record_sync({"ti": ti})
    callbacks.record_dbt_results("/nonexistent", context={"ti": ti})
    elapsed = time.monotonic() - started
    found = _warnings(caplog)
    assert len(found) == 4, found  # one per callback
    assert "cannot connect to the metrics database 127.0.0.1:" in found[0]
    assert elapsed < 2, f"refused connections must cost nothing, took {elapsed:.2f} s"
    writer.reset()


def test_case_9_hung_metrics_db_costs_one_connect_timeout_per_window(caplog, blackhole, monkeypatch, point_metrics_at):
    monkeypatch.setenv("STACK_METRICS_RETRY_AFTER", "30")
    point_metrics_at({"host": "127.0.0.1", "port": blackhole, "user": "u", "password": "p",
                      "dbname": "metrics", "connect_timeout": 2})  # fmt: skip
    caplog.set_level(logging.WARNING)
    ti = runtime_ti("transform.orders.run", 1, "success")
    timings = []
    for hook in (listener.on_task_instance_running, listener.on_task_instance_success):
        started = time.monotonic()
        hook(None, ti)
        timings.append(time.monotonic() - started)
    found = _warnings(caplog)
    print(f"hung metrics DB: first callback {timings[0]:.2f} s, second {timings[1]:.3f} s, warnings {len(found)}")
    assert len(found) == 2, found
    assert 1.5 <= timings[0] <= 3.5, f"bounded by connect_timeout=2 s, took {timings[0]:.2f} s"
    assert timings[1] < 0.1, "within the retry window a callback skips the connection attempt"
    assert "within 2 s" in found[0] and "was unreachable" in found[1]
    writer.reset()


def test_metrics_off_writes_nothing_and_connects_nowhere(metrics_params, sql, monkeypatch, caplog):
    monkeypatch.setenv("STACK_METRICS", "off")
    listener.on_task_instance_success(None, runtime_ti("a", 1, "success"))
    assert sql("select count(*) from metrics.task_events") == [(0,)]
    assert _warnings(caplog) == []


def test_a_metrics_db_that_came_up_without_the_schema_gets_it_on_the_first_write(
    warehouse, sql, caplog, point_metrics_at
):
    """`cli demo` could not migrate (database down), the database came back: the first write creates the schema."""
    point_metrics_at({"host": warehouse.host, "port": warehouse.port, "user": warehouse.user,
                      "password": warehouse.password, "dbname": warehouse.database, "connect_timeout": 2})  # fmt: skip
    assert sql("select count(*) from information_schema.schemata where schema_name = 'metrics'") == [(0,)]
    listener.on_task_instance_success(None, runtime_ti("a", 1, "success"))
    assert sql("select task_id, event from metrics.task_events") == [("a", "success")]
    assert sql("select version from metrics.schema_migrations order by 1") == [(v,) for v, _ in schema.migrations()]
    assert any("the metrics schema is missing" in m for m in _warnings(caplog))
    writer.reset()
