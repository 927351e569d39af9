"""How the producer's one `dbt build` hands each dbt node's result to that node's own task.

This is the project's own contract, not Cosmos's: Cosmos's watcher keeps its XCom keys, its
event parser and its trigger in private modules (`cosmos.operators._watcher`), which may change in
any release. Built on public contracts only:

- dbt's: the `dbtRunner(callbacks=...)` event stream (`EventMsg`: `info.name`, `data.node_info`
  with `unique_id`, `node_status`, `node_started_at`/`node_finished_at`, and `data.run_result.
  message` on `NodeFinished`), handed over by Cosmos's public `dbt_runner_callbacks` argument;
- Airflow's: `ti.xcom_push` / `xcom_pull` (task SDK).

`NodeRecorder` is that callback. dbt calls it on its own threads, in the producer's task process,
for every event (thousands per build); it looks at three event names and drops the rest at once.
A finished node's result is queued and one thread of the recorder pushes it (one XCom per node),
so dbt's threads never wait for an API round trip. A model's tests are one verdict (`tests_key`):
pushed once every test of that model reported, `pass` or `fail`. A passing test's own result is
not pushed (no task reads it); a failing or warning one is, for the XCom tab.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

SUCCESS = frozenset({"success", "pass", "warn"})
FAILED = frozenset({"error", "fail", "failed", "runtime error"})
SKIPPED = frozenset({"skipped"})
TESTS = frozenset({"test", "unit_test"})
# dbt's events that say a node was skipped because a node upstream failed (only sent from dbt's
# on_skip with a cause): the node's result becomes "failed", so its task fails (and may be retried)
UPSTREAM_FAILED_EVENTS = frozenset({"SkippingDetails", "LogSkipBecauseError"})


def result_key(unique_id: str) -> str:
    """The XCom key of a node's result: {status, dbt_status, start_time, finish_time, msg}."""
    return f"dbt_result__{unique_id.replace('.', '__')}"


def tests_key(model_unique_id: str) -> str:
    """The XCom key of a model's tests' verdict: "pass" or "fail"."""
    return f"dbt_tests__{model_unique_id.replace('.', '__')}"


def status_of(value: Any) -> str | None:
    """The status of a node's result (a dict) or of a tests' verdict (a string); None when none."""
    if isinstance(value, dict):
        value = value.get("status")
    return None if value is None else str(value).lower()


def verdict(status: str | None, producer: str | None) -> str | None:
    """What a node's task does with its status and the producer task's state: "success", "skipped",
    "failed" (the node, or the build before it), "rerun" (the producer's retry skipped the build:
    the task runs its node itself), or None while it must wait."""
    if status in SUCCESS:
        return "success"
    if status in SKIPPED:
        return "skipped"
    if status in FAILED or producer == "failed":
        return "failed"
    if producer == "skipped":
        return "rerun"
    if producer == "success":  # the build ended without this node (not selected): nothing to do
        return "success"
    return None


def _iso(timestamp: Any) -> str | None:
    """A protobuf Timestamp (dbt's node_info) as ISO 8601; None when unset."""
    if timestamp is None:
        return None
    if isinstance(timestamp, str):
        return timestamp or None
    if not getattr(timestamp, "seconds", 0) and not getattr(timestamp, "nanos", 0):
        return None
    return timestamp.ToDatetime().isoformat()


