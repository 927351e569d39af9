"""The DAG's ingest task of one declared connection: the engine is chosen when the task runs.

One task per connection whichever engine a deployment uses, so the DAG reads the same with or
without an Airbyte server:

- `embedded`: PyAirbyte in its own interpreter (embedded_sync.py `run_embedded`), no server;
- `platform`: the Airbyte server through its public API (airbyte_server/operators.py).

The engine is read ONCE per task run (engine.py `current_engine`) and pushed as the XCom
`ingest_engine`, so the metrics callback records the engine that really ran.
"""

from __future__ import annotations

from typing import Any

from include.pipeline.ingest.airbyte_server.operators import AirbyteServerSync
from include.pipeline.ingest.engine import XCOM_KEY as ENGINE_XCOM_KEY
from include.pipeline.ingest.engine import current_engine


class AirbyteConnectionSync(AirbyteServerSync):
    """Sync the declared connection `connection_name` with the engine chosen at run time.

    It is the platform engine's operator (so a deferred wait, `execute_complete` and `on_kill`
    work as they do there) whose `execute` first asks which engine runs this try.

    :param connection_name: the connection's `name` in include/airbyte/connections.yaml (templated).
    :param kwargs: the platform engine's settings (`airbyte_conn_id`, `deferrable`, `poll_seconds`,
        `submit_tries`, `max_poll_errors`, `timeout`: see AirbyteServerSync, unused by the embedded
        engine) and BaseOperator's arguments (`task_id`, `execution_timeout`, ...).
    """

    def execute(self, context: Any) -> Any:
        """Run this try with the engine read now; embedded: the day `ds`, re-read from scratch when
        `params.reset_ingest` (not `params.full_refresh`: that one rebuilds dbt's models only)."""
        engine = current_engine()
        self.log.info(
            "ingest engine: %s (Airflow Variable airbyte_engine or AIRBYTE_ENGINE; embedded|platform)", engine
        )
        self._push(context, engine, key=ENGINE_XCOM_KEY)
        not_run = reader_not_run(context, self.task_id, self.connection_name)
        if not_run:
            from airflow.exceptions import AirflowSkipException

            raise AirflowSkipException(not_run)
        if engine == "embedded":
            # imported when a task runs: embedded_sync.py pulls in numpy (the shop), which the DAG's parse must not
            from include.pipeline.ingest.embedded import EmbeddedSyncError
            from include.pipeline.ingest.embedded_sync import run_embedded
            from include.pipeline.observe import ingest_problems

            def pull(reader: str) -> Any:  # a lake task: the result of the task whose read feeds it
                return reader_result(context, self.task_id, reader)

            try:
                result = run_embedded(
                    self.connection_name, context.get("ds"), resets_ingest(context.get("params")), pull=pull
                )
            except EmbeddedSyncError as e:  # what it met before it stopped: for the metrics callback
                if e.problems:
                    self._push(context, e.problems, key=ingest_problems.XCOM_KEY)
                raise
            # schema changes and skipped files: logged, alerted, recorded; the run goes on
            ingest_problems.alert_kept_going(context, self.connection_name, result)
            return result
        return super().execute(context)


def reader_result(context: Any, task_id: str, reader: str) -> Any:
    """The XCom result of `reader`'s task in this run (the same task group as `task_id`), or None."""
    group = task_id.rpartition(".")[0]
    ti = context.get("ti")
    if ti is None:
        return None
    return ti.xcom_pull(task_ids=f"{group}.{reader}" if group else reader)


def reader_not_run(context: Any, task_id: str, connection_name: str) -> str | None:
    """Why a lake task paired with a reader (shared_read.py) must not read: its reader never ran
    because a task before the ingest failed (the day's export). The pair's trigger rule is all_done,
    so that a reader's OWN failure never blocks the lake's read; a failure before both must still
    stop both, as it did when each connection hung on the export alone. None: go on."""
    from include.pipeline.ingest.declaration import load_connections
    from include.pipeline.ingest.shared_read import shared_readers

    reader = shared_readers(load_connections()).get(connection_name)
    ti = context.get("ti")
    if reader is None or ti is None:
        return None
    group = task_id.rpartition(".")[0]
    reader_id = f"{group}.{reader}" if group else reader
    states = ti.get_task_states(dag_id=ti.dag_id, task_ids=[reader_id], run_ids=[ti.run_id])
    state = (states.get(ti.run_id) or {}).get(reader_id)
    state = getattr(state, "value", state)  # a string over the execution API
    if str(state) in ("upstream_failed", "skipped"):
        return (
            f"'{connection_name}' reads after '{reader}', which did not run ({state}): a task before the "
            "ingest failed, so nothing is read; the next run reads these files"
        )
    return None


def resets_ingest(params: dict | None) -> bool:
    """Whether a run re-reads every stream from scratch: its param `reset_ingest`.

    The param `full_refresh` alone rebuilds dbt's models and leaves the ingest's state alone, so
    the run (and the day after it) reads only the new files."""
    return bool((params or {}).get("reset_ingest", False))


__all__ = ["AirbyteConnectionSync", "resets_ingest"]
