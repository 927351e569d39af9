"""How Cosmos renders the dbt project in the daily DAG (from the manifest, no database), and how a
model's task decides its state from the producer's `dbt build` (the trigger, with plain XCom values)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from include.pipeline import environments, settings
from include.pipeline.ingest.declaration import load_connections

PROBE = Path(__file__).with_name("cosmos_probe.py")
PRODUCER = "transform.dbt_producer_watcher"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("airflow_home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "WAREHOUSE_"))}
    env.update(environments.airflow_env())
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db")
    proc = subprocess.run(
        [sys.executable, str(PROBE), str(settings.REPO_ROOT / "dags")], env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.startswith("PROBE ")]
    assert proc.returncode == 0 and lines, proc.stderr[-4000:]
    out = json.loads(lines[-1][len("PROBE ") :])
    assert out["import_errors"] == {}
    return out


def test_one_dbt_build_in_the_producer_and_one_task_per_model_its_tests_and_the_snapshot(rendered, manifest):
    # what to expect comes from the declaration and the manifest: a source of the user's own adds
    # its ingest task and its models
    models = [n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    assert {"stg_shop__users", "int_purchases_enriched", "orders"} <= set(models)
    tasks = rendered["tasks"]
    assert "DbtProducerWatcherOperator" in tasks[PRODUCER]["bases"]
    assert tasks[PRODUCER]["upstream"] == ["freshness"], "the freshness gate, after the ingest, opens the transform"
    ingest = sorted(f"ingest.{c.name}" for c in load_connections().connections)
    assert tasks["freshness"]["upstream"] == ingest
    sensors = {t: v for t, v in tasks.items() if v["node"]}
    for model in models:
        assert "DbtRunWatcherOperator" in tasks[f"transform.{model}.run"]["bases"]
        assert tasks[f"transform.{model}.run"]["node"] == f"model.ecommerce.{model}"
        assert "DbtTestWatcherOperator" in tasks[f"transform.{model}.test"]["bases"]
        assert tasks[f"transform.{model}.test"]["upstream"] == [f"transform.{model}.run"]
    assert "DbtSnapshotWatcherOperator" in tasks["transform.customers_snapshot.snapshot"]["bases"]
    assert tasks["transform.customers_snapshot.snapshot"]["upstream"] == ["transform.stg_shop__users.test"]
    # every per-node task watches that one producer: no other task in the group runs dbt
    assert {v["producer"] for v in sensors.values()} == {PRODUCER}
    assert len(sensors) == 2 * len(models) + 2


def test_each_node_task_starts_in_the_triggerer_so_it_costs_no_worker_process(rendered):
    for task_id, task in rendered["tasks"].items():
        if task["node"]:
            assert task["start_from_trigger"] is True, task_id
            assert task["trigger"] == "include.pipeline.transform.watcher.NodeTrigger", task_id
            assert task["next_method"] == "execute_complete", task_id  # Cosmos's fallback, on a retry
    assert rendered["tasks"][PRODUCER]["start_from_trigger"] is False


@pytest.mark.parametrize(
    ("model", "parents"),
    [
        (
            "int_purchases_enriched",
            ["int_purchase_changes", "stg_shop__products", "stg_shop__purchases", "stg_shop__users"],
        ),
        ("orders", ["int_purchase_changes", "int_purchases_enriched"]),
        ("customers", ["int_purchase_changes", "int_purchases_enriched", "stg_shop__users"]),
    ],
)
def test_a_model_runs_only_after_its_parents_tests_so_a_failing_test_stops_it(rendered, model, parents):
    # dbt build skips a failed test's children; in Airflow the child's task waits for the parent's
    # test task, so a red test leaves its children upstream_failed (never retried into a rebuild)
    assert rendered["tasks"][f"transform.{model}.run"]["upstream"] == [f"transform.{p}.test" for p in parents]


def test_docs_are_generated_after_the_whole_transform(rendered):
    tasks = rendered["tasks"]
    assert tasks["dbt_docs"]["operator"] == "DbtDocsLocalOperator"
    transform = {t: v for t, v in tasks.items() if t.startswith("transform.")}
    # the transform group's last tasks: no other transform task waits for them
    leaves = {t for t in transform if not any(t in other["upstream"] for other in transform.values())}
    assert set(tasks["dbt_docs"]["upstream"]) == leaves and leaves
    assert f"{PRODUCER}_done" in leaves, "docs wait for the dbt build itself, not only for the sensors"


def test_each_mart_is_published_after_its_own_model_and_tests_only(rendered, manifest):
    """A failing test keeps its own mart (and, dbt skipping them, its children) out of the lake,
    not every mart: `publish.<mart>` waits for that mart's run and tests tasks, nothing else."""
    tasks = rendered["tasks"]
    marts = [
        n["name"] for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["original_file_path"].startswith("models/marts/")
    ]  # fmt: skip
    assert marts and {t for t in tasks if t.startswith("publish.")} == {f"publish.{m}" for m in marts}
    for mart in marts:
        own = [t for t in (f"transform.{mart}.run", f"transform.{mart}.test") if t in tasks]  # .test: if it has tests
        assert tasks[f"publish.{mart}"]["upstream"] == own and own[0] == f"transform.{mart}.run"
        assert tasks[f"publish.{mart}"]["trigger_rule"] == "all_success"


