"""dbt failures a retry cannot fix fail their tasks at once, with dbt's message and the fix.

A throwaway dbt project (in a temp folder, not the shop's) is built twice with dbt's own runner on
a real Postgres: the second build changes an incremental model's columns (`on_schema_change:
fail`), breaks a model's enforced contract and a model's compilation. The classification reads
dbt's real result objects; the producer's check, the node tasks (on a worker as under `airflow dags
test`, and from the triggerer's event) and the demo's summary text are driven from them. The second
build runs with the producer's dbt callback (node_results.NodeRecorder): what it pushes comes from
dbt's real events, on dbt's own threads.
"""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from include.pipeline.transform import failures
from tests.support.postgres import new_database

pytestmark = pytest.mark.integration

PROJECT = {
    "dbt_project.yml": "name: probe\nversion: '1.0'\nprofile: probe\nmodels:\n  probe:\n    +materialized: table\n",
    "models/inc.sql": (
        "{{ config(materialized='incremental', unique_key='id', on_schema_change='fail') }}\n"
        "select 1 as id{% if var('changed', false) %}, 2 as loyalty_points{% endif %}\n"
    ),
    "models/child.sql": "select * from {{ ref('inc') }}\n",
    "models/fine.sql": "select 1 as id\n",
    "models/bad.sql": (
        "{% if execute and var('changed', false) %}{{ exceptions.raise_compiler_error('boom: no such column') }}"
        "{% endif %}\nselect 1 as id\n"
    ),
    "models/contracted.sql": "select 1 as id, {% if var('changed', false) %}'a'{% else %}2{% endif %} as amount\n",
    "models/schema.yml": """
models:
  - name: contracted
    config: {contract: {enforced: true}}
    columns:
      - {name: id, data_type: integer}
      - {name: amount, data_type: integer}
  - name: inc
    columns:
      - name: id
        data_tests: [not_null]
  - name: fine
    columns:
      - name: id
        data_tests:
          - relationships: {arguments: {to: ref('inc'), field: id}}
""",
}


class PushTI:
    """What the recorder pushes to, and from which threads."""

    def __init__(self):
        self.pushed, self.threads = {}, set()

    def xcom_push(self, key, value):
        self.pushed[key] = value


@pytest.fixture(scope="module")
def recorded_build(postgres_server, tmp_path_factory):
    """dbt's result of the second build (the changed incremental model, contract and compilation),
    and what the producer's callback pushed during it."""
    import threading

    from dbt.cli.main import dbtRunner

    from include.pipeline.transform.node_results import NodeRecorder

    target = new_database(postgres_server)
    root = tmp_path_factory.mktemp("dbt-failures")
    for name, text in PROJECT.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "profiles.yml").write_text(
        "probe:\n  target: t\n  outputs:\n    t:\n      type: postgres\n"
        f"      host: {target.host}\n      port: {target.port}\n      user: {target.user}\n"
        f"      password: '{target.password}'\n      dbname: {target.database}\n      schema: probe\n      threads: 1\n"
    )
    args = ["build", "--project-dir", str(root), "--profiles-dir", str(root), "--quiet"]
    first = dbtRunner().invoke(args)
    assert first.success, first.result
    tests_per_model: dict[str, list[str]] = {}
    for result in first.result.results:
        if result.node.resource_type == "test":
            for model in result.node.depends_on.nodes:
                tests_per_model.setdefault(model, []).append(result.node.unique_id)
    recorder, ti = NodeRecorder(tests_per_model), PushTI()

    def which_thread(event):
        ti.threads.add(threading.current_thread().name)

    with recorder.recording(ti):
        changed = dbtRunner(callbacks=[recorder, which_thread]).invoke([*args, "--vars", "{changed: true}"])
    return changed, ti


@pytest.fixture(scope="module")
def changed_build(recorded_build):
    return recorded_build[0]