class NodeRecorder:
    """The producer's dbt callback: each finished node's result to XCom (see the module docstring).

    `recording(ti)` scopes it to one build: pushes go to `ti`, and everything queued is sent before
    the block ends (before the producer's task turns success, which every node task waits for). A
    push that fails fails the build's task after dbt returns.
    """

    def __init__(self, tests_per_model: dict[str, list[str]] | None = None) -> None:
        self.tests_per_model = tests_per_model or {}
        self._models_of: dict[str, list[str]] = {}
        for model, tests in self.tests_per_model.items():
            for test in tests:
                self._models_of.setdefault(test, []).append(model)
        self._lock = threading.Lock()
        self._reset(None)

    def __deepcopy__(self, memo: dict) -> NodeRecorder:
        """A copy of the task (Airflow copies tasks) gets a recorder of its own, not its locks."""
        copied = NodeRecorder(self.tests_per_model)
        memo[id(self)] = copied
        return copied

    def _reset(self, ti: Any) -> None:
        self._ti = ti
        self._queue: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._upstream_failed: set[str] = set()
        self._test_results: dict[str, dict[str, str]] = {}
        self.pushed, self.busy_seconds, self.unread = 0, 0.0, 0

    # -- dbt's side (its threads) ----------------------------------------------------------------
    def __call__(self, event: Any) -> None:
        """Never raises into dbt (dbt would report a callback's error as a node's): the first
        error fails the build's task once dbt returns."""
        try:
            self._record(event)
        except Exception as exc:  # noqa: BLE001 - raised after the build, in the producer's thread
            if self._error is None:
                self._error = exc

    def _record(self, event: Any) -> None:
        name = event.info.name
        if name in UPSTREAM_FAILED_EVENTS:
            info = getattr(event.data, "node_info", None)  # LogSkipBecauseError has none (an ephemeral parent)
            if info is not None and info.unique_id:
                with self._lock:
                    self._upstream_failed.add(info.unique_id)
            return
        if name != "NodeFinished" or self._ti is None:
            return
        info = event.data.node_info
        unique_id, dbt_status = info.unique_id, str(info.node_status).lower()
        run_result = getattr(event.data, "run_result", None)
        with self._lock:
            upstream_failed = unique_id in self._upstream_failed
        result = {
            "status": "failed" if dbt_status in SKIPPED and upstream_failed else dbt_status,
            "dbt_status": dbt_status,
            "start_time": _iso(getattr(info, "node_started_at", None)),
            "finish_time": _iso(getattr(info, "node_finished_at", None)),
            "msg": (getattr(run_result, "message", None) or None) if run_result is not None else None,
        }
        if info.resource_type in TESTS:
            self._test_finished(unique_id, result)
            return
        self._queue.put((result_key(unique_id), result))

    def _test_finished(self, unique_id: str, result: dict) -> None:
        if result["status"] in SUCCESS and result["status"] != "warn":
            self.unread += 1  # no task reads a passing test's own result
        else:
            self._queue.put((result_key(unique_id), result))
        verdicts = []
        with self._lock:
            for model in self._models_of.get(unique_id, []):
                collected = self._test_results.setdefault(model, {})
                collected[unique_id] = result["status"]
                if len(collected) == len(self.tests_per_model[model]):
                    verdicts.append((model, "pass" if all(s in SUCCESS for s in collected.values()) else "fail"))
        for model, verdict_ in verdicts:
            self._queue.put((tests_key(model), verdict_))

    # -- the producer's side ---------------------------------------------------------------------
    def recording(self, ti: Any) -> _Recording:
        return _Recording(self, ti)

    def _send(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if self._error is None:
                    started = time.monotonic()
                    try:
                        self._ti.xcom_push(key=item[0], value=item[1])
                    except BaseException as exc:  # noqa: BLE001 - raised in the producer's thread
                        self._error = exc
                    self.busy_seconds += time.monotonic() - started
                    self.pushed += 1
            finally:
                self._queue.task_done()


class _Recording:
    def __init__(self, recorder: NodeRecorder, ti: Any) -> None:
        self.recorder, self.ti = recorder, ti

    def __enter__(self) -> NodeRecorder:
        self.recorder._reset(self.ti)
        self._thread = threading.Thread(target=self.recorder._send, name="dbt-results-pusher", daemon=True)
        self._thread.start()
        return self.recorder

    def __exit__(self, kind: Any, *_: Any) -> None:
        recorder = self.recorder
        recorder._queue.put(None)
        self._thread.join()
        recorder._ti = None  # events after the build (none expected) are not recorded
        if recorder._error is not None and kind is None:
            raise recorder._error