def test_the_runs_dbt_artifacts_are_published_whatever_the_transform_did(rendered):
    artifacts = rendered["tasks"]["publish_artifacts"]
    # after dbt ran (the freshness gate passed), whatever dbt_docs did; not when no dbt ran at all;
    # and after the build itself ended: a failed model marks dbt_docs upstream_failed while the build
    # still runs, before its callback staged run_results (CI saw publish_artifacts fail on that)
    assert artifacts["upstream"] == ["dbt_docs", "freshness", "transform.dbt_producer_watcher"]
    assert artifacts["trigger_rule"] == "all_done_min_one_success"


def test_each_nodes_metrics_row_is_filed_under_the_task_that_shows_the_node(rendered, manifest):
    task_of = rendered["metrics_task_of"]
    for uid, node in manifest["nodes"].items():
        if node["resource_type"] == "model":
            assert task_of[uid] == f"transform.{node['name']}.run"
        elif node["resource_type"] == "snapshot":
            assert task_of[uid] == f"transform.{node['name']}.snapshot"
    orders_tests = [
        uid for uid, n in manifest["nodes"].items()
        if n["resource_type"] == "test" and n["depends_on"]["nodes"] == ["model.ecommerce.orders"]
    ]  # fmt: skip
    assert orders_tests and {task_of[t] for t in orders_tests} == {"transform.orders.test"}


def test_the_full_refresh_param_reaches_the_dbt_build_as_a_flag(rendered):
    flags = rendered["full_refresh"]
    assert flags["true"]["rendered"] == "True" and flags["true"]["command"] == ["build"]
    assert "--full-refresh" in flags["true"]["flags"]
    assert flags["false"]["rendered"] == "False" and "--full-refresh" not in flags["false"]["flags"]


# -- the trigger that ends a model's task: XCom values as the producer pushes them -------------------
class FakeTI:
    dag_id, run_id, map_index, task_id = "ecommerce_daily", "manual__1", -1, "transform.orders.run"

    def __init__(self, try_number: int):
        self.try_number = try_number