def test_the_producers_callback_runs_in_its_process_and_pushes_each_nodes_result(recorded_build):
    """dbt calls the callback in this process, on its threads as well as the caller's; it pushes
    to the task instance it was handed (no Airflow context needed on dbt's threads)."""
    import threading

    from include.pipeline.transform.node_results import result_key, tests_key

    _, ti = recorded_build
    assert ti.threads - {threading.current_thread().name}, "dbt's own threads call it too"
    pushed = ti.pushed
    assert pushed[result_key("model.probe.inc")]["status"] == "error"
    assert "out of sync" in pushed[result_key("model.probe.inc")]["msg"]
    assert pushed[result_key("model.probe.fine")]["status"] == "success"
    assert pushed[result_key("model.probe.fine")]["start_time"] < pushed[result_key("model.probe.fine")]["finish_time"]
    child = pushed[result_key("model.probe.child")]
    assert (child["status"], child["dbt_status"]) == ("failed", "skipped"), "dbt skipped it: its parent failed"
    assert pushed[tests_key("model.probe.inc")] == "fail" and pushed[tests_key("model.probe.fine")] == "fail"


def test_each_failure_a_retry_cannot_fix_is_named_with_dbts_message_and_its_fix(changed_build):
    assert not changed_build.success
    found = failures.from_dbt_runner_result(changed_build)
    got = {uid: f["kind"] for uid, f in found["failures"].items()}
    assert got == {
        "model.probe.inc": "incremental schema out of sync",
        "model.probe.contracted": "contract violated",
        "model.probe.bad": "compilation error",
    }
    inc = found["failures"]["model.probe.inc"]
    assert "The source and target schemas on this incremental model are out of sync!" in inc["message"]
    assert "loyalty_points" in inc["message"], "dbt's own troubleshooting context is kept"
    assert "> in macro" not in inc["message"] and "> called by" not in inc["message"]
    assert "make demo DATE=<the run's date> DAYS=1 FULL_REFRESH=1" in inc["fix"] and "full_refresh=true" in inc["fix"]
    assert "boom: no such column" in found["failures"]["model.probe.bad"]["message"]
    assert "data type mismatch" in found["failures"]["model.probe.contracted"]["message"]
    # what dbt skipped because of the incremental model: its child, and its test
    assert found["blocked"]["model.probe.child"] == "model.probe.inc"
    # the tests' tasks of `inc` and of `fine`: Cosmos counts the relationships test of `fine` to
    # `inc` among the tests of both, and dbt skipped it
    assert found["tests_of"] == {"model.probe.inc": "model.probe.inc", "model.probe.fine": "model.probe.inc"}
    assert "model.probe.fine" not in found["blocked"] and "model.probe.fine" not in found["failures"]


def test_the_producer_fails_the_build_without_retry(changed_build):
    """Cosmos's own check of dbt's result, as the producer runs it, after the producer noted them."""
    from cosmos.constants import InvocationMode

    from include.pipeline import settings
    from include.pipeline.transform import cosmos_config
    from include.pipeline.transform.producer import Producer

    producer = Producer(
        task_id="dbt_producer_watcher", project_dir=str(settings.DBT_PROJECT_DIR),
        profile_config=cosmos_config.profile_config, invocation_mode=InvocationMode.DBT_RUNNER,
    )  # fmt: skip
    with pytest.raises(Exception, match="dbt invocation completed with errors"):
        producer.handle_exception_dbt_runner(changed_build)
    assert set(producer.retry_cannot_fix["failures"]) == {
        "model.probe.inc",
        "model.probe.contracted",
        "model.probe.bad",
    }
    text = failures.describe_all(producer.retry_cannot_fix)
    assert "model.probe.inc: incremental schema out of sync (a retry cannot fix it)" in text
    assert "fix: rebuild it with a full refresh: `make demo DATE=<the run's date> DAYS=1 FULL_REFRESH=1`" in text
    assert issubclass(failures.DbtFailureARetryCannotFix, AirflowFailException), "Airflow never retries it"


