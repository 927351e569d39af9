"""Callbacks that record what the listener cannot see: per-stream sync figures, per-node dbt results.

- `record_sync`: on_success_callback / on_failure_callback of an ingest task. Reads the task's
  return value ({'connection', 'engine', 'seconds', 'streams': {name: {'records', 'rows_in_table',
  'table', ...}}}, plus 'job_id', 'attempts', 'bytes' when the platform engine returns them); a
  failed try has no return value, so its figures come from the XCom `airbyte_job` the platform
  operator pushes as soon as the job is known, and its engine from the XCom `ingest_engine`
  (the engine the task run resolved once, whatever the Variable or environment say later).
  The schema changes and bad files the sync met go to metrics.schema_changes / metrics.bad_files
  (from the result, or from the XCom `ingest_problems` of a sync that stopped on one).
- `record_dbt_results`: a Cosmos operator `callback` (operator_args={"callback": ...}): Cosmos
  calls it with the temporary project dir, before it raises on a dbt failure, so failed models
  and tests are recorded too. In watcher mode the producer's `dbt build` reports every node; a
  retried sensor that reruns its node reports that node again under its own task and try.
  Then it counts what the quarantine models hold (`record_quarantine`, observe/quarantine.py).

Both write upserts keyed by (dag, run, task, try, stream | node): a repeated call leaves one row.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from include.pipeline import endpoints, settings
from include.pipeline.observe import ingest_problems, quarantine, writer

log = logging.getLogger("stack.metrics")
TRANSFORM_CONN_ID = "warehouse_transform"  # dbt's connection (the role that owns the quarantine models)


def _ti_key(context) -> dict:
    ti = context["ti"]
    return {"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id, "try_number": int(ti.try_number)}


def sync_statements(
    key: dict,
    result: dict | None,
    *,
    connection: str,
    error: BaseException | None = None,
    engine: str | None = None,
):
    """Rows of metrics.syncs for one sync task try (one per stream; '*' when it failed before any).

    `engine`: the one the task run used, when `result` does not say it."""
    result = result or {}
    engine = result.get("engine") or engine  # None: the task failed before it knew its engine
    status = "succeeded"
    if error is not None:
        job_status = str(result.get("status") or "")
        if job_status in ("failed", "cancelled"):  # what the Airbyte job itself ended as
            status = job_status
        else:
            status = "cancelled" if "cancel" in str(error).lower() else "failed"
    rows = []
    for stream, figures in (result.get("streams") or {}).items():
        rows.append(
            key
            | {
                "stream": stream,
                "connection": result.get("connection") or connection,
                "engine": engine,
                "job_id": _text(figures.get("job_id", result.get("job_id"))),
                "attempts": figures.get("attempts", result.get("attempts")),
                "records": figures.get("records"),
                "bytes": figures.get("bytes", result.get("bytes") if len(result["streams"]) == 1 else None),
                "rows_in_table": figures.get("rows_in_table"),
                "destination_table": figures.get("table"),
                "duration_seconds": figures.get("seconds", result.get("seconds")),
                "status": figures.get("status") or status,
                "error": None if error is None else str(error)[:2000],
            }
        )
    if not rows:
        rows.append(
            key
            | {
                "stream": "*",
                "connection": result.get("connection") or connection,
                "engine": engine,
                "job_id": _text(result.get("job_id")),
                "attempts": result.get("attempts"),
                "records": result.get("records"),
                "bytes": result.get("bytes"),
                "duration_seconds": result.get("seconds"),
                "status": status,
                "error": None if error is None else str(error)[:2000],
            }
        )
    pk = ("dag_id", "run_id", "task_id", "try_number", "stream")
    return [writer.upsert("syncs", row, pk, overrides={"recorded_at": "now()"}) for row in rows]


def _text(value) -> str | None:
    return None if value is None else str(value)


AIRBYTE_JOB_XCOM = "airbyte_job"  # include/pipeline/ingest/airbyte_server/jobs.py XCOM_KEY
ENGINE_XCOM = "ingest_engine"  # include/pipeline/ingest/engine.py XCOM_KEY


def _pull(ti, key: str):
    """This try's XCom `key` of the task (Airflow clears a task's XComs when a new try starts)."""
    try:
        return ti.xcom_pull(task_ids=ti.task_id, key=key)
    except Exception as exc:  # noqa: BLE001 - a missing figure is no reason to lose the row
        log.info("XCom %s of %s not read: %s: %s", key, ti.task_id, type(exc).__name__, exc)
        return None


def _engine_fallback() -> str | None:
    """The task failed before it resolved its engine: resolve it as the task would have."""
    try:
        from include.pipeline.ingest.engine import current_engine

        return current_engine()
    except Exception:  # noqa: BLE001 - an invalid setting is what failed the task; record no engine
        return None


def record_sync(context) -> None:
    """on_success_callback / on_failure_callback of an ingest (sync) task."""
    if not settings.metrics_enabled():
        return
    try:
        ti = context["ti"]
        key = _ti_key(context)
        error = context.get("exception")
        result = _pull(ti, "return_value") if error is None else None
        if not isinstance(result, dict):  # a failed try: the job's figures as far as they got
            result = _pull(ti, AIRBYTE_JOB_XCOM)
        result = result if isinstance(result, dict) else None
        engine = (result or {}).get("engine") or _pull(ti, ENGINE_XCOM)
        engine = engine if isinstance(engine, str) else _engine_fallback()
        task = context.get("task")
        op_args = getattr(task, "op_args", None) or []
        connection = str(getattr(task, "connection_name", None) or (op_args[0] if op_args else ti.task_id))
        what = f"sync figures of {ti.dag_id}.{ti.task_id} ({ti.run_id}, try {ti.try_number})"
        statements = sync_statements(key, result, connection=connection, error=error, engine=engine)
        problems = ingest_problems.of(result if error is None else _pull(ti, ingest_problems.XCOM_KEY))
        statements += ingest_problems.statements(key, problems, connection)
        writer.write(what, statements)
    except Exception as exc:  # noqa: BLE001 - never fail the task from its callback
        log.warning("%s sync figures not recorded: %s: %s", writer.WARNING_PREFIX, type(exc).__name__, exc)


def dbt_statements(key: dict, run_results: dict, task_of: dict[str, str] | None = None) -> list[tuple[str, dict]]:
    """Rows of metrics.dbt_nodes (every node) and metrics.data_quality (every test) from run_results.json.

    `task_of` maps a node's unique_id to the Airflow task that shows it (watcher mode: the node's
    sensor, while the producer task ran the one `dbt build`); a node not in it keeps key's task.
    """
    statements = []
    task_of = task_of or {}
    invocation = (run_results.get("metadata") or {}).get("invocation_id")
    for r in run_results.get("results") or []:
        unique_id = r["unique_id"]
        parts = unique_id.split(".")
        resource_type = parts[0]
        adapter = r.get("adapter_response") or {}
        row = (
            key
            | {"task_id": task_of.get(unique_id, key["task_id"])}
            | {
                "unique_id": unique_id,
                "resource_type": resource_type,
                "name": parts[2] if len(parts) > 2 else unique_id,
                "status": str(r.get("status")),
                "execution_time_seconds": r.get("execution_time"),
                "rows_affected": adapter.get("rows_affected"),
                "failures": r.get("failures"),
                "message": (str(r["message"])[:2000] if r.get("message") else None),
                "invocation_id": invocation,
            }
        )
        statements.append(
            writer.upsert(
                "dbt_nodes",
                row,
                ("dag_id", "run_id", "task_id", "try_number", "unique_id"),
                overrides={"recorded_at": "now()"},
            )  # fmt: skip
        )
        if resource_type == "test":
            failures = r.get("failures")
            if failures is None:
                failures = 0 if str(r.get("status")) in ("pass", "success") else 1
            dq = {
                "dag_id": key["dag_id"],
                "run_id": key["run_id"],
                "check_name": "dbt_test_failures",
                "subject": unique_id,
                "value": int(failures),
                "details": str(r.get("status")),
            }
            statements.append(
                writer.upsert(
                    "data_quality",
                    dq,
                    ("dag_id", "run_id", "check_name", "subject"),
                    overrides={"recorded_at": "now()"},
                )
            )
    return statements


def watcher_tasks(task) -> dict[str, str]:
    """unique_id -> task_id of the sensor that shows that node, for a Cosmos watcher producer `task`.

    Models and snapshots map to their own sensor, tests to their model's test sensor (the
    producer's `tests_per_model`). Empty for any other operator: its results are its own.
    """
    dag = getattr(task, "dag", None)
    tests_per_model = getattr(task, "tests_per_model", None)
    if dag is None or tests_per_model is None:
        return {}
    sensors: dict[tuple[str, bool], str] = {}
    for other in dag.tasks:
        uid = getattr(other, "model_unique_id", None)
        if uid and getattr(other, "producer_task_id", None) == task.task_id:
            sensors[(uid, bool(getattr(other, "is_test_sensor", False)))] = other.task_id
    task_of = {uid: task_id for (uid, is_test), task_id in sensors.items() if not is_test}
    for model, tests in tests_per_model.items():
        if (model, True) in sensors:
            task_of.update(dict.fromkeys(tests, sensors[(model, True)]))
    return task_of


def record_dbt_results(project_dir: str, context=None, **_) -> None:
    """Cosmos `callback`: record target/run_results.json of the dbt command that just ran.

    In watcher mode that command is the producer's one `dbt build`: each node's row is filed
    under the task that shows the node, so a model's figures sit with the model's task.
    """
    if not settings.metrics_enabled() or context is None:
        return
    try:
        path = Path(project_dir) / "target" / "run_results.json"
        if not path.exists():
            log.warning("%s dbt results not recorded: %s is missing", writer.WARNING_PREFIX, path)
            return
        ti = context["ti"]
        what = f"dbt results of {ti.dag_id}.{ti.task_id} ({ti.run_id}, try {ti.try_number})"
        task_of = watcher_tasks(context.get("task"))
        writer.write(what, dbt_statements(_ti_key(context), json.loads(path.read_text()), task_of))
    except Exception as exc:  # noqa: BLE001
        log.warning("%s dbt results not recorded: %s: %s", writer.WARNING_PREFIX, type(exc).__name__, exc)
    record_quarantine(project_dir, context)


def record_quarantine(project_dir: str, context) -> None:
    """After a dbt command: what its quarantine models hold, per source, stream, problem and
    column (observe/quarantine.py), into metrics.data_quality. Read as dbt's own role."""
    try:
        relations = quarantine.manifest_models(project_dir)
        if not relations:
            return
        conn = endpoints.Warehouse.from_airflow_connection(TRANSFORM_CONN_ID).connect()
        try:
            with conn, conn.cursor() as cur:
                rows = quarantine.counts(cur, relations)
        finally:
            conn.close()
        ti = context["ti"]
        writer.write(
            f"quarantine counts of {ti.dag_id} ({ti.run_id})",
            quarantine.statements(ti.dag_id, ti.run_id, rows, relations),
        )
        for line in quarantine.lines(rows):
            log.info("%s", line)
    except Exception as exc:  # noqa: BLE001
        log.warning("%s quarantine counts not recorded: %s: %s", writer.WARNING_PREFIX, type(exc).__name__, exc)


# default_args of the ingest task group: every try of every sync task records its figures
SYNC_METRICS_CALLBACKS = {
    "on_success_callback": record_sync,
    "on_retry_callback": record_sync,
    "on_failure_callback": record_sync,
}
