"""Each dbt node's own task, which turns green or red when the producer's `dbt build` reports it.

One `dbt build` runs in the producer task (transform/producer.py); each model, snapshot and
model's tests keep their own Airflow task, which reads the node's result from the producer's XCom
(transform/node_results.py). A waiting task must cost no worker process: a worker start and a DAG
parse per task, on the same cores as dbt, made the chain of tasks lag the build under the real
scheduler (docs/benchmarks.md, "Cosmos vs one dbt build"; benchmarks/scheduler_dbt.py). So the
scheduler hands each task straight to the triggerer (Airflow's `start_from_trigger`), and
`NodeTrigger` ends the task there (TaskSuccessEvent / TaskFailedEvent / TaskSkippedEvent). What
needs a worker resumes the task in `execute_complete`: a retried or cleared task whose producer
has finished runs its node again (`dbt run` / `dbt test` / `dbt snapshot --select <node>`), with
the Cosmos operator it is (public `DbtRunLocalOperator` and kin); a failure a retry cannot fix
(failures.py) fails without retries.

Owned here rather than taken from Cosmos: Cosmos's watcher sensors and trigger live in its private
`cosmos.operators._watcher` modules (any release may change them). The tasks are rendered through
RenderConfig's public `node_converters` (cosmos_config.py); Airflow's public parts: BaseTrigger and
its task events, `start_from_trigger`, XCom (`BaseXCom.get_one`) and the task states of a run
(`RuntimeTaskInstance.get_task_states`, as Airflow's own ExternalTaskSensor trigger reads them).

`airflow dags test` ignores `start_from_trigger` and runs tasks one at a time in one process: a
task picked before the producer would wait for ever on a producer that cannot start. There a task
whose producer has not started yet asks to be rescheduled a second later instead.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk.exceptions import AirflowException, AirflowSkipException
from airflow.triggers.base import (
    BaseTrigger,
    StartTriggerArgs,
    TaskFailedEvent,
    TaskSkippedEvent,
    TaskSuccessEvent,
    TriggerEvent,
)
from cosmos.operators.local import DbtRunLocalOperator, DbtSnapshotLocalOperator, DbtTestLocalOperator

from include.pipeline.transform import failures
from include.pipeline.transform.node_results import result_key, status_of, tests_key, verdict

TRIGGER_CLASSPATH = f"{__name__}.NodeTrigger"
# The key of the trigger's event that carries a failure a retry cannot fix (failures.py).
RETRY_CANNOT_FIX = "retry_cannot_fix"
# The trigger's event that resumes the task on a worker to run its node again.
RERUN = "rerun"
# The producer has not started (or waits for its retry): under `airflow dags test` it cannot
# until this task yields.
NOT_STARTED = {None, "None", "none", "scheduled", "queued", "up_for_reschedule", "up_for_retry"}
FINAL = {"success", "failed", "skipped"}


def producer_state(dag_id: str, run_id: str, producer_task_id: str) -> str | None:
    """The producer task's state in this run (Airflow's task SDK; a worker's or the triggerer's)."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    states = RuntimeTaskInstance.get_task_states(dag_id=dag_id, task_ids=[producer_task_id], run_ids=[run_id])
    state = states.get(run_id, {}).get(producer_task_id)
    return None if state is None else str(getattr(state, "value", state))


def log_result(log: Any, unique_id: str, result: Any) -> None:
    """The node's dbt result in its task's log, as dbt's lines (transform/node_log.py)."""
    if not isinstance(result, dict):
        return
    from include.pipeline import settings
    from include.pipeline.transform.node_log import result_lines

    try:
        lines = result_lines(unique_id, result, settings.DBT_MANIFEST)
    except (OSError, ValueError) as exc:  # no manifest here: the result as it came
        lines = [f"dbt: {result} (manifest unreadable: {exc})"]
    for line in lines:
        log.info("%s", line)


