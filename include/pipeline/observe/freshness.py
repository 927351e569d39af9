"""The freshness gate of the daily DAG: dbt transforms only raw data that covers the run's interval.

A sensor (reschedule mode: no worker slot held between checks) after ingest and before transform.
Each check measures every raw table that the dbt sources declare (`loaded_at_field`, newest
value, rows, rows with Airbyte type errors) and records it in the metrics schema (metrics.freshness:
the latest check; metrics.freshness_checks: one row per check, so a wait shows as a series). The
limits are the dbt sources' own `freshness:` thresholds, read from the dbt manifest (never copied).

A stream covers the run's data interval when
- this run's sync reported it (the embedded engine per stream, the platform engine per connection):
  the sync read everything the source had, even when that was 0 new records; or
- its newest `_airbyte_extracted_at` is no more than the source's `error_after` before the end of
  the data interval (capped at now: a run for an interval that has not ended asks for data up to now).

The gate passes when every stream covers the interval; otherwise it checks again every
`FRESHNESS_POKE_SECONDS` (300) and fails after `FRESHNESS_TIMEOUT_SECONDS` (3600) with a message
naming each stale stream and its lag. A lag past `warn_after` is logged as a warning.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowSensorTimeout

from include.airbyte_runtime.tables import TYPE_ERRORS
from include.pipeline import settings
from include.pipeline.endpoints import Warehouse
from include.pipeline.observe import writer

log = logging.getLogger("stack.metrics")

PERIOD_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
DEFAULT_CONN_ID = "warehouse_transform"  # dbt's connection: where a source outside connections.yaml lives


@dataclass(frozen=True)
class SourceLimit:
    """One raw table a dbt source declares, with that source's freshness thresholds (seconds)."""

    table: str  # schema.identifier
    source: str  # <source>.<table>, as dbt names it
    loaded_at_field: str
    warn_after: float | None
    error_after: float | None


def _seconds(threshold: dict | None, where: str) -> float | None:
    if not threshold or threshold.get("count") is None:
        return None
    period = threshold.get("period")
    if period not in PERIOD_SECONDS:
        raise ValueError(f"{where}: freshness period {period!r} is not one of {', '.join(PERIOD_SECONDS)}")
    return float(threshold["count"]) * PERIOD_SECONDS[period]


def source_limits(manifest_path: Path | str | None = None) -> list[SourceLimit]:
    """Every dbt source table and its `freshness:` thresholds, read from the dbt manifest."""
    if manifest_path is None:
        manifest_path = settings.DBT_MANIFEST
    path = Path(manifest_path)
    if not path.exists():
        raise FileNotFoundError(
            f"dbt manifest {path} is missing: run `make setup` (dbt parse), or set DBT_MANIFEST_PATH"
        )
    limits = []
    for uid, node in sorted(json.loads(path.read_text())["sources"].items()):
        config_ = node.get("config") or {}
        freshness = node.get("freshness") or config_.get("freshness") or {}
        where = f"{path}: {uid}"
        limits.append(
            SourceLimit(
                table=f"{node['schema']}.{node.get('identifier') or node['name']}",
                source=f"{node['source_name']}.{node['name']}",
                loaded_at_field=node.get("loaded_at_field")
                or config_.get("loaded_at_field")
                or "_airbyte_extracted_at",
                warn_after=_seconds(freshness.get("warn_after"), where),
                error_after=_seconds(freshness.get("error_after"), where),
            )
        )
    return limits


def declared_streams() -> dict[str, tuple[str, str]]:
    """schema.table -> (airflow_conn_id, connection name) of every stream in connections.yaml."""
    from include.pipeline.ingest.declaration import load_connections

    return {
        f"{c.destination.schema}.{s.name}": (c.destination.airflow_conn_id, c.name)
        for c in load_connections().connections
        if c.destination.type == "postgres"  # an s3 destination (the lake) has no raw table
        for s in c.streams
    }


def measure(cur, table: str, loaded_at_field: str = "_airbyte_extracted_at") -> dict:
    """Figures of one raw table: newest extraction (UTC), lag, rows, rows with Airbyte type errors."""
    schema, name = table.split(".", 1)
    cur.execute(
        "select data_type from information_schema.columns"
        " where table_schema = %s and table_name = %s and column_name = %s",
        (schema, name, loaded_at_field),
    )
    found = cur.fetchone()
    if found is None:
        return {"table": table, "missing": True}
    from psycopg2 import sql

    newest = sql.SQL("max({})").format(sql.Identifier(loaded_at_field))
    if found[0] == "timestamp without time zone":
        newest += sql.SQL(" at time zone 'UTC'")
    relation = sql.Identifier(schema, name)
    cur.execute(sql.SQL("select {}, count(*) from {}").format(newest, relation))
    newest_at, rows = cur.fetchone()
    # a query of its own, with the predicate of the runtime's partial index: read from it, a few
    # entries (without it, the `_airbyte_meta` of every record of the history is parsed, every day)
    cur.execute(sql.SQL("select count(*) from {} where ").format(relation) + sql.SQL(TYPE_ERRORS))
    type_errors = cur.fetchone()[0]
    lag = (dt.datetime.now(dt.UTC) - newest_at).total_seconds() if newest_at else None
    return {
        "table": table,
        "newest_extracted_at": newest_at,
        "row_count": rows,
        "lag_seconds": lag,
        "type_errors": type_errors,
    }


