"""Airflow listener: DAG-run and task-instance events -> metrics.dag_runs / task_runs / task_events.

Registered by plugins/metrics_listener.py. Task events fire in the process that runs the task
(the task runner: RuntimeTaskInstance); DAG-run events fire where the run's state changes (the
scheduler, or the `airflow dags test` process, with the metadata DB at hand). When a run ends,
the DAG-run hook also records every task try of the run from the metadata DB (queued time,
retries' earlier tries, tasks that never reached a worker), so the figures are complete even when
a task process died before its own event. Every write is an upsert on the event's natural key,
so an event delivered twice leaves one row; every hook swallows its errors, so a metrics
database that is down or stalls never fails or holds up a run (observe/writer.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from airflow.listeners import hookimpl

from include.pipeline import settings
from include.pipeline.observe import writer

log = logging.getLogger("stack.metrics")

TERMINAL = ("success", "failed", "skipped", "up_for_retry", "upstream_failed", "removed")


def _state(value) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _seconds(start, end) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


def _task_run_row(ti, state: str | None, end_date=None) -> dict:
    start = getattr(ti, "start_date", None)
    end = getattr(ti, "end_date", None) or end_date
    task = getattr(ti, "task", None)
    return {
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "task_id": ti.task_id,
        "map_index": int(getattr(ti, "map_index", -1) if getattr(ti, "map_index", None) is not None else -1),
        "try_number": int(ti.try_number),
        "state": state,
        "operator": getattr(ti, "operator", None) or (getattr(task, "task_type", None) if task else None),
        "queued_at": getattr(ti, "queued_dttm", None),
        "start_date": start,
        "end_date": end,
        "duration_seconds": getattr(ti, "duration", None) or _seconds(start, end),
        "hostname": getattr(ti, "hostname", None) or None,
    }


# A stored terminal state is never overwritten by a late or repeated 'running' event.
_STATE_RULE = (
    "case when t.state in ({}) and excluded.state = 'running' then t.state else coalesce(excluded.state, t.state) end"
).format(", ".join(f"'{s}'" for s in TERMINAL))


def task_statements(ti, event: str, error=None) -> list[tuple[str, dict]]:
    now = dt.datetime.now(dt.UTC)
    state = _state(getattr(ti, "state", None)) or {"failed": "failed", "success": "success"}.get(event, event)
    if event == "running":
        state = "running"
    run_row = _task_run_row(ti, state, end_date=now if event != "running" else None)
    key = ("dag_id", "run_id", "task_id", "map_index", "try_number")
    event_row = {k: run_row[k] for k in key} | {
        "event": event,
        "state": state,
        "error": (str(error)[:2000] if error else None),
    }
    return [
        writer.upsert("task_runs", run_row, key, overrides={"state": _STATE_RULE, "updated_at": "now()"}),
        writer.upsert(
            "task_events",
            event_row,
            (*key, "event"),
            overrides={"deliveries": "t.deliveries + 1", "last_seen_at": "now()"},
        ),  # fmt: skip
    ]


def _record_task(ti, event: str, error=None) -> None:
    if not settings.metrics_enabled():
        return
    try:
        what = f"task {event} of {ti.dag_id}.{ti.task_id} ({ti.run_id}, try {ti.try_number})"
        # a core TaskInstance: the API server (a state set in the UI); else the task runner's
        writer.write(
            what, task_statements(ti, event, error), in_task=type(ti).__module__ != "airflow.models.taskinstance"
        )
    except Exception as exc:  # noqa: BLE001 - a listener must never break Airflow
        log.warning("%s task %s event not recorded: %s: %s", writer.WARNING_PREFIX, event, type(exc).__name__, exc)


@hookimpl
def on_task_instance_running(previous_state, task_instance):
    _record_task(task_instance, "running")


@hookimpl
def on_task_instance_success(previous_state, task_instance):
    _record_task(task_instance, "success")


@hookimpl
def on_task_instance_failed(previous_state, task_instance, error):
    _record_task(task_instance, "failed", error)


@hookimpl
def on_task_instance_skipped(previous_state, task_instance):
    _record_task(task_instance, "skipped")


# -- DAG runs ---------------------------------------------------------------------------------
Tries = tuple[list, list]  # (the run's current task instances, the earlier tries from the history)


def read_tries(dag_run) -> Tries:
    """Every task try of the run, from the metadata DB: current task instances and history.

    Reads in the session the run is attached to (the scheduler's / `dags test`'s, without
    flushing, committing or closing it), else in a session of our own; never through
    provide_session, which would close the caller's thread-local session under it.
    """
    from airflow import settings as airflow_settings
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.taskinstancehistory import TaskInstanceHistory
    from sqlalchemy import select
    from sqlalchemy.orm import Session, object_session

    own = object_session(dag_run)
    session = own or Session(bind=airflow_settings.engine or airflow_settings.get_engine())
    try:
        with session.no_autoflush:
            current, history = (
                list(session.scalars(select(m).where(m.dag_id == dag_run.dag_id, m.run_id == dag_run.run_id)))
                for m in (TaskInstance, TaskInstanceHistory)
            )
            return current, history
    finally:
        if own is None:
            session.close()


def dag_run_statements(dag_run, msg: str | None, *, tries: Tries | None, event_state: str | None = None):
    """Upserts for one DAG-run event; `event_state` (the hook's own state) wins over the object's.

    `tries`: the run's task tries to record with it (`read_tries`), None for an event without them.
    """
    with_tasks = tries is not None
    state = event_state or _state(dag_run.state)
    statements = []
    current, history = tries or ([], [])
    tis = [*current, *history]
    for ti in tis:
        if int(ti.try_number or 0) < 1:
            continue  # never ran (e.g. upstream_failed before a try): no try to record
        row = _task_run_row(ti, _state(ti.state))
        statements.append(
            writer.upsert(
                "task_runs",
                row,
                ("dag_id", "run_id", "task_id", "map_index", "try_number"),
                overrides={"state": _STATE_RULE, "updated_at": "now()"},
            )  # fmt: skip
        )
    start, end = getattr(dag_run, "start_date", None), getattr(dag_run, "end_date", None)
    # The run's working span from its task tries: `airflow dags test` sets a run's start_date to
    # its logical date, which would make a backfilled day look weeks long.
    starts = [ti.start_date for ti in tis if getattr(ti, "start_date", None)]
    ends = [ti.end_date for ti in tis if getattr(ti, "end_date", None)]
    if starts and (start is None or start < min(starts)):
        start = min(starts)
    if ends and end is None:
        end = max(ends)
    row = {
        "dag_id": dag_run.dag_id,
        "run_id": dag_run.run_id,
        "logical_date": getattr(dag_run, "logical_date", None),
        "run_type": _state(getattr(dag_run, "run_type", None)),
        "state": state,
        "queued_at": getattr(dag_run, "queued_at", None),
        "start_date": start,
        "end_date": end,
        "duration_seconds": _seconds(start, end),
        "tasks_total": len(current) if with_tasks else None,
        "tasks_failed": sum(_state(ti.state) in ("failed", "upstream_failed") for ti in current)
        if with_tasks
        else None,
        "msg": msg,
    }
    overrides = {
        "deliveries": "t.deliveries + 1",
        "updated_at": "now()",
        "state": "case when t.state in ('success', 'failed') and excluded.state = 'running' "
        "then t.state else excluded.state end",
    }
    if state == "running":  # a (late or repeated) 'running' never rewrites the figures of a finished run
        row.update(end_date=None, duration_seconds=None)
        overrides["start_date"] = "coalesce(t.start_date, excluded.start_date)"
    statements.append(writer.upsert("dag_runs", row, ("dag_id", "run_id"), overrides=overrides))
    return statements


def record_dag_run(dag_run, msg: str | None, event_state: str, *, tries: Callable[[object], Tries] | None) -> None:
    """Record one DAG-run event, with the run's task tries when `tries` (a reader such as
    `read_tries`) is given; never raises: a metrics failure is one warning."""
    if not settings.metrics_enabled():
        return
    try:
        what = f"DAG run {event_state} of {dag_run.dag_id} ({dag_run.run_id})"
        found = tries(dag_run) if tries is not None else None
        statements = dag_run_statements(dag_run, msg, tries=found, event_state=event_state)
        writer.write(what, statements, in_task=False)
    except Exception as exc:  # noqa: BLE001
        log.warning("%s DAG run event not recorded: %s: %s", writer.WARNING_PREFIX, type(exc).__name__, exc)


@hookimpl
def on_dag_run_running(dag_run, msg):
    record_dag_run(dag_run, msg, "running", tries=None)


@hookimpl
def on_dag_run_success(dag_run, msg):
    record_dag_run(dag_run, msg, "success", tries=read_tries)


@hookimpl
def on_dag_run_failed(dag_run, msg):
    record_dag_run(dag_run, msg, "failed", tries=read_tries)
