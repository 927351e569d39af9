"""The Airbyte job of one task instance, kept across its tries in Airflow's task state store.

Airflow 3.3 gives every running task `context["task_state_store"]`: keys scoped to the task
instance (dag, run, task, map index) in the metadata database, kept across retries and a worker
crash, dropped with the DAG run. The platform sync writes its job id there as soon as the job is
known and removes it when the task finishes with that job, so only an unfinished try leaves it:

- a retry after a crash reads it and looks the job up before submitting (operators.py): a job
  that SUCCEEDED in between is done (its figures reported, no second sync), one still PENDING or
  RUNNING is reattached to, a FAILED, CANCELLED or unknown one is replaced by a new job;
- a task cleared after it finished (a rerun of the day) finds nothing and syncs again.

Without a store (Airflow < 3.3, or a test driving the operator with a plain context) the
operator falls back to looking for the connection's active job, as before.
"""

from __future__ import annotations

import logging
from typing import Any

STORE_KEY = "airbyte_job_id"

log = logging.getLogger(__name__)


def _store(context: Any):
    return (context or {}).get("task_state_store")


def recall(context: Any) -> int | None:
    """The job id an earlier try of this task instance left unfinished, if any."""
    store = _store(context)
    if store is None:
        return None
    value = store.get(STORE_KEY)
    return int(value) if value not in (None, "") else None


def remember(context: Any, job_id: int) -> bool:
    """Keep `job_id` for the next try of this task instance (before the wait starts); False when
    there is no store to keep it in."""
    store = _store(context)
    if store is None:
        log.warning("no task_state_store in the context: a retry after a crash cannot find job %s", job_id)
        return False
    store.set(STORE_KEY, int(job_id))
    return True


def forget(context: Any) -> None:
    """This try finished with its job: a later clear of the task syncs again."""
    store = _store(context)
    if store is not None:
        store.delete(STORE_KEY)


__all__ = ["STORE_KEY", "forget", "recall", "remember"]