class NodeTrigger(BaseTrigger):
    """Ends a node's task in the triggerer from the node's result in the producer's XCom.

    Started by the scheduler (`start_from_trigger`), so the run's identity (run id, try number)
    comes from the task instance the triggerer attaches, not from the serialized kwargs. Each poll
    asks for the node's result alone, and for the producer's state only while the node has none
    (every PRODUCER_EVERY polls): every task of a run polls at once on the cores that run dbt, and a
    node whose result is already there ends in one call, which shortens the chain of tasks that
    follows the build (each model's tests, then its children).
    """

    PRODUCER_EVERY = 3  # polls between two looks at the producer's state while the node has no result

    def __init__(self, model_unique_id: str, producer_task_id: str, dag_id: str = "", run_id: str = "",
                 map_index: int = -1, poke_interval: float = 1.0, is_test_sensor: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.model_unique_id, self.producer_task_id = model_unique_id, producer_task_id
        self.dag_id, self.run_id, self.map_index = dag_id, run_id, map_index
        self.poke_interval, self.is_test_sensor = float(poke_interval), bool(is_test_sensor)
        self._result: Any = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return TRIGGER_CLASSPATH, {
            "model_unique_id": self.model_unique_id,
            "producer_task_id": self.producer_task_id,
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "map_index": self.map_index,
            "poke_interval": self.poke_interval,
            "is_test_sensor": self.is_test_sensor,
        }

    async def get_xcom_val(self, key: str) -> Any:
        """One XCom value of the producer in this run."""
        from airflow.sdk import BaseXCom
        from asgiref.sync import sync_to_async

        return await sync_to_async(BaseXCom.get_one)(
            key=key, dag_id=self.dag_id, task_id=self.producer_task_id, run_id=self.run_id, map_index=-1
        )

    async def get_producer_state(self) -> str | None:
        from asgiref.sync import sync_to_async

        return await sync_to_async(producer_state)(self.dag_id, self.run_id, self.producer_task_id)

    async def _status(self) -> str | None:
        """The node's status (a model's tests: their verdict), or None while it has none. A model's
        result is kept for its log lines."""
        key = tests_key(self.model_unique_id) if self.is_test_sensor else result_key(self.model_unique_id)
        value = await self.get_xcom_val(key)
        if not self.is_test_sensor:
            self._result = value
        return status_of(value)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        ti = self.task_instance
        try_number = 1
        if ti is not None:
            self.dag_id, self.run_id, try_number = ti.dag_id, ti.run_id, int(ti.try_number or 1)
        if try_number > 1 and await self.get_producer_state() in FINAL:
            # A retry or a clear after the build: the node runs again on a worker.
            self.log.info("try %s of %s: running it again on a worker", try_number, self.model_unique_id)
            yield TriggerEvent({RERUN: True})
            return
        polls = 0
        while True:
            status = await self._status()
            producer = None
            if status is None and polls % self.PRODUCER_EVERY == 0:
                producer = await self.get_producer_state()
                if producer in FINAL:
                    status = await self._status()  # what the producer pushed before it ended
            ends = verdict(status, producer)
            if ends == "success":
                if status is None:
                    self.log.info("the build ended without a result for %s: nothing to do", self.model_unique_id)
                else:
                    await self._log_result()
                yield TaskSuccessEvent()
                return
            if ends == "skipped":
                self.log.info("dbt skipped %s", self.model_unique_id)
                yield TaskSkippedEvent()
                return
            if ends == "failed":
                await self._log_result()
                found = await self._failure_a_retry_cannot_fix(try_number, producer)
                if found:  # ends on a worker: execute_complete fails the task without its retries
                    yield TriggerEvent({RETRY_CANNOT_FIX: found})
                    return
                what = "tests of" if self.is_test_sensor else "node"
                why = "failed" if status is not None else "not reported: the build failed before it"
                self.log.error(
                    "dbt %s %s %s (producer task %s)", what, self.model_unique_id, why, self.producer_task_id
                )
                yield TaskFailedEvent()  # Airflow routes it to a retry while tries are left
                return
            if ends == RERUN:  # the producer's retry skipped the build: the node runs on a worker
                yield TriggerEvent({RERUN: True})
                return
            polls += 1
            await asyncio.sleep(self.poke_interval)

    async def _failure_a_retry_cannot_fix(self, try_number: int, producer: str | None) -> dict | None:
        """The failure that fails this node's task at once (failures.py); None when its task keeps its
        retries, and on a retried or cleared try. Read from the node's own result (a model's tests:
        their model's) at once; for a node dbt skipped because a parent failed, or a build that died
        before the node, from what the producer pushes when the build is over."""
        if try_number > 1:
            return None
        result = self._result if not self.is_test_sensor else await self.get_xcom_val(result_key(self.model_unique_id))
        failure = failures.failure_from_event(_as_event(result), self.model_unique_id, tests=self.is_test_sensor)
        if failure:
            return failure
        skipped = isinstance(result, dict) and str(result.get("dbt_status")).lower() == "skipped"
        if not skipped and producer not in FINAL:
            return None
        while producer not in FINAL:
            await asyncio.sleep(self.poke_interval)
            producer = await self.get_producer_state()
        found = await self.get_xcom_val(failures.XCOM_KEY)
        return failures.failure_for(found, self.model_unique_id, tests=self.is_test_sensor)

    async def _log_result(self) -> None:
        if not self.is_test_sensor:
            log_result(self.log, self.model_unique_id, self._result)


def _as_event(result: Any) -> dict | None:
    """A node's result as failures.failure_from_event reads it: dbt's own status and message."""
    if not isinstance(result, dict):
        return None
    return {**result, "status": result.get("dbt_status", result.get("status"))}


class _NodeTask:
    """What makes a Cosmos local operator the task of one node of the producer's build."""

    def __init__(self, *, model_unique_id: str, producer_task_id: str, poke_interval: float = 1,
                 is_test_sensor: bool = False, **kwargs: Any) -> None:  # fmt: skip
        kwargs.pop("deferrable", None)
        super().__init__(**kwargs)
        self.model_unique_id, self.producer_task_id = model_unique_id, producer_task_id
        self.poke_interval, self.is_test_sensor = poke_interval, is_test_sensor
        self.start_from_trigger = True
        self.start_trigger_args = StartTriggerArgs(
            trigger_cls=TRIGGER_CLASSPATH,
            trigger_kwargs={
                "model_unique_id": model_unique_id,
                "producer_task_id": producer_task_id,
                "dag_id": "",  # set from the task instance when the trigger runs
                "run_id": "",
                "map_index": -1,
                "poke_interval": float(poke_interval),
                "is_test_sensor": is_test_sensor,
            },
            next_method="execute_complete",
            next_kwargs=None,
            timeout=self.execution_timeout,
        )

    def producer_state(self, context) -> str | None:
        ti = context["ti"]
        return producer_state(ti.dag_id, ti.run_id, self.producer_task_id)

    def run_node(self, context) -> None:
        """The node again, by itself, with the Cosmos operator this task is (`dbt run --select ...`)."""
        self.log.info("running %s by itself", self.model_unique_id)
        super().execute(context)

    def execute(self, context, **kwargs: Any) -> None:
        """On a worker (`airflow dags test`; the scheduler starts these tasks in the triggerer)."""
        from airflow.exceptions import AirflowRescheduleException

        producer = self.producer_state(context)
        if str(producer) in NOT_STARTED:
            self.log.info("producer %s has not started: rescheduling this task", self.producer_task_id)
            raise AirflowRescheduleException(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
        try_number = int(getattr(context["ti"], "try_number", 1) or 1)
        if try_number > 1 and producer in FINAL:
            return self.run_node(context)
        if self.poke(context, producer):
            return None
        return self.run_node(context) if producer == "skipped" else self.defer(
            trigger=NodeTrigger(self.model_unique_id, self.producer_task_id, context["ti"].dag_id,
                                context["ti"].run_id, -1, self.poke_interval, self.is_test_sensor),
            method_name="execute_complete",
        )  # fmt: skip

    def poke(self, context, producer: str | None = None) -> bool:
        """True when the node's result says success; raises when it failed or was skipped."""
        ti = context["ti"]
        key = tests_key(self.model_unique_id) if self.is_test_sensor else result_key(self.model_unique_id)
        value = ti.xcom_pull(task_ids=self.producer_task_id, key=key)
        ends = verdict(status_of(value), producer)
        if ends in (None, RERUN):
            return False
        if not self.is_test_sensor:
            log_result(self.log, self.model_unique_id, value)
        if ends == "success":
            return True
        if ends == "skipped":
            raise AirflowSkipException(f"dbt skipped {self.model_unique_id}")
        if int(getattr(ti, "try_number", 1) or 1) == 1:
            found = ti.xcom_pull(task_ids=self.producer_task_id, key=failures.XCOM_KEY)
            failure = failures.failure_for(found, self.model_unique_id, tests=self.is_test_sensor)
            if failure:
                raise failures.DbtFailureARetryCannotFix(failures.describe(failure))
        what = "the tests of " if self.is_test_sensor else ""
        raise AirflowException(
            f"dbt: {what}{self.model_unique_id} failed (status {status_of(value)}, producer {producer}): "
            f"see the log of {self.producer_task_id}"
        )

    def execute_complete(self, context, event: dict[str, Any] | None = None) -> None:
        """The trigger's event on a worker: a failure a retry cannot fix, or the node to run again."""
        event = event or {}
        failure = event.get(RETRY_CANNOT_FIX)
        if failure:
            raise failures.DbtFailureARetryCannotFix(failures.describe(failure))
        if event.get(RERUN):
            return self.run_node(context)
        return None


# Each class defines __init__ itself: Airflow's operator metaclass applies default_args to the
# __init__ a class defines, and checks that the instance's __init__ is the one it wrapped.


class RunSensor(_NodeTask, DbtRunLocalOperator):
    """A model's task."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)


class TestSensor(_NodeTask, DbtTestLocalOperator):
    """A model's tests' task."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.pop("full_refresh", None)  # not a flag of `dbt test`
        super().__init__(is_test_sensor=True, **kwargs)


class SnapshotSensor(_NodeTask, DbtSnapshotLocalOperator):
    """A snapshot's task."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
