"""How Cosmos renders the dbt project in the daily DAG (from the manifest, no database), how the
producer hands each node's result over (node_results.NodeRecorder, with dbt's event objects), and
how a node's task decides its state from it (the trigger, with plain XCom values)."""

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
from tests.support.cosmos_tasks import last_task, models_with_tests, run_task

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
    assert "DbtBuildLocalOperator" in tasks[PRODUCER]["bases"], "Cosmos's public build operator"
    assert tasks[PRODUCER]["upstream"] == ["freshness"], "the freshness gate, after the ingest, opens the transform"
    ingest = sorted(f"ingest.{c.name}" for c in load_connections().connections)
    assert tasks["freshness"]["upstream"] == ingest
    sensors = {t: v for t, v in tasks.items() if v["node"]}
    tested = models_with_tests(manifest)
    for model in models:
        run = run_task(model, tested)
        assert "DbtRunLocalOperator" in tasks[run]["bases"]  # it reruns its model
        assert tasks[run]["node"] == f"model.ecommerce.{model}"
        if model in tested:
            assert "DbtTestLocalOperator" in tasks[f"transform.{model}.test"]["bases"]
            assert tasks[f"transform.{model}.test"]["upstream"] == [run]
        else:
            assert f"transform.{model}.test" not in tasks
    assert "DbtSnapshotLocalOperator" in tasks["transform.customers_snapshot.snapshot"]["bases"]
    assert not any("Watcher" in base for task in tasks.values() for base in task["bases"]), "no Cosmos watcher class"
    assert tasks["transform.customers_snapshot.snapshot"]["upstream"] == ["transform.stg_shop__users.test"]
    # every per-node task watches that one producer: no other task in the group runs dbt
    assert {v["producer"] for v in sensors.values()} == {PRODUCER}
    assert len(sensors) == len(models) + len(tested & set(models)) + 2


def test_each_node_task_starts_in_the_triggerer_so_it_costs_no_worker_process(rendered):
    for task_id, task in rendered["tasks"].items():
        if task["node"]:
            assert task["start_from_trigger"] is True, task_id
            assert task["trigger"] == "include.pipeline.transform.watcher.NodeTrigger", task_id
            assert task["next_method"] == "execute_complete", task_id  # on a worker: a rerun, a failure without retry
    assert rendered["tasks"][PRODUCER]["start_from_trigger"] is False


def test_a_model_runs_only_after_its_parents_tests_so_a_failing_test_stops_it(rendered, manifest):
    # dbt build skips a failed test's children; in Airflow the child's task waits for the parent's
    # test task, so a red test leaves its children upstream_failed (never retried into a rebuild);
    # a parent without tests: its one task. Every model with a model parent, from the manifest.
    tested = models_with_tests(manifest)
    checked = 0
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model":
            continue
        parents = sorted(
            manifest["nodes"][p]["name"] for p in node["depends_on"]["nodes"]
            if manifest["nodes"].get(p, {}).get("resource_type") == "model"
        )  # fmt: skip
        if not parents:
            continue
        upstream = rendered["tasks"][run_task(node["name"], tested)]["upstream"]
        assert upstream == sorted(last_task(p, tested) for p in parents), node["name"]
        checked += 1
    assert checked


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
    tested = models_with_tests(manifest)
    for mart in marts:
        own = [run_task(mart, tested)] + ([f"transform.{mart}.test"] if mart in tested else [])
        assert tasks[f"publish.{mart}"]["upstream"] == own
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
    tested = models_with_tests(manifest)
    for uid, node in manifest["nodes"].items():
        if node["resource_type"] == "model":
            assert task_of[uid] == run_task(node["name"], tested)
        elif node["resource_type"] == "snapshot":
            assert task_of[uid] == f"transform.{node['name']}.snapshot"
    own_tests: dict[str, list[str]] = {}  # a model's tests that read it alone: shown by its test task
    for uid, n in manifest["nodes"].items():
        parents = n["depends_on"]["nodes"] if n["resource_type"] == "test" else []
        if len(parents) == 1 and parents[0].startswith("model."):
            own_tests.setdefault(manifest["nodes"][parents[0]]["name"], []).append(uid)
    assert own_tests
    for model, tests in own_tests.items():
        assert {task_of[t] for t in tests} == {f"transform.{model}.test"}, model


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


