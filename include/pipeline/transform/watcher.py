"""Cosmos watcher sensors that cost no worker process: they start and end in the triggerer.

Cosmos's watcher mode runs one `dbt build` in a producer task; each model (and each model's tests)
keeps its own Airflow task, a sensor that reads the node's result from the producer's XCom. Stock,
each sensor still runs on a worker twice (a first poke that defers, then `execute_complete`):
a process start and a DAG parse each, ~2-3 s of CPU, 4 per model here, on the same 2 cores as dbt.
Under the real scheduler that made the chain of sensors lag the build (see
benchmarks/scheduler_dbt.py). Here the scheduler hands each sensor straight to the triggerer
(Airflow's `start_from_trigger`) and the trigger ends the task itself (TaskSuccessEvent /
TaskFailedEvent / TaskSkippedEvent), so the common path never touches a worker. What still needs
a worker goes back to Cosmos's own code (`execute_complete`): a retried or cleared sensor whose
producer has finished runs its node again (`dbt run` / `dbt test --select <model>`).

`airflow dags test` ignores `start_from_trigger` and runs tasks one at a time in one process: a
sensor picked before the producer would wait for ever on a producer that cannot start. There a
sensor whose producer has not started yet asks to be rescheduled a second later instead.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from airflow.triggers.base import StartTriggerArgs, TaskFailedEvent, TaskSkippedEvent, TaskSuccessEvent, TriggerEvent
from cosmos.listeners.dag_run_listener import EventStatus
from cosmos.operators._watcher.aggregation import get_tests_status_xcom_key
from cosmos.operators._watcher.base import BaseConsumerSensor
from cosmos.operators._watcher.state import (
    PRODUCER_FINAL_STATES,
    ProducerTaskState,
    get_dbt_event_xcom_key,
    is_dbt_node_status_failed,
    is_dbt_node_status_skipped,
    is_dbt_node_status_success,
    is_dbt_node_status_terminal,
)
from cosmos.operators._watcher.triggerer import WatcherEventReason, WatcherTrigger
from cosmos.operators.watcher import (
    DbtProducerWatcherOperator,
    DbtRunWatcherOperator,
    DbtSnapshotWatcherOperator,
    DbtTestWatcherOperator,
)

from include.pipeline.transform import failures
from include.pipeline.transform.cosmos_events import COSMOS_ACTED_ON_EVENTS, STARTUP_EVENTS_XCOM_KEY

TRIGGER_CLASSPATH = f"{__name__}.NodeTrigger"
# The key of the trigger's event that carries a failure a retry cannot fix (failures.py).
RETRY_CANNOT_FIX = "retry_cannot_fix"
# The producer has not started: under `airflow dags test` it cannot until this task yields.
NOT_STARTED = {None, "None", "none", "scheduled", "queued", "up_for_reschedule"}


class NodeTrigger(WatcherTrigger):
    """WatcherTrigger that ends its task in the triggerer instead of resuming it on a worker.

    Started by the scheduler (`start_from_trigger`), so the run's identity (run id, try number)
    comes from the task instance the triggerer attaches, not from the serialized kwargs.

    Its poll is Cosmos's decision (WatcherTrigger.run) with fewer calls. Each call is an API round
    trip from the triggerer, and every sensor of a run polls at once on the cores that run dbt:
    Cosmos asks, per poll, for the dbt startup events (until logged), the producer's state, the
    node's status and then its compiled SQL (3-4 calls); this asks for the node's status, and for
    the producer's state only while the node has no result (every PRODUCER_EVERY polls). A node
    whose result is already there ends in one call, which is what shortens the chain of sensors
    that follows the build (each model's tests, then its children).
    """

    PRODUCER_EVERY = 3  # polls between two looks at the producer's state while the node has no result

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return TRIGGER_CLASSPATH, super().serialize()[1]

    async def _status(self) -> str | None:
        """The node's dbt status (a model's tests: their aggregated status), or None while it has none."""
        if self.is_test_sensor:
            return await self.get_xcom_val(get_tests_status_xcom_key(self.model_unique_id))
        return await self._get_node_status()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        ti = self.task_instance
        try_number = 1
        if ti is not None:
            self.dag_id, self.run_id, try_number = ti.dag_id, ti.run_id, int(ti.try_number or 1)
            self.map_index = ti.map_index if ti.map_index is not None else -1
        if try_number > 1 and str(await self._get_producer_task_status()) in PRODUCER_FINAL_STATES:
            # A retry or a clear after the build: Cosmos's fallback reruns this node on a worker.
            self.log.info("try %s of %s: running it again on a worker", try_number, self.model_unique_id)
            yield TriggerEvent({"status": EventStatus.FAILED, "reason": WatcherEventReason.PRODUCER_SKIPPED})
            return
        polls = 0
        while True:
            status = await self._status()
            producer = None
            if not is_dbt_node_status_terminal(status) and polls % self.PRODUCER_EVERY == 0:
                producer = await self._get_producer_task_status()
                if producer in PRODUCER_FINAL_STATES:
                    status = await self._status()  # what the producer pushed before it ended
            if is_dbt_node_status_success(status):
                await self._log_node_event()
                yield TaskSuccessEvent()
                return
            if is_dbt_node_status_skipped(status):
                self.log.info("dbt skipped %s (an upstream node failed)", self.model_unique_id)
                yield TaskSkippedEvent()
                return
            if is_dbt_node_status_failed(status) or producer == ProducerTaskState.FAILED:
                failed = is_dbt_node_status_failed(status)
                reason = WatcherEventReason.NODE_FAILED if failed else WatcherEventReason.PRODUCER_FAILED
                await self._log_node_event()
                found = await self._failure_a_retry_cannot_fix(try_number, producer)
                if found:  # ends on a worker: execute_complete fails the task without its retries
                    yield TriggerEvent({"status": EventStatus.FAILED, "reason": reason, RETRY_CANNOT_FIX: found})
                    return
                what = "tests of" if self.is_test_sensor else "node"
                self.log.error("dbt %s %s: %s (producer task %s)", what, self.model_unique_id, reason.value,
                               self.producer_task_id)  # fmt: skip
                yield TaskFailedEvent()  # Airflow routes it to a retry while tries are left
                return
            if producer == ProducerTaskState.SKIPPED:  # the producer's own retry: Cosmos's fallback on a worker
                yield TriggerEvent({"status": EventStatus.FAILED, "reason": WatcherEventReason.PRODUCER_SKIPPED})
                return
            if producer == ProducerTaskState.SUCCESS:  # the build ended without this node (not selected)
                self.log.info("the build ended without a result for %s: nothing to do", self.model_unique_id)
                yield TaskSuccessEvent()
                return
            polls += 1
            await asyncio.sleep(self.poke_interval)

    async def _failure_a_retry_cannot_fix(self, try_number: int, producer: str | None) -> dict | None:
        """The failure that fails this node's task at once (failures.py); None when its task keeps its
        retries, and on a retried or cleared try. Read from the node's own dbt event (a model's tests:
        their model's) at once; for a node dbt skipped because a parent failed, or a build that died
        before the node, from what the producer pushes when the build is over."""
        if try_number > 1:
            return None
        event = await self.get_xcom_val(get_dbt_event_xcom_key(self.model_unique_id))
        failure = failures.failure_from_event(event, self.model_unique_id, tests=self.is_test_sensor)
        if failure:
            return failure
        skipped = isinstance(event, dict) and str(event.get("status")).lower() == "skipped"
        if not skipped and producer not in PRODUCER_FINAL_STATES:
            return None
        while producer not in PRODUCER_FINAL_STATES:
            await asyncio.sleep(self.poke_interval)
            producer = await self._get_producer_task_status()
        found = await self.get_xcom_val(failures.XCOM_KEY)
        return failures.failure_for(found, self.model_unique_id, tests=self.is_test_sensor)

    async def _log_node_event(self) -> None:
        """The node's dbt result in this task's log, as dbt's lines (transform/node_log.py)."""
        if self.is_test_sensor:
            return
        event = await self.get_xcom_val(get_dbt_event_xcom_key(self.model_unique_id))
        if not isinstance(event, dict):
            return
        from include.pipeline import settings
        from include.pipeline.transform.node_log import result_lines

        try:
            lines = result_lines(self.model_unique_id, event, settings.DBT_MANIFEST)
        except (OSError, ValueError) as exc:  # no manifest here: the event as it came
            lines = [f"dbt: {event} (manifest unreadable: {exc})"]
        for line in lines:
            self.log.info("%s", line)