class FakeTI:
    """What a node task's check reads of its task instance: the try, and the producer's XCom."""

    def __init__(self, xcoms: dict, try_number: int = 1):
        self.xcoms, self.try_number = xcoms, try_number

    def xcom_pull(self, task_ids=None, key=None, **_):
        assert task_ids == "transform.dbt_producer_watcher"
        return self.xcoms.get(key)


def sensor(kind: str, unique_id: str):
    from include.pipeline import settings
    from include.pipeline.transform import cosmos_config
    from include.pipeline.transform.watcher import RunSensor, TestSensor

    cls = {"run": RunSensor, "test": TestSensor}[kind]
    return cls(
        task_id=f"{unique_id}.{kind}", project_dir=str(settings.DBT_PROJECT_DIR),
        profile_config=cosmos_config.profile_config, producer_task_id="transform.dbt_producer_watcher",
        model_unique_id=unique_id, poke_interval=1,  # as cosmos_config renders it
    )  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "unique_id", "says"),
    [
        ("run", "model.probe.inc", "model.probe.inc: incremental schema out of sync (a retry cannot fix it)"),
        ("test", "model.probe.inc", "not run: model.probe.inc failed (incremental schema out of sync)"),
        ("test", "model.probe.fine", "not run: model.probe.inc failed (incremental schema out of sync)"),
        ("run", "model.probe.child", "not run: model.probe.inc failed (incremental schema out of sync)"),
        ("run", "model.probe.contracted", "model.probe.contracted: contract violated"),
    ],
)
def test_a_node_task_fails_at_once_with_the_message_and_the_fix(changed_build, kind, unique_id, says):
    """On a worker (`airflow dags test`): a failed node's task raises AirflowException (retried by
    Airflow); for these failures AirflowFailException instead, which Airflow never retries."""
    from include.pipeline.transform.node_results import result_key, tests_key

    found = failures.from_dbt_runner_result(changed_build)
    own = {tests_key(unique_id): "fail"} if kind == "test" else {result_key(unique_id): {"status": "failed"}}
    task = sensor(kind, unique_id)
    with pytest.raises(failures.DbtFailureARetryCannotFix) as raised:
        task.poke({"ti": FakeTI({**own, failures.XCOM_KEY: found})}, "failed")
    assert says in str(raised.value)
    assert "dbt says:" in str(raised.value) and "fix: " in str(raised.value)

    # a retried or cleared try, or a failure a retry may fix: a plain failure, retries kept
    with pytest.raises(AirflowException) as kept:
        task.poke({"ti": FakeTI({**own, failures.XCOM_KEY: found}, try_number=2)}, "failed")
    assert not isinstance(kept.value, failures.DbtFailureARetryCannotFix)
    with pytest.raises(AirflowException) as kept:
        task.poke({"ti": FakeTI(own)}, "failed")
    assert not isinstance(kept.value, failures.DbtFailureARetryCannotFix)


def test_from_the_triggerer_the_nodes_own_dbt_event_is_enough(changed_build):
    """In the triggerer the node's task reads its result (dbt's status and message, as the producer
    pushes it) and hands the failure to `execute_complete`, which fails without retry."""
    result = next(r for r in changed_build.result.results if r.node.unique_id == "model.probe.inc")
    event = {"status": "error", "msg": result.message}  # the node's result, as failure_from_event reads it
    failure = failures.failure_from_event(event, "model.probe.inc")
    assert failure and failure["kind"] == "incremental schema out of sync"
    assert (
        failures.failure_from_event({"status": "error", "msg": "connection reset by peer"}, "model.probe.inc") is None
    )
    assert failures.failure_from_event({"status": "success", "msg": result.message}, "model.probe.inc") is None

    from include.pipeline.transform.watcher import RETRY_CANNOT_FIX

    with pytest.raises(failures.DbtFailureARetryCannotFix, match="DAYS=1 FULL_REFRESH=1"):
        sensor("run", "model.probe.inc").execute_complete({"ti": FakeTI({})}, {RETRY_CANNOT_FIX: failure})