UID = "model.ecommerce.orders"


def run_trigger(
    monkeypatch, *, node_status, producer_state, try_number=1, is_test_sensor=False, calls=None, xcoms=None
) -> list:
    """The trigger's events; `node_status` may be a list (one value per status read, the last one
    repeats); `calls`, if given, collects what the trigger asked for ("producer" or an XCom key);
    `xcoms`: other XCom values of the producer, by key (a model's result: its status is added)."""
    from include.pipeline.transform.node_results import result_key, tests_key
    from include.pipeline.transform.watcher import NodeTrigger

    trigger = NodeTrigger(
        model_unique_id=UID, producer_task_id=PRODUCER, dag_id="ecommerce_daily",
        run_id="", map_index=-1, poke_interval=0.01, is_test_sensor=is_test_sensor,
    )  # fmt: skip
    trigger.task_instance = FakeTI(try_number)
    asked: list[str] = calls if calls is not None else []
    statuses = list(node_status) if isinstance(node_status, list) else [node_status]

    async def xcom(self, key):
        asked.append(key)
        if key == tests_key(UID) and is_test_sensor:
            return statuses.pop(0) if len(statuses) > 1 else statuses[0]
        if key == result_key(UID) and not is_test_sensor:
            status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
            return None if status is None else {**(xcoms or {}).get(key, {}), "status": status}
        return (xcoms or {}).get(key)

    async def producer(self):
        asked.append("producer")
        return producer_state

    monkeypatch.setattr(NodeTrigger, "get_xcom_val", xcom)
    monkeypatch.setattr(NodeTrigger, "get_producer_state", producer)

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


# dbt's own message for an incremental model whose columns changed (dbt-postgres 1.11), as the
# producer pushes it in the node's result (`msg`)
OUT_OF_SYNC = """Compilation Error in model orders (models/marts/orders.sql)

              The source and target schemas on this incremental model are out of sync!
              They can be reconciled in several ways:
                - Re-run the incremental model with `full_refresh: True` to update the target schema.

  > in macro default__process_schema_changes (macros/materializations/models/incremental/on_schema_change.sql)"""


def test_a_node_whose_failure_a_retry_cannot_fix_ends_on_a_worker_that_fails_it_without_retry(monkeypatch):
    """The node's own result says why: no wait for the build to end; the failure goes to
    `execute_complete` (failures.py), not TaskFailedEvent, which Airflow would retry."""
    from include.pipeline.transform import failures
    from include.pipeline.transform.node_results import result_key
    from include.pipeline.transform.watcher import RETRY_CANNOT_FIX

    own = {result_key(UID): {"dbt_status": "error", "msg": OUT_OF_SYNC}}
    events = run_trigger(monkeypatch, node_status="error", producer_state="running", xcoms=own)
    assert [type(e).__name__ for e in events] == ["TriggerEvent"]
    failure = events[0].payload[RETRY_CANNOT_FIX]
    assert failure["kind"] == "incremental schema out of sync" and "DAYS=1 FULL_REFRESH=1" in failure["fix"]
    assert "> in macro" not in failure["message"]
    # a node dbt skipped because of it: what the producer pushed once the build ended
    pushed = {"failures": {"model.ecommerce.int_x": {"kind": "compilation error", "message": "m", "fix": "f"}},
              "blocked": {UID: "model.ecommerce.int_x"}, "tests_of": {}}  # fmt: skip
    skipped = {result_key(UID): {"dbt_status": "skipped", "msg": None}, failures.XCOM_KEY: pushed}
    events = run_trigger(monkeypatch, node_status="failed", producer_state="failed", xcoms=skipped)
    assert events[0].payload[RETRY_CANNOT_FIX]["cause"] == "model.ecommerce.int_x"
    # retried (a clear after a fix): Airflow's own failure, as before
    events = run_trigger(monkeypatch, node_status="error", producer_state="running", try_number=2, xcoms=own)
    assert [type(e).__name__ for e in events] == ["TaskFailedEvent"]


