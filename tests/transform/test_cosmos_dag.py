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

from include.pipeline import settings

PROBE = Path(__file__).with_name("cosmos_probe.py")
PRODUCER = "transform.dbt_producer_watcher"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("airflow_home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "WAREHOUSE_"))}
    env.update(settings.airflow_env())
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


MODELS = [
    "stg_faker__users", "stg_faker__products", "stg_faker__purchases", "stg_faker__quarantined_records",
    "int_purchases_enriched", "customers", "orders", "products", "daily_revenue", "monthly_cohort_retention",
]  # fmt: skip


def test_one_dbt_build_in_the_producer_and_one_task_per_model_its_tests_and_the_snapshot(rendered):
    tasks = rendered["tasks"]
    assert "DbtProducerWatcherOperator" in tasks[PRODUCER]["bases"]
    assert tasks[PRODUCER]["upstream"] == ["freshness"], "the freshness gate, after the ingest, opens the transform"
    assert tasks["freshness"]["upstream"] == ["ingest.shop_to_lake", "ingest.shop_to_warehouse"]
    sensors = {t: v for t, v in tasks.items() if v["node"]}
    for model in MODELS:
        assert "DbtRunWatcherOperator" in tasks[f"transform.{model}.run"]["bases"]
        assert tasks[f"transform.{model}.run"]["node"] == f"model.ecommerce.{model}"
        assert "DbtTestWatcherOperator" in tasks[f"transform.{model}.test"]["bases"]
        assert tasks[f"transform.{model}.test"]["upstream"] == [f"transform.{model}.run"]
    assert "DbtSnapshotWatcherOperator" in tasks["transform.customers_snapshot.snapshot"]["bases"]
    assert tasks["transform.customers_snapshot.snapshot"]["upstream"] == ["transform.stg_faker__users.test"]
    # every per-node task watches that one producer: no other task in the group runs dbt
    assert {v["producer"] for v in sensors.values()} == {PRODUCER}
    assert len(sensors) == 2 * len(MODELS) + 2


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
        ("int_purchases_enriched", ["stg_faker__products", "stg_faker__purchases", "stg_faker__users"]),
        ("orders", ["int_purchases_enriched"]),
        ("customers", ["int_purchases_enriched", "stg_faker__users"]),
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


def run_trigger(monkeypatch, *, node_status, producer_state, try_number=1, is_test_sensor=False) -> list:
    from cosmos.operators._watcher.triggerer import WatcherTrigger

    from include.pipeline.transform.watcher import NodeTrigger

    trigger = NodeTrigger(
        model_unique_id="model.ecommerce.orders", producer_task_id=PRODUCER, dag_id="ecommerce_daily",
        run_id="", map_index=-1, poke_interval=0.01, is_test_sensor=is_test_sensor,
    )  # fmt: skip
    trigger.task_instance = FakeTI(try_number)
    asked: list[str] = []

    async def xcom(self, key):
        asked.append(key)
        if key.endswith("_tests_status"):
            return node_status
        if key.endswith("_status"):
            return None if node_status is None else {"status": node_status, "outlet_uris": []}
        return None

    async def producer(self):
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