# dbt events that only say a node is under way: the sensors act on NodeFinished alone.
UNDER_WAY_EVENTS = frozenset({"NodeStart", "NodeCompiling", "NodeExecuting"})


def is_a_passing_tests_own_event(key: str, value: Any) -> bool:
    """The XCom of one data or unit test's dbt event (not its model's), for a test that passed."""
    return (
        key.startswith(("test__", "unit_test__"))
        and key.endswith("_dbt_event")
        and isinstance(value, dict)
        and str(value.get("status")).lower() in ("pass", "success")  # not "warn": its message says why
    )


class PushesOffDbtThreads:
    """While the producer runs, every XCom it pushes goes through one background thread, in order.

    Cosmos pushes a node's result (status, dbt event, compiled SQL, its tests' verdict) from inside
    dbt's event callbacks, on dbt's own threads and under one lock: each push is an API round trip
    during which that dbt thread, and any other waiting for the lock, runs nothing. Here the
    callback only queues the value (a deep copy: what was pushed is what is sent) and one thread
    sends them in the order they came. Everything queued is sent before `execute` returns, i.e.
    before the producer's task turns success, which is what every sensor waits for; a push that
    fails fails the task, as before. The one value Cosmos reads back while dbt runs (the startup
    events, read-modify-write) is pushed in line, after the queue has drained.

    Scoped to the producer's task process (Airflow runs one task per process): the task SDK's
    `_xcom_push`, which `ti.xcom_push` calls, is swapped for the queue and put back on exit.

    A passing test's own dbt event is not pushed at all: no task reads it (a model's tests' task
    reads their aggregated status, `<model>_tests_status`), and it was 64 of the 153 pushes of a
    build of this project. A test that fails, warns or errors keeps its event, in the XCom tab.
    """

    def __init__(self) -> None:
        import queue
        import threading

        from airflow.sdk.execution_time import task_runner

        self._module, self._original = task_runner, task_runner._xcom_push
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._send, name="xcom-pusher", daemon=True)
        self._error: BaseException | None = None
        self.count, self.busy_seconds, self.unread = 0, 0.0, 0

    def __enter__(self) -> PushesOffDbtThreads:
        self._thread.start()
        self._module._xcom_push = self._push
        return self

    def _push(self, ti: Any, key: str, value: Any, **kwargs: Any) -> None:
        if self._error is not None:
            raise self._error
        if is_a_passing_tests_own_event(key, value):
            self.unread += 1
            return
        if key == STARTUP_EVENTS_XCOM_KEY:  # Cosmos pulls it back and appends: send in line
            self._queue.join()
            self._original(ti, key, value, **kwargs)
            return
        self._queue.put((ti, key, copy.deepcopy(value), kwargs))

    def _send(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if self._error is None:
                    started = time.monotonic()
                    try:
                        self._original(item[0], item[1], item[2], **item[3])
                    except BaseException as exc:  # noqa: BLE001 - raised in the task's thread
                        self._error = exc
                    self.busy_seconds += time.monotonic() - started
                    self.count += 1
            finally:
                self._queue.task_done()

    def __exit__(self, kind: Any, *_: Any) -> None:
        self._module._xcom_push = self._original
        self._queue.put(None)
        self._thread.join()
        if self._error is not None and kind is None:
            raise self._error


# The dbt events Cosmos's producer acts on (beyond logging them): node statuses and errors (pushed
# to XCom), the startup events (versions), and why dbt skipped a node (a failed parent).
ACTED_ON_EVENTS = COSMOS_ACTED_ON_EVENTS | {
    "MainReportVersion",
    "AdapterRegistered",
    "SkippingDetails",
    "LogSkipBecauseError",
}


def skipping_unread_debug_events(callback: Any) -> Any:
    """`callback` (Cosmos's dbt event callback) without the debug-level events it would only log.

    Cosmos turns every dbt event into JSON (protobuf's MessageToJson) and parses it back, on dbt's
    threads: thousands per build (each SQL statement, connection, timing) for a log line at DEBUG
    that the task log drops anyway. Those are skipped here, before the conversion, unless the
    Cosmos logger logs DEBUG; events at INFO and above, and any event Cosmos acts on, go through.
    """
    cosmos_log = logging.getLogger("cosmos.operators._watcher.base")

    def callback_on_what_is_read(event: Any) -> None:
        info = event.info
        if info.level == "debug" and info.name not in ACTED_ON_EVENTS and not cosmos_log.isEnabledFor(logging.DEBUG):
            return
        callback(event)

    callback_on_what_is_read.skips_unread_debug_events = True
    return callback_on_what_is_read


class Producer(DbtProducerWatcherOperator):
    """Cosmos's producer (one `dbt build`), minus one XCom write per node event that no one reads.

    Cosmos pushes the latest dbt event of every node to XCom on each of its events (start,
    compiling, executing, finished), from inside dbt's threads and under one lock: ~4 API calls
    per node that hold dbt up. The sensors read that key only once the node has finished, so
    under-way events are only logged here (as before), not pushed.
    """

    @property
    def _dbt_runner_callbacks(self) -> list | None:
        """The callbacks dbt gets (DbtLocalBaseOperator.run_dbt_runner), each skipping unread events."""
        return self.__dict__.get("_callbacks_on_what_is_read", self.__dict__.get("_dbt_runner_callbacks"))

    @_dbt_runner_callbacks.setter
    def _dbt_runner_callbacks(self, callbacks: list | None) -> None:
        self.__dict__["_callbacks_on_what_is_read"] = None if callbacks is None else [
            c if getattr(c, "skips_unread_debug_events", False) else skipping_unread_debug_events(c) for c in callbacks
        ]  # fmt: skip

    def handle_exception_dbt_runner(self, result: Any) -> None:
        """Cosmos's check of dbt's result (raises when the build failed), after noting from dbt's own
        result objects the failures a retry cannot fix (failures.py)."""
        self.retry_cannot_fix = failures.from_dbt_runner_result(result)
        return super().handle_exception_dbt_runner(result)

    def execute(self, context, **kwargs: Any) -> Any:
        self.retry_cannot_fix: dict = {}
        failed: Exception | None = None
        # The dbt profile's Airflow connection, read before the build. Cosmos reads it here itself
        # when it emits datasets (the profile's host names them); with emit_datasets off its first
        # read came inside run_command, where the Task SDK answered "isn't defined" (Cosmos 1.15.1,
        # Airflow 3.3.2: cause not found), failing every build.
        _ = self.profile_config.profile_mapping.conn
        with PushesOffDbtThreads() as pusher:
            try:
                result = super().execute(context, **kwargs)
            except Exception as exc:
                if not self.retry_cannot_fix:
                    raise
                # for the node tasks and the demo's summary; sent before this task ends
                context["ti"].xcom_push(key=failures.XCOM_KEY, value=self.retry_cannot_fix)
                failed = exc
        if failed is not None:
            raise failures.DbtFailureARetryCannotFix(
                "dbt build failed in a way a retry cannot fix (no retry):\n"
                + failures.describe_all(self.retry_cannot_fix)
            ) from failed
        self.log.info(
            "%d XCom values pushed by one thread beside dbt's, in %.1f s of API calls"
            " (%d passing tests' own dbt events not pushed: no task reads them)",
            pusher.count,
            pusher.busy_seconds,
            pusher.unread,
        )
        return result

    def _make_parse_callable(self):
        parse = super()._make_parse_callable()

        def parse_finished_only(line: str, extra_kwargs: Any) -> None:
            try:
                name = json.loads(line).get("info", {}).get("name")
            except (ValueError, AttributeError):
                name = None
            if name in UNDER_WAY_EVENTS and extra_kwargs:
                # without a context Cosmos only logs the line: no XCom, no status (not terminal)
                return parse(line, {**extra_kwargs, "context": None})
            return parse(line, extra_kwargs)

        return parse_finished_only


class _WaitsForTheProducerToStart:
    """Reschedule, rather than wait, while the producer has not started (`airflow dags test`)."""

    def execute(self, context, **kwargs: Any) -> None:
        from airflow.exceptions import AirflowRescheduleException

        if str(self._get_producer_task_status(context)) in NOT_STARTED:
            self.log.info("producer %s has not started: rescheduling this sensor", self.producer_task_id)
            raise AirflowRescheduleException(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
        return super().execute(context, **kwargs)


class _FailsAtOnceWhenARetryCannotFix:
    """A node whose dbt failure a retry cannot fix (failures.py) fails its task without its retries,
    with dbt's message and the fix: on a worker (`poke`, as under `airflow dags test`) and from the
    triggerer (`execute_complete` of the trigger's event)."""

    def poke(self, context) -> bool:
        try:
            return super().poke(context)
        except (AirflowFailException, AirflowSkipException):
            raise
        except AirflowException:
            ti = context["ti"]
            if int(getattr(ti, "try_number", 1) or 1) == 1:
                found = ti.xcom_pull(task_ids=self.producer_task_id, key=failures.XCOM_KEY)
                failure = failures.failure_for(found, self.model_unique_id, tests=self.is_test_sensor)
                if failure:
                    raise failures.DbtFailureARetryCannotFix(failures.describe(failure)) from None
            raise

    def execute_complete(self, context, event: dict[str, Any]) -> None:
        failure = (event or {}).get(RETRY_CANNOT_FIX)
        if failure:
            raise failures.DbtFailureARetryCannotFix(failures.describe(failure))
        return super().execute_complete(context, event)


class RunSensor(_FailsAtOnceWhenARetryCannotFix, _WaitsForTheProducerToStart, DbtRunWatcherOperator):
    """A model's task."""


class TestSensor(_FailsAtOnceWhenARetryCannotFix, _WaitsForTheProducerToStart, DbtTestWatcherOperator):
    """A model's tests' task."""


class SnapshotSensor(_FailsAtOnceWhenARetryCannotFix, _WaitsForTheProducerToStart, DbtSnapshotWatcherOperator):
    """A snapshot's task."""


SENSOR_CLASSES = {DbtRunWatcherOperator: RunSensor, DbtTestWatcherOperator: TestSensor,
                  DbtSnapshotWatcherOperator: SnapshotSensor}  # fmt: skip


def start_sensors_in_the_triggerer(tasks) -> int:
    """Make each Cosmos watcher sensor in `tasks` start and end in the triggerer; return how many.

    The producer among `tasks` becomes `Producer` (fewer XCom writes while dbt runs).
    """
    count = 0
    for task in tasks:
        if type(task) is DbtProducerWatcherOperator:
            task.__class__ = Producer
            continue
        if not isinstance(task, BaseConsumerSensor) or type(task) not in SENSOR_CLASSES:
            continue
        task.__class__ = SENSOR_CLASSES[type(task)]
        task.start_from_trigger = True
        task.start_trigger_args = StartTriggerArgs(
            trigger_cls=TRIGGER_CLASSPATH,
            trigger_kwargs={
                "model_unique_id": task.model_unique_id,
                "producer_task_id": task.producer_task_id,
                "dag_id": task.dag_id,
                "run_id": "",  # set from the task instance when the trigger runs
                "map_index": -1,
                "poke_interval": float(task.poke_interval),
                "is_test_sensor": task.is_test_sensor,
            },
            next_method="execute_complete",
            next_kwargs=None,
            timeout=task.execution_timeout,
        )
        count += 1
    return count