@pytest.mark.parametrize(
    ("producer_state", "ends_as"),
    [("success", "TaskSuccessEvent"), ("skipped", "TriggerEvent")],  # not selected; the producer's retry
)
def test_a_node_the_ended_build_has_no_result_for(monkeypatch, producer_state, ends_as):
    events = run_trigger(monkeypatch, node_status=None, producer_state=producer_state)
    assert [type(e).__name__ for e in events] == [ends_as]


def test_a_node_whose_result_is_there_ends_in_one_call_without_asking_the_producer(monkeypatch):
    """The chain of tasks after the build: each one's answer is already in XCom."""
    from include.pipeline.transform.node_results import result_key

    calls: list[str] = []
    events = run_trigger(monkeypatch, node_status="success", producer_state="running", calls=calls)
    assert [type(e).__name__ for e in events] == ["TaskSuccessEvent"]
    assert calls == [result_key(UID)], calls  # the result, with what its log lines say


def test_while_a_node_runs_the_producer_is_asked_every_few_polls_not_on_each(monkeypatch):
    from include.pipeline.transform.watcher import NodeTrigger

    calls: list[str] = []
    waiting = 7
    events = run_trigger(monkeypatch, node_status=[None] * waiting + ["success"], producer_state="running", calls=calls)
    assert [type(e).__name__ for e in events] == ["TaskSuccessEvent"]
    assert calls.count("producer") == -(-waiting // NodeTrigger.PRODUCER_EVERY)  # polls 0, 3, 6 of 7
    assert sum(c != "producer" for c in calls) == waiting + 1


def test_a_retry_after_the_build_goes_back_to_a_worker_to_run_its_node_again(monkeypatch):
    from include.pipeline.transform.watcher import RERUN

    events = run_trigger(monkeypatch, node_status="failed", producer_state="success", try_number=2)
    assert [type(e).__name__ for e in events] == ["TriggerEvent"]
    assert events[0].payload == {RERUN: True}


def test_a_retry_while_the_build_still_runs_keeps_watching(monkeypatch):
    events = run_trigger(monkeypatch, node_status="success", producer_state="running", try_number=2)
    assert [type(e).__name__ for e in events] == ["TaskSuccessEvent"]


# -- a node's task on a worker: `airflow dags test`, and a rerun -----------------------------------
class WorkerTI:
    dag_id, run_id = "ecommerce_daily", "manual__1"

    def __init__(self, xcoms: dict, try_number: int = 1):
        self.xcoms, self.try_number = xcoms, try_number

    def xcom_pull(self, task_ids=None, key=None, **_):
        assert task_ids == PRODUCER
        return self.xcoms.get(key)


def node_task(cls_name: str = "RunSensor"):
    from include.pipeline.transform import cosmos_config, watcher

    return getattr(watcher, cls_name)(
        task_id="orders_run", project_dir=str(settings.DBT_PROJECT_DIR), profile_config=cosmos_config.profile_config,
        producer_task_id=PRODUCER, model_unique_id=UID, select="orders",
    )  # fmt: skip


def test_under_dags_test_a_task_picked_before_the_producer_is_rescheduled_not_stuck(monkeypatch):
    from airflow.exceptions import AirflowRescheduleException

    from include.pipeline.transform.node_results import result_key
    from include.pipeline.transform.watcher import RunSensor

    task = node_task()
    state = {"producer": "scheduled"}
    monkeypatch.setattr(RunSensor, "producer_state", lambda self, context: state["producer"])
    ran = []
    monkeypatch.setattr(RunSensor, "run_node", lambda self, context: ran.append(context["ti"].try_number))
    for not_yet in ("scheduled", "queued", "up_for_retry", None):
        state["producer"] = not_yet
        with pytest.raises(AirflowRescheduleException):
            task.execute({"ti": WorkerTI({})})
    state["producer"] = "success"
    assert task.execute({"ti": WorkerTI({result_key(UID): {"status": "success"}})}) is None
    assert ran == [], "the build's result is the task's: no dbt of its own"
    task.execute({"ti": WorkerTI({result_key(UID): {"status": "error"}}, try_number=2)})
    state["producer"] = "skipped"  # the producer's retry: no build
    task.execute({"ti": WorkerTI({})})
    assert ran == [2, 1], "a retry after the build, and a build that never ran, run the node itself"


def test_a_rerun_runs_the_node_with_the_cosmos_operator_the_task_is(monkeypatch):
    """On a worker after the trigger's RERUN event: `dbt run --select <model>` (`dbt test` for a
    model's tests), as Cosmos's own operators build the command."""
    from cosmos.operators.local import DbtRunLocalOperator, DbtTestLocalOperator

    from include.pipeline.transform.watcher import RERUN

    ran = []
    monkeypatch.setattr(DbtRunLocalOperator, "execute", lambda self, context, **kw: ran.append(self.base_cmd))
    monkeypatch.setattr(DbtTestLocalOperator, "execute", lambda self, context, **kw: ran.append(self.base_cmd))
    run, test = node_task("RunSensor"), node_task("TestSensor")
    run.execute_complete({"ti": WorkerTI({})}, {RERUN: True})
    test.execute_complete({"ti": WorkerTI({})}, {RERUN: True})
    assert ran == [["run"], ["test"]]
    assert "--select" in run.add_global_flags() and "orders" in run.add_global_flags()
    assert test.is_test_sensor and not run.is_test_sensor


# -- the producer's side: dbt's events to one XCom per finished node ---------------------------------
def dbt_event(name: str, unique_id: str = UID, status: str = "", resource_type: str = "model", message: str = ""):
    """A dbt EventMsg as the callback reads it (info.name; data.node_info; data.run_result)."""
    from types import SimpleNamespace

    from google.protobuf.timestamp_pb2 import Timestamp

    started, finished = Timestamp(), Timestamp()
    started.FromJsonString("2026-01-05T10:42:04.100Z")
    finished.FromJsonString("2026-01-05T10:42:04.310Z")
    info = SimpleNamespace(unique_id=unique_id, node_status=status, resource_type=resource_type,
                           node_started_at=started, node_finished_at=finished)  # fmt: skip
    return SimpleNamespace(info=SimpleNamespace(name=name), data=SimpleNamespace(node_info=info,
                           run_result=SimpleNamespace(message=message)))  # fmt: skip


class PushTI:
    def __init__(self, delay: float = 0.0, refuse: bool = False):
        self.pushed: list[tuple[str, object]] = []
        self.delay, self.refuse = delay, refuse

    def xcom_push(self, key, value):
        import time

        time.sleep(self.delay)  # an API round trip
        if self.refuse:
            raise RuntimeError(f"XCom {key} refused")
        self.pushed.append((key, value))


def test_the_producer_pushes_a_nodes_result_once_it_finishes_not_on_every_event():
    from include.pipeline.transform.node_results import NodeRecorder, result_key

    recorder, ti = NodeRecorder({}), PushTI()
    with recorder.recording(ti):
        for name, status in [("NodeStart", "started"), ("NodeExecuting", "executing"), ("SQLQuery", ""),
                             ("NodeFinished", "success")]:  # fmt: skip
            recorder(dbt_event(name, status=status, message="MERGE 21" if status == "success" else ""))
    assert ti.pushed == [(result_key(UID), {"status": "success", "dbt_status": "success", "msg": "MERGE 21",
                          "start_time": "2026-01-05T10:42:04.100000", "finish_time": "2026-01-05T10:42:04.310000"})]  # fmt: skip


def test_a_models_tests_are_one_verdict_once_all_reported_and_a_passing_tests_own_result_is_not_pushed():
    from include.pipeline.transform.node_results import NodeRecorder, result_key, tests_key

    tests = ["test.ecommerce.unique_orders_id", "test.ecommerce.not_null_orders_id", "test.ecommerce.range"]
    recorder, ti = NodeRecorder({UID: tests}), PushTI()
    with recorder.recording(ti):
        recorder(dbt_event("NodeFinished", tests[0], "pass", "test"))
        recorder(dbt_event("NodeFinished", tests[1], "fail", "test", "Got 3 results"))
        assert tests_key(UID) not in [k for k, _ in ti.pushed], "not before every test reported"
        recorder(dbt_event("NodeFinished", tests[2], "warn", "test"))
    keys = [k for k, _ in ti.pushed]
    assert keys == [result_key(tests[1]), result_key(tests[2]), tests_key(UID)]  # the failing and warning ones
    assert ti.pushed[-1] == (tests_key(UID), "fail") and recorder.unread == 1
    recorder, ti = NodeRecorder({UID: tests[:1]}), PushTI()
    with recorder.recording(ti):
        recorder(dbt_event("NodeFinished", tests[0], "pass", "test"))
    assert ti.pushed == [(tests_key(UID), "pass")]


def test_a_node_dbt_skipped_because_a_parent_failed_fails_its_task():
    """dbt says so first (SkippingDetails), then finishes the node as skipped: its task fails (and
    may be retried into a rerun), it is not skipped; a node skipped otherwise stays skipped."""
    from include.pipeline.transform.node_results import NodeRecorder, result_key

    child = "model.ecommerce.child"
    recorder, ti = NodeRecorder({}), PushTI()
    with recorder.recording(ti):
        recorder(dbt_event("SkippingDetails", child, "skipped"))
        recorder(dbt_event("NodeFinished", child, "skipped"))
        recorder(dbt_event("NodeFinished", UID, "skipped"))
    results = dict(ti.pushed)
    assert results[result_key(child)]["status"] == "failed" and results[result_key(child)]["dbt_status"] == "skipped"
    assert results[result_key(UID)]["status"] == "skipped"


def test_the_producers_pushes_leave_dbts_threads_at_once_and_all_arrive_in_order():
    """A push from a dbt thread returns before its API call ends; every value reaches XCom, in
    the order pushed, before the recording (the producer's execute) ends."""
    import threading
    import time

    from include.pipeline.transform.node_results import NodeRecorder, result_key

    recorder, ti = NodeRecorder({}), PushTI(delay=0.02)
    waits: list[float] = []
    with recorder.recording(ti):

        def dbt_thread(name: str) -> None:
            for i in range(10):
                started = time.monotonic()
                recorder(dbt_event("NodeFinished", f"model.p.{name}{i}", "success"))
                waits.append(time.monotonic() - started)

        threads = [threading.Thread(target=dbt_thread, args=(n,)) for n in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(ti.pushed) == 20 and recorder.pushed == 20
    for name in ("a", "b"):
        assert [k for k, _ in ti.pushed if k.startswith(result_key(f"model.p.{name}"))] == [
            result_key(f"model.p.{name}{i}") for i in range(10)
        ]
    assert max(waits) < 0.015, f"a push waited for its API call ({max(waits):.3f} s)"


def test_a_push_that_fails_fails_the_producer():
    from include.pipeline.transform.node_results import NodeRecorder

    recorder = NodeRecorder({})
    with pytest.raises(RuntimeError, match="refused"), recorder.recording(PushTI(refuse=True)):
        recorder(dbt_event("NodeFinished", status="success"))


def test_a_copy_of_the_producer_records_with_its_own_recorder():
    import copy

    from include.pipeline.transform import cosmos_config
    from include.pipeline.transform.producer import Producer

    producer = Producer(task_id="p", project_dir=str(settings.DBT_PROJECT_DIR), profile_config=cosmos_config.profile_config,
                        tests_per_model={UID: ["test.x"]})  # fmt: skip
    copied = copy.deepcopy(producer)
    assert copied.recorder is not producer.recorder and copied.recorder.tests_per_model == {UID: ["test.x"]}
