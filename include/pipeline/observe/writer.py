"""Write metrics rows as idempotent upserts, never failing or stalling the pipeline.

Every write is one short transaction on a fresh connection with a bounded connect timeout
(the connection's `connect_timeout` extra, default 2 s) and a statement timeout. When the
metrics database cannot be reached, the write logs ONE warning naming what was not recorded
and returns False; for STACK_METRICS_RETRY_AFTER seconds (default 30) later writes in the same
process skip the connection attempt (one warning each), so a database that is down costs a
process at most one connect timeout per window instead of one per event.

A database that accepts the connection and then stops answering (a frozen server, a dropped
network path, a proxy that stalls) is bounded on this side too, since the server's own
timeouts cannot fire when the server never sees the query: TCP keepalives and tcp_user_timeout
end a connection whose peer is gone, and every connection has a deadline (STACK_METRICS_DEADLINE,
default 10 s) after which its socket is shut down, so a listener in the scheduler never blocks
its loop for longer than that; the database then counts as down for the retry window.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from include.pipeline import settings
from include.pipeline.observe import config, metrics_db, schema

if TYPE_CHECKING:
    from psycopg2.sql import Composable

log = logging.getLogger("stack.metrics")

WARNING_PREFIX = "stack-metrics:"
_params_cache: dict | None = None
_down_until = 0.0
_down_reason = ""


def _core_connection(conn_id: str):
    """The connection from env (AIRFLOW_CONN_*) or the metadata DB, in a session of our own.

    Never through provide_session/create_session: in the scheduler and `dags test` those hand
    out the caller's thread-local session and close it, detaching the objects it is working on.
    """
    from airflow.secrets.environment_variables import EnvironmentVariablesBackend

    conn = EnvironmentVariablesBackend().get_connection(conn_id)
    if conn is not None:
        return conn
    from airflow import settings as airflow_settings
    from airflow.models.connection import Connection
    from sqlalchemy.orm import Session

    engine = airflow_settings.engine or airflow_settings.get_engine()
    with Session(bind=engine) as session:
        conn = session.query(Connection).filter(Connection.conn_id == conn_id).one_or_none()
        if conn is not None:
            session.expunge(conn)
    return conn


def _task_connection(conn_id: str):
    """The connection through the Task SDK (inside a task: the supervisor asks the API server)."""
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id)


def _airflow_connection_params(conn_id: str, *, in_task: bool) -> dict | None:
    """Connection facts of the Airflow connection `conn_id`, or None when Airflow has none."""
    try:
        conn = _task_connection(conn_id) if in_task else _core_connection(conn_id)
    except Exception:  # noqa: BLE001 - no such connection, or not reachable from here: use METRICS_*
        return None
    if conn is None:
        return None
    extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else {}
    return {
        "host": conn.host,
        "port": int(conn.port or 5432),
        "user": conn.login,
        "password": conn.password,
        "dbname": conn.schema,
        "connect_timeout": int(extra.get("connect_timeout", settings.METRICS_CONNECT_TIMEOUT)),
    }


def connection_params(*, in_task: bool = True) -> dict:
    """The metrics database: Airflow connection `metrics` inside Airflow, else METRICS_* settings.

    `in_task`: called from a task process (Task SDK) rather than the scheduler / API server.
    """
    global _params_cache
    if _params_cache is None:
        params = (
            _airflow_connection_params(settings.METRICS_CONN_ID, in_task=in_task)
            if "AIRFLOW_HOME" in os.environ
            else None
        )
        _params_cache = params or config.params_from_env()
    return dict(_params_cache)


def reset() -> None:
    """Forget the cached connection facts and the down window (tests; a changed connection)."""
    global _params_cache, _down_until, _down_reason
    _params_cache, _down_until, _down_reason = None, 0.0, ""


def connect(params: dict | None = None, *, deadline: float | None = None):
    """A short-lived connection to the metrics database (`connection_params()` unless `params`),
    bounded on every side (include/pipeline/observe/metrics_db.py)."""
    return metrics_db.connect(params or connection_params(), deadline=deadline)


def write(
    what: str,
    statements: Iterable[tuple[str | Composable, Sequence | dict | None]],
    params: dict | None = None,
    *,
    in_task: bool = True,
) -> bool:
    """Run `statements` in one transaction on the metrics database. Never raises.

    `what` names the event for the warning ("task success of ecommerce_daily.transform.x try 1").
    """
    global _down_until, _down_reason
    if not settings.metrics_enabled():
        return False
    statements = list(statements)
    if not statements:
        return True
    now = time.monotonic()
    if now < _down_until:
        log.warning(
            "%s %s not recorded: the metrics database was unreachable %.0f s ago (%s); next attempt in %.0f s",
            WARNING_PREFIX, what, now - (_down_until - _retry_after()), _down_reason, _down_until - now,
        )  # fmt: skip
        return False
    target = "?"
    try:
        p = dict(params or connection_params(in_task=in_task))
        target = f"{p.get('host')}:{p.get('port')}/{p.get('dbname')}"
        conn = connect(p)
    except Exception as exc:  # noqa: BLE001 - metrics must never fail the run
        _down_until = time.monotonic() + _retry_after()
        _down_reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        log.warning(
            "%s %s not recorded: cannot connect to the metrics database %s within %s s (%s); the run goes on",
            WARNING_PREFIX, what, target, (params or _params_cache or {}).get("connect_timeout"), _down_reason,
        )  # fmt: skip
        return False
    try:
        try:
            _execute(conn, statements)
        except Exception as exc:  # the database came up after `cli demo`/`make settings` migrated nothing
            if getattr(exc, "pgcode", None) not in ("42P01", "3F000"):  # undefined_table, invalid_schema_name
                raise
            log.warning("%s the metrics schema is missing on %s: creating it (%s)", WARNING_PREFIX, target, what)
            schema.migrate(p)
            _execute(conn, statements)
        return True
    except Exception as exc:  # noqa: BLE001
        if getattr(conn, "expired", False):
            _down_until = time.monotonic() + _retry_after()
            _down_reason = f"no answer within the {metrics_db.deadline_seconds():g} s deadline"
            log.warning(
                "%s %s not recorded: the metrics database %s accepted the connection but did not answer within "
                "%g s (STACK_METRICS_DEADLINE); the run goes on",
                WARNING_PREFIX, what, target, metrics_db.deadline_seconds(),
            )  # fmt: skip
            return False
        log.warning(
            "%s %s not recorded: the metrics database %s refused the write (%s: %s); the run goes on",
            WARNING_PREFIX, what, target, type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc).strip() else "",
        )  # fmt: skip
        return False
    finally:
        conn.close()


def _execute(conn, statements) -> None:
    with conn, conn.cursor() as cur:
        for sql, args in statements:
            cur.execute(sql, args)


def _retry_after() -> float:
    return float(os.environ.get("STACK_METRICS_RETRY_AFTER", "30"))


def upsert(
    table: str,
    row: dict,
    key: Sequence[str],
    *,
    overrides: dict[str, str] | None = None,
) -> tuple[Composable, dict]:
    """`insert ... on conflict (key) do update`: a second delivery of the same row leaves one row.

    A non-key column takes the new value unless it is null (`coalesce(excluded.c, t.c)`);
    `overrides` gives other update expressions, e.g. {"deliveries": "t.deliveries + 1"}.
    """
    from psycopg2 import sql

    overrides = overrides or {}
    cols = list(row)
    # names are quoted identifiers; `overrides` are SQL expressions written in this package, never input
    ident, expr = sql.Identifier, sql.SQL

    def coalesce(c: str):
        return sql.SQL("coalesce(excluded.{c}, t.{c})").format(c=ident(c))

    updates = [
        sql.SQL("{} = {}").format(ident(c), expr(overrides[c]) if c in overrides else coalesce(c))
        for c in cols
        if c not in key
    ]
    updates += [sql.SQL("{} = {}").format(ident(c), expr(e)) for c, e in overrides.items() if c not in row]
    statement = sql.SQL("insert into {table} as t ({cols}) values ({values}) on conflict ({key}) do {action}").format(
        table=sql.Identifier(settings.METRICS_SCHEMA, table),
        cols=sql.SQL(", ").join(map(ident, cols)),
        values=sql.SQL(", ").join(sql.Placeholder(c) for c in cols),
        key=sql.SQL(", ").join(map(ident, key)),
        action=sql.SQL("update set {}").format(sql.SQL(", ").join(updates)) if updates else sql.SQL("nothing"),
    )
    return statement, row