def run_trigger(
    monkeypatch, *, node_status, producer_state, try_number=1, is_test_sensor=False, calls=None, xcoms=None
) -> list:
    """The trigger's events; `node_status` may be a list (one value per status read, the last one
    repeats); `calls`, if given, collects what the trigger asked for ("producer" or an XCom key);
    `xcoms`: other XCom values of the producer, by key."""
    from cosmos.operators._watcher.triggerer import WatcherTrigger

    from include.pipeline.transform.watcher import NodeTrigger

    trigger = NodeTrigger(
        model_unique_id="model.ecommerce.orders", producer_task_id=PRODUCER, dag_id="ecommerce_daily",
        run_id="", map_index=-1, poke_interval=0.01, is_test_sensor=is_test_sensor,
    )  # fmt: skip
    trigger.task_instance = FakeTI(try_number)
    asked: list[str] = calls if calls is not None else []
    statuses = list(node_status) if isinstance(node_status, list) else [node_status]

    async def xcom(self, key):
        asked.append(key)
        if key.endswith("_status"):
            status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
            if key.endswith("_tests_status"):
                return status
            return None if status is None else {"status": status, "outlet_uris": []}
        return (xcoms or {}).get(key)

    async def producer(self):
        asked.append("producer")
        return producer_state

    monkeypatch.setattr(WatcherTrigger, "get_xcom_val", xcom)
    monkeypatch.setattr(WatcherTrigger, "_get_producer_task_status", producer)

    async def collect():
        return [event async for event in trigger.run()]

    events = asyncio.run(asyncio.wait_for(collect(), timeout=10))
    assert trigger.run_id == "manual__1", "the run's identity comes from the task instance"
    return events


@pytest.mark.parametrize(
    ("node_status", "producer_state", "ends_as"),
    [
        ("success", "running", "TaskSuccessEvent"),
        ("pass", "running", "TaskSuccessEvent"),  # a model's tests
        ("skipped", "success", "TaskSkippedEvent"),
        ("failed", "running", "TaskFailedEvent"),  # retried by Airflow, then rerun on a worker
        ("fail", "running", "TaskFailedEvent"),  # a failing test: its children stay upstream_failed
        (None, "failed", "TaskFailedEvent"),  # the build died before reaching the node
    ],
)
def test_the_trigger_ends_the_task_itself_on_a_first_try(monkeypatch, node_status, producer_state, ends_as):
    events = run_trigger(
        monkeypatch, node_status=node_status, producer_state=producer_state, is_test_sensor=node_status == "pass"
    )
    assert [type(e).__name__ for e in events] == [ends_as]


# dbt's own message for an incremental model whose columns changed (dbt-postgres 1.11), as Cosmos
# pushes it in the node's `_dbt_event` XCom
OUT_OF_SYNC = """Compilation Error in model orders (models/marts/orders.sql)

              The source and target schemas on this incremental model are out of sync!
              They can be reconciled in several ways:
                - Re-run the incremental model with `full_refresh: True` to update the target schema.

  > in macro default__process_schema_changes (macros/materializations/models/incremental/on_schema_change.sql)"""


def test_a_node_whose_failure_a_retry_cannot_fix_ends_on_a_worker_that_fails_it_without_retry(monkeypatch):
    """The node's own dbt event says why: no wait for the build to end; the event goes to
    `execute_complete` (failures.py), not TaskFailedEvent, which Airflow would retry."""
    from include.pipeline.transform.watcher import RETRY_CANNOT_FIX

    event = {"status": "error", "msg": OUT_OF_SYNC}
    events = run_trigger(
        monkeypatch, node_status="failed", producer_state="running",
        xcoms={"model__ecommerce__orders_dbt_event": event},
    )  # fmt: skip
    assert [type(e).__name__ for e in events] == ["TriggerEvent"]
    failure = events[0].payload[RETRY_CANNOT_FIX]
    assert failure["kind"] == "incremental schema out of sync" and "DAYS=1 FULL_REFRESH=1" in failure["fix"]
    assert "> in macro" not in failure["message"]
    # a node dbt skipped because of it: what the producer pushed once the build ended
    from include.pipeline.transform import failures

    pushed = {"failures": {"model.ecommerce.int_x": {"kind": "compilation error", "message": "m", "fix": "f"}},
              "blocked": {"model.ecommerce.orders": "model.ecommerce.int_x"}, "tests_of": {}}  # fmt: skip
    skipped = {"model__ecommerce__orders_dbt_event": {"status": "skipped", "msg": None}, failures.XCOM_KEY: pushed}
    events = run_trigger(monkeypatch, node_status="failed", producer_state="failed", xcoms=skipped)
    assert events[0].payload[RETRY_CANNOT_FIX]["cause"] == "model.ecommerce.int_x"
    # retried (a clear after a fix): Airflow's own failure, as before
    events = run_trigger(monkeypatch, node_status="failed", producer_state="running", try_number=2,
                         xcoms={"model__ecommerce__orders_dbt_event": event})  # fmt: skip
    assert [type(e).__name__ for e in events] != ["TriggerEvent"] or RETRY_CANNOT_FIX not in events[0].payload