def quarantine_relations(cur) -> dict[str, int]:
    cur.execute(
        "select table_schema, table_name from information_schema.tables"
        " where table_name like %s and table_schema not in ('pg_catalog', 'information_schema', %s)",
        ("%quarantine%", settings.METRICS_SCHEMA),
    )
    from psycopg2 import sql

    counts = {}
    for schema, name in cur.fetchall():
        cur.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(schema, name)))
        counts[f"{schema}.{name}"] = cur.fetchone()[0]
    return counts


def statements(dag_id: str, run_id: str, figures: list[dict], quarantined: dict[str, int], max_lag_hours: float):
    out = []
    for f in figures:
        if f.get("missing"):
            continue
        row = {
            "dag_id": dag_id,
            "run_id": run_id,
            "table_name": f["table"],
            "newest_extracted_at": f["newest_extracted_at"],
            "row_count": f["row_count"],
            "lag_seconds": f["lag_seconds"],
            "max_lag_seconds": f.get("max_lag_seconds", max_lag_hours * 3600),
            "is_stale": f.get("is_stale", f["lag_seconds"] is None or f["lag_seconds"] > max_lag_hours * 3600),
        }
        out.append(
            writer.upsert("freshness", row, ("dag_id", "run_id", "table_name"), overrides={"checked_at": "now()"})
        )
        dq = {"dag_id": dag_id, "run_id": run_id, "check_name": "quarantined_rows", "subject": f["table"],
              "value": f["type_errors"], "details": "rows whose _airbyte_meta lists changes (type errors)"}  # fmt: skip
        out.append(
            writer.upsert(
                "data_quality", dq, ("dag_id", "run_id", "check_name", "subject"), overrides={"recorded_at": "now()"}
            )
        )
    for relation, count in quarantined.items():
        dq = {"dag_id": dag_id, "run_id": run_id, "check_name": "quarantined_rows", "subject": relation,
              "value": count, "details": "rows in a quarantine relation"}  # fmt: skip
        out.append(
            writer.upsert(
                "data_quality", dq, ("dag_id", "run_id", "check_name", "subject"), overrides={"recorded_at": "now()"}
            )
        )
    return out


def check_statement(dag_id: str, run_id: str, try_number: int, checked_at: dt.datetime, f: dict) -> tuple[str, dict]:
    """One row of metrics.freshness_checks: this check of one table (a wait shows as a series)."""
    row = {
        "dag_id": dag_id,
        "run_id": run_id,
        "table_name": f["table"],
        "checked_at": checked_at,
        "try_number": try_number,
        "newest_extracted_at": f.get("newest_extracted_at"),
        "lag_seconds": f.get("lag_seconds"),
        "behind_seconds": f.get("behind_seconds"),
        "max_lag_seconds": f.get("max_lag_seconds"),
        "synced_this_run": f.get("synced_this_run", False),
        "is_stale": f.get("is_stale", True),
    }
    return writer.upsert("freshness_checks", row, ("dag_id", "run_id", "table_name", "checked_at"))


def judge(figures: list[dict], limits: Sequence[SourceLimit], reference: dt.datetime, synced: set[str]) -> list[dict]:
    """Mark each measured table fresh or stale for a run whose data must reach `reference`.

    Adds to each figure: behind_seconds (reference - newest extraction), max_lag_seconds (the
    source's error_after), synced_this_run, is_stale, warn (past warn_after). Pure: no I/O.
    """
    by_table = {lim.table: lim for lim in limits}
    out = []
    for f in figures:
        lim = by_table[f["table"]]
        newest = f.get("newest_extracted_at")
        behind = (reference - newest).total_seconds() if newest else None
        synced_now = f["table"] in synced and not f.get("missing")
        if synced_now:
            stale = False
        elif f.get("missing") or behind is None:
            stale = True
        else:
            stale = lim.error_after is not None and behind > lim.error_after
        warn = behind is not None and lim.warn_after is not None and behind > lim.warn_after and not synced_now
        out.append(
            f
            | {
                "source": lim.source,
                "behind_seconds": behind,
                "max_lag_seconds": lim.error_after,
                "warn_after_seconds": lim.warn_after,
                "synced_this_run": synced_now,
                "is_stale": stale,
                "warn": warn,
            }
        )
    return out


def _hours(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds / 3600:.1f} h"


