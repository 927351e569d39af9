"""The transform's one `dbt build` (task `transform.dbt_producer_watcher`), which reports each node.

Cosmos's public `DbtBuildLocalOperator` runs the build in this task's process (dbtRunner); dbt
hands every event to `NodeRecorder` (transform/node_results.py) through Cosmos's public
`dbt_runner_callbacks` argument, and the recorder pushes each finished node's result to this
task's XCom, where the node's own task reads it (transform/watcher.py). Cosmos's own watcher
producer (`DbtProducerWatcherOperator`) is not used: its per-node XCom, parser and retry backup
live in Cosmos's private `_watcher` modules, and it pushed ~4 XComs per node from inside dbt's
threads; this pushes one, from a thread of its own.

Once dbt returns, `handle_exception_dbt_runner` (Cosmos's public hook for dbt's result) notes the
failures a retry cannot fix (failures.py) and the task fails without its retries.

A retry of this task does not build again (as Cosmos's watcher producer): it is skipped, and each
node task still waiting runs its own node (`dbt run` / `dbt test --select <model>`).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowSkipException
from cosmos.constants import PRODUCER_WATCHER_DEFAULT_PRIORITY_WEIGHT, WATCHER_TASK_WEIGHT_RULE, InvocationMode
from cosmos.operators.local import DbtBuildLocalOperator

from include.pipeline.transform import failures
from include.pipeline.transform.node_results import NodeRecorder


class Producer(DbtBuildLocalOperator):
    """One `dbt build` whose nodes' results reach XCom as dbt reports them.

    `tests_per_model`: model unique_id -> the unique_ids of the tests its tests' task stands for
    (Cosmos's DbtGraph.tests_per_model). Read by observe/callbacks.py too.
    """

    def __init__(self, *, tests_per_model: dict[str, list[str]] | None = None, **kwargs: Any) -> None:
        self.tests_per_model = tests_per_model or {}
        self.recorder = NodeRecorder(self.tests_per_model)
        kwargs.setdefault("priority_weight", PRODUCER_WATCHER_DEFAULT_PRIORITY_WEIGHT)
        kwargs.setdefault("weight_rule", WATCHER_TASK_WEIGHT_RULE)
        kwargs["invocation_mode"] = InvocationMode.DBT_RUNNER  # the callbacks run in this process
        kwargs["dbt_runner_callbacks"] = [self.recorder]
        kwargs["emit_datasets"] = False  # the DAG's Assets are its own (cosmos_config.py)
        # each node's own task shows its SQL's path (node_log.py); all the build's SQL here is noise
        kwargs["should_store_compiled_sql"] = False
        super().__init__(**kwargs)
        self.retry_cannot_fix: dict = {}

    def handle_exception_dbt_runner(self, result: Any) -> None:
        """Cosmos's check of dbt's result (raises when the build failed), after noting from dbt's own
        result objects the failures a retry cannot fix (failures.py)."""
        self.retry_cannot_fix = failures.from_dbt_runner_result(result)
        return super().handle_exception_dbt_runner(result)

    def execute(self, context, **kwargs: Any) -> Any:
        ti = context["ti"]
        if int(getattr(ti, "try_number", 1) or 1) > 1:
            raise AirflowSkipException(
                "the dbt build runs once per run: each node task still waiting runs its own node instead"
            )
        self.retry_cannot_fix = {}
        failed: Exception | None = None
        # The dbt profile's Airflow connection, read before the build: its first read inside
        # run_command got "isn't defined" from the Task SDK (Cosmos 1.15.1, Airflow 3.3.2: cause
        # not found), failing every build.
        _ = self.profile_config.profile_mapping.conn
        with self.recorder.recording(ti) as recorder:
            try:
                result = super().execute(context, **kwargs)
            except Exception as exc:
                if not self.retry_cannot_fix:
                    raise
                failed = exc
        if failed is not None:
            # for the node tasks and the demo's summary
            ti.xcom_push(key=failures.XCOM_KEY, value=self.retry_cannot_fix)
            raise failures.DbtFailureARetryCannotFix(
                "dbt build failed in a way a retry cannot fix (no retry):\n"
                + failures.describe_all(self.retry_cannot_fix)
            ) from failed
        self.log.info(
            "%d node results pushed to XCom by one thread beside dbt's, in %.1f s of API calls"
            " (%d passing tests' own results not pushed: no task reads them)",
            recorder.pushed,
            recorder.busy_seconds,
            recorder.unread,
        )
        return result
