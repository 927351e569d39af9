"""Callbacks that record what the listener cannot see: per-stream sync figures, per-node dbt results.

- `record_sync`: on_success_callback / on_failure_callback of an ingest task. Reads the task's
  return value ({'connection', 'engine', 'seconds', 'streams': {name: {'records', 'rows_in_table',
  'table', ...}}}, plus 'job_id', 'attempts', 'bytes' when the platform engine returns them).
- `record_dbt_results`: a Cosmos operator `callback` (operator_args={"callback": ...}): Cosmos
  calls it with the temporary project dir, before it raises on a dbt failure, so failed models
  and tests are recorded too.

Both write upserts keyed by (dag, run, task, try, stream | node): a repeated call leaves one row.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from include.pipeline.observe import config, writer

log = logging.getLogger("stack.metrics")


def _ti_key(context) -> dict:
    ti = context["ti"]
    return {"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id, "try_number": int(ti.try_number)}


def sync_statements(key: dict, result: dict | None, *, connection: str, error: BaseException | None = None):
    """Rows of metrics.syncs for one sync task try (one per stream; '*' when it failed before any)."""
    status = "succeeded"
    if error is not None:
        status = "cancelled" if "cancel" in str(error).lower() else "failed"
    result = result or {}
    rows = []
    for stream, figures in (result.get("streams") or {}).items():
        rows.append(
            key
            | {
                "stream": stream,
                "connection": result.get("connection") or connection,
                "engine": result.get("engine") or os.environ.get("AIRBYTE_ENGINE", "embedded"),
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
                "engine": result.get("engine") or os.environ.get("AIRBYTE_ENGINE", "embedded"),
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


def record_sync(context) -> None:
    """on_success_callback / on_failure_callback of an ingest (sync) task."""
    if not config.enabled():
        return
    try:
        ti = context["ti"]
        key = _ti_key(context)
        error = context.get("exception")
        result = None
        if error is None:
            result = ti.xcom_pull(task_ids=ti.task_id, key="return_value")
        task = context.get("task")
        op_args = getattr(task, "op_args", None) or []
        connection = str(getattr(task, "connection_name", None) or (op_args[0] if op_args else ti.task_id))
        what = f"sync figures of {ti.dag_id}.{ti.task_id} ({ti.run_id}, try {ti.try_number})"
        writer.write(
            what, sync_statements(key, result if isinstance(result, dict) else None, connection=connection, error=error)
        )
    except Exception as exc:  # noqa: BLE001 - never fail the task from its callback
        log.warning("%s sync figures not recorded: %s: %s", writer.WARNING_PREFIX, type(exc).__name__, exc)


def dbt_statements(key: dict, run_results: dict) -> list[tuple[str, dict]]:
    """Rows of metrics.dbt_nodes (every node) and metrics.data_quality (every test) from run_results.json."""
    statements = []
    invocation = (run_results.get("metadata") or {}).get("invocation_id")
    for r in run_results.get("results") or []:
        unique_id = r["unique_id"]
        parts = unique_id.split(".")
        resource_type = parts[0]
        adapter = r.get("adapter_response") or {}
        row = key | {
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


def record_dbt_results(project_dir: str, context=None, **_) -> None:
    """Cosmos `callback`: record target/run_results.json of the dbt command that just ran."""
    if not config.enabled() or context is None:
        return
    try:
        path = Path(project_dir) / "target" / "run_results.json"
        if not path.exists():
            log.warning("%s dbt results not recorded: %s is missing", writer.WARNING_PREFIX, path)
            return
        ti = context["ti"]
        what = f"dbt results of {ti.dag_id}.{ti.task_id} ({ti.run_id}, try {ti.try_number})"
        writer.write(what, dbt_statements(_ti_key(context), json.loads(path.read_text())))
    except Exception as exc:  # noqa: BLE001
        log.warning("%s dbt results not recorded: %s: %s", writer.WARNING_PREFIX, type(exc).__name__, exc)


# default_args of the ingest task group: every try of every sync task records its figures
SYNC_METRICS_CALLBACKS = {
    "on_success_callback": record_sync,
    "on_retry_callback": record_sync,
    "on_failure_callback": record_sync,
}