def describe_stale(f: dict, reference: dt.datetime) -> str:
    """`raw.users: newest _airbyte_extracted_at ... is 72.0 h behind ...`: one stale stream, for humans."""
    if f.get("missing"):
        return f"{f['table']}: the table (or its loaded_at_field) does not exist; has the sync run?"
    if f.get("newest_extracted_at") is None:
        return f"{f['table']}: no rows"
    return (
        f"{f['table']}: newest extraction {f['newest_extracted_at']:%Y-%m-%d %H:%M:%S} UTC is "
        f"{_hours(f['behind_seconds'])} behind {reference:%Y-%m-%d %H:%M:%S} UTC (lag now {_hours(f['lag_seconds'])}); "
        f"limit {_hours(f['max_lag_seconds'])} (error_after of dbt source {f['source']})"
    )


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: expected a number of seconds") from None
    if value < 0:
        raise ValueError(f"{name}={raw!r}: expected a number of seconds >= 0")
    return value


class FreshnessGate(BaseSensorOperator):
    """Wait until every raw table a dbt source declares covers the run's data interval (module doc).

    Reschedule mode by default: between checks the task is up_for_reschedule and holds no worker
    slot. On timeout it fails (no retry, as every sensor timeout) naming each stale stream.
    """

    ui_color = "#d8f0d2"

    def __init__(
        self,
        *,
        task_id: str = "freshness",
        ingest_group: str = "ingest",
        manifest_path: Path | str | None = None,
        poke_interval: float | None = None,
        timeout: float | None = None,
        mode: str = "reschedule",
        **kwargs,
    ) -> None:
        super().__init__(
            task_id=task_id,
            poke_interval=_env_seconds("FRESHNESS_POKE_SECONDS", 300) if poke_interval is None else poke_interval,
            timeout=_env_seconds("FRESHNESS_TIMEOUT_SECONDS", 3600) if timeout is None else timeout,
            mode=mode,
            **kwargs,
        )
        self.ingest_group = ingest_group
        self.manifest_path = None if manifest_path is None else str(manifest_path)
        self.stale: list[str] = []

    def synced_tables(self, context, streams: dict[str, tuple[str, str]]) -> set[str]:
        """Tables this run's syncs reported (XCom of the ingest tasks): current as of the sync."""
        ti = context["ti"]
        synced = set()
        for connection in sorted({name for _, name in streams.values()}):
            result = ti.xcom_pull(task_ids=f"{self.ingest_group}.{connection}", key="return_value")
            if not isinstance(result, dict) or result.get("status") not in (None, "succeeded"):
                continue
            reported = set(result.get("streams") or {})
            for table, (_, name) in streams.items():
                # the platform engine reports totals per connection only: its streams count as synced
                if name == connection and (not reported or table.split(".", 1)[1] in reported):
                    synced.add(table)
        return synced

    def poke(self, context) -> bool:

        now = dt.datetime.now(dt.UTC)
        end = context.get("data_interval_end") or now
        reference = min(end, now)
        limits = [lim for lim in source_limits(self.manifest_path) if lim.error_after is not None]
        streams = declared_streams()
        synced = self.synced_tables(context, streams)
        by_conn: dict[str, list[SourceLimit]] = {}
        for lim in limits:
            by_conn.setdefault(streams.get(lim.table, (DEFAULT_CONN_ID, ""))[0], []).append(lim)
        figures, quarantined = [], {}
        for conn_id, tables in by_conn.items():
            conn = Warehouse.from_airflow_connection(conn_id).connect()
            try:
                with conn, conn.cursor() as cur:
                    figures += [measure(cur, lim.table, lim.loaded_at_field) for lim in tables]
            finally:
                conn.close()
        # the raw tables were read as their destination's role (the ingest role owns them); the
        # quarantine relations are dbt's, read as the transform role (the ingest role cannot see them)
        conn = Warehouse.from_airflow_connection(DEFAULT_CONN_ID).connect()
        try:
            with conn, conn.cursor() as cur:
                quarantined.update(quarantine_relations(cur))
        finally:
            conn.close()
        judged = judge(figures, limits, reference, synced)
        for f in judged:
            if f["is_stale"]:
                log.warning("freshness: stale: %s", describe_stale(f, reference))
            elif f["warn"]:
                log.warning("freshness: past warn_after: %s", describe_stale(f, reference))
            else:
                log.info("freshness: %s newest extraction %s (lag %s)%s, %s rows, %s with type errors",
                         f["table"], f["newest_extracted_at"], _hours(f["lag_seconds"]),
                         ", synced by this run" if f["synced_this_run"] else "", f["row_count"], f["type_errors"])  # fmt: skip
        ti = context["ti"]
        rows = statements(ti.dag_id, ti.run_id, judged, quarantined, 0)
        rows += [check_statement(ti.dag_id, ti.run_id, int(ti.try_number), now, f) for f in judged]
        writer.write(f"freshness of {ti.dag_id} ({ti.run_id})", rows)
        self.stale = [describe_stale(f, reference) for f in judged if f["is_stale"]]
        return not self.stale

    def execute(self, context):
        try:
            return super().execute(context)
        except AirflowSensorTimeout as exc:
            if not self.stale:
                raise
            raise AirflowSensorTimeout(
                f"stale raw data: {len(self.stale)} stream(s) did not cover the data interval within "
                f"{self.timeout:.0f} s: " + "; ".join(self.stale)
            ) from exc