@pytest.mark.parametrize(
    ("producer_state", "ends_as"),
    [("success", "TaskSuccessEvent"), ("skipped", "TriggerEvent")],  # not selected; the producer's retry
)
def test_a_node_the_ended_build_has_no_result_for(monkeypatch, producer_state, ends_as):
    events = run_trigger(monkeypatch, node_status=None, producer_state=producer_state)
    assert [type(e).__name__ for e in events] == [ends_as]


def test_a_node_whose_result_is_there_ends_in_one_call_without_asking_the_producer(monkeypatch):
    """The chain of sensors after the build: each one's answer is already in XCom."""
    calls: list[str] = []
    events = run_trigger(monkeypatch, node_status="success", producer_state="running", calls=calls)
    assert [type(e).__name__ for e in events] == ["TaskSuccessEvent"]
    status_key = "model__ecommerce__orders_status"
    assert calls == [status_key, "model__ecommerce__orders_dbt_event"], calls  # the result, then its log line


def test_while_a_node_runs_the_producer_is_asked_every_few_polls_not_on_each(monkeypatch):
    from include.pipeline.transform.watcher import NodeTrigger

    calls: list[str] = []
    waiting = 7
    events = run_trigger(monkeypatch, node_status=[None] * waiting + ["success"], producer_state="running", calls=calls)
    assert [type(e).__name__ for e in events] == ["TaskSuccessEvent"]
    assert calls.count("producer") == -(-waiting // NodeTrigger.PRODUCER_EVERY)  # polls 0, 3, 6 of 7
    assert sum(c.endswith("_status") for c in calls) == waiting + 1


def test_a_retry_after_the_build_goes_back_to_a_worker_to_run_its_node_again(monkeypatch):
    events = run_trigger(monkeypatch, node_status="failed", producer_state="success", try_number=2)
    assert [type(e).__name__ for e in events] == ["TriggerEvent"]
    assert events[0].payload["reason"] == "producer_skipped"  # Cosmos's execute_complete: fallback run


def test_a_retry_while_the_build_still_runs_keeps_watching(monkeypatch):
    events = run_trigger(monkeypatch, node_status="success", producer_state="running", try_number=2)
    assert [type(e).__name__ for e in events] == ["TaskSuccessEvent"]


def test_under_dags_test_a_task_picked_before_the_producer_is_rescheduled_not_stuck(monkeypatch):
    from airflow.exceptions import AirflowRescheduleException
    from cosmos.operators.watcher import DbtRunWatcherOperator

    from include.pipeline.transform import cosmos_config
    from include.pipeline.transform.watcher import RunSensor

    sensor = RunSensor(
        task_id="orders_run", project_dir=str(settings.DBT_PROJECT_DIR), profile_config=cosmos_config.profile_config,
        producer_task_id=PRODUCER, extra_context={"dbt_node_config": {"unique_id": "model.ecommerce.orders"}},
    )  # fmt: skip
    monkeypatch.setattr(RunSensor, "_get_producer_task_status", lambda self, context: "scheduled")
    with pytest.raises(AirflowRescheduleException):
        sensor.execute({})
    ran = []
    monkeypatch.setattr(RunSensor, "_get_producer_task_status", lambda self, context: "success")
    monkeypatch.setattr(DbtRunWatcherOperator, "execute", lambda self, context, **kw: ran.append(context))
    sensor.execute({"ti": None})
    assert ran == [{"ti": None}]


def test_the_producer_pushes_a_nodes_result_once_it_finishes_not_on_every_event():
    from include.pipeline.transform import cosmos_config
    from include.pipeline.transform.watcher import Producer

    producer = Producer(
        project_dir=str(settings.DBT_PROJECT_DIR), profile_config=cosmos_config.profile_config,
        tests_per_model={},
    )  # fmt: skip

    class TI:
        pushed: list[str] = []

        def xcom_push(self, key, value):
            self.pushed.append(key)

        def xcom_pull(self, *args, **kwargs):
            return None

    ti = TI()
    parse = producer._make_parse_callable()
    node = {"unique_id": "model.ecommerce.orders", "resource_type": "model", "node_path": "marts/orders.sql"}
    for name, status in [("NodeStart", "started"), ("NodeExecuting", "executing"), ("NodeFinished", "success")]:
        line = {"info": {"name": name, "msg": f"{name} orders"}, "data": {"node_info": {**node, "node_status": status}}}
        parse(json.dumps(line), {"context": {"ti": ti}, "project_dir": "/nonexistent"})
    status_key = "model__ecommerce__orders_status"
    assert ti.pushed.count(status_key) == 1, ti.pushed
    assert len(ti.pushed) == 2, "the finished event and the status: nothing for start/executing"


def test_the_producers_pushes_leave_dbts_threads_at_once_and_all_arrive_in_order(monkeypatch):
    """A push from a dbt thread returns before its API call ends; every value reaches XCom, in
    the order pushed and as it was when pushed, before the producer's execute returns."""
    import threading
    import time

    from airflow.sdk.execution_time import task_runner

    from include.pipeline.transform.cosmos_events import STARTUP_EVENTS_XCOM_KEY as _DBT_STARTUP_EVENTS_XCOM_KEY
    from include.pipeline.transform.watcher import PushesOffDbtThreads

    sent: list[tuple[str, object]] = []

    def slow_push(ti, key, value, **kwargs):
        time.sleep(0.02)  # an API round trip
        sent.append((key, value))

    monkeypatch.setattr(task_runner, "_xcom_push", slow_push)
    waits: list[float] = []
    with PushesOffDbtThreads() as pusher:

        def dbt_thread(name: str) -> None:
            for i in range(10):
                value = {"n": i}
                started = time.monotonic()
                task_runner._xcom_push(None, f"{name}_{i}", value)
                waits.append(time.monotonic() - started)
                value["n"] = "changed after the push"

        threads = [threading.Thread(target=dbt_thread, args=(n,)) for n in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # read-modify-write by Cosmos: sent in line, after everything queued before it
        task_runner._xcom_push(None, _DBT_STARTUP_EVENTS_XCOM_KEY, ["MainReportVersion"])
        assert sent[-1] == (_DBT_STARTUP_EVENTS_XCOM_KEY, ["MainReportVersion"]) and len(sent) == 21
        task_runner._xcom_push(None, "task_status", "completed")
    assert task_runner._xcom_push is slow_push, "put back on exit"
    assert sent[-1] == ("task_status", "completed") and pusher.count == 21
    for name in ("a", "b"):
        assert [v for k, v in sent if k.startswith(f"{name}_")] == [{"n": i} for i in range(10)]
    assert max(waits) < 0.015, f"a push waited for its API call ({max(waits):.3f} s)"


def test_a_passing_tests_own_event_is_not_pushed_but_a_failing_ones_is(monkeypatch):
    """No task reads a single test's dbt event when it passed (the tests' task reads the model's
    aggregated status); one that failed or warned stays in XCom, and every model's event too."""
    from airflow.sdk.execution_time import task_runner

    from include.pipeline.transform.watcher import PushesOffDbtThreads

    sent: list[str] = []
    monkeypatch.setattr(task_runner, "_xcom_push", lambda ti, key, value, **kw: sent.append(key))
    pushes = {
        "test__ecommerce__unique_orders_order_id__abc_dbt_event": {"status": "pass"},
        "test__ecommerce__not_null_orders_order_id__def_dbt_event": {"status": "fail", "msg": "Got 3 results"},
        "test__ecommerce__accepted_range_orders_amount__0__ghi_dbt_event": {"status": "warn"},
        "unit_test__ecommerce__customers__segments_dbt_event": {"status": "pass"},
        "unit_test__ecommerce__orders__statuses_dbt_event": {"status": "error"},
        "model__ecommerce__orders_dbt_event": {"status": "success"},
        "model__ecommerce__orders_status": "success",
        "model__ecommerce__orders_tests_status": "pass",
    }
    with PushesOffDbtThreads() as pusher:
        for key, value in pushes.items():
            task_runner._xcom_push(None, key, value)
    assert sent == [k for k in pushes if "unique_orders" not in k and "segments" not in k]
    assert (pusher.count, pusher.unread) == (6, 2)


def test_dbt_hands_the_producers_callback_only_events_it_acts_on_or_logs():
    """Debug-level dbt events that Cosmos would only log at DEBUG (each SQL statement, connection,
    timing) never reach its JSON conversion; node statuses, errors, versions, skips and anything
    at INFO or above do, and with Cosmos's logger at DEBUG everything does."""
    import logging
    from types import SimpleNamespace

    from include.pipeline.transform import cosmos_config
    from include.pipeline.transform.watcher import Producer

    producer = Producer(
        project_dir=str(settings.DBT_PROJECT_DIR), profile_config=cosmos_config.profile_config,
        tests_per_model={},
    )  # fmt: skip
    seen: list[str] = []
    # what Cosmos's run_dbt_runner does before dbt starts: append its callback
    producer._dbt_runner_callbacks = [*(producer._dbt_runner_callbacks or []), lambda e: seen.append(e.info.name)]
    [callback] = producer._dbt_runner_callbacks
    events = [("SQLQuery", "debug"), ("NodeStart", "debug"), ("NodeFinished", "debug"), ("ConnectionUsed", "debug"),
              ("LogModelResult", "info"), ("MainReportVersion", "info"), ("AdapterRegistered", "info"),
              ("SkippingDetails", "debug"), ("LogSkipBecauseError", "debug"), ("RunResultError", "error"),
              ("TimingInfoCollected", "debug"), ("Note", "warn")]  # fmt: skip
    for name, level in events:
        callback(SimpleNamespace(info=SimpleNamespace(name=name, level=level)))
    assert seen == ["NodeStart", "NodeFinished", "LogModelResult", "MainReportVersion", "AdapterRegistered",
                    "SkippingDetails", "LogSkipBecauseError", "RunResultError", "Note"]  # fmt: skip
    producer._dbt_runner_callbacks = [*producer._dbt_runner_callbacks]  # wrapped once, not again
    assert producer._dbt_runner_callbacks == [callback]

    cosmos_log = logging.getLogger("cosmos.operators._watcher.base")
    level = cosmos_log.level
    cosmos_log.setLevel(logging.DEBUG)
    try:
        seen.clear()
        callback(SimpleNamespace(info=SimpleNamespace(name="SQLQuery", level="debug")))
        assert seen == ["SQLQuery"]
    finally:
        cosmos_log.setLevel(level)


def test_a_push_that_fails_fails_the_producer(monkeypatch):
    from airflow.sdk.execution_time import task_runner

    from include.pipeline.transform.watcher import PushesOffDbtThreads

    def refused(ti, key, value, **kwargs):
        raise RuntimeError(f"XCom {key} refused")

    monkeypatch.setattr(task_runner, "_xcom_push", refused)
    with pytest.raises(RuntimeError, match="XCom k refused"), PushesOffDbtThreads():
        task_runner._xcom_push(None, "k", 1)
