"""The freshness check of the daily DAG: newest `_airbyte_extracted_at` and quarantined rows per raw table.

Runs after ingest, beside transform. Reads the warehouse; records metrics.freshness (table, newest
extraction, lag, row count) and metrics.data_quality ('quarantined_rows': rows whose _airbyte_meta
lists changes, i.e. values Airbyte could not type, and rows of any relation named *quarantine*).
A lag above `max_lag_hours` is logged as a warning and flagged `is_stale`; it does not fail the run
(the data is what the source had). STACK_METRICS=off skips the check.
"""

from __future__ import annotations

import datetime as dt
import logging

from airflow.sdk import BaseHook, task

from include.pipeline.observe import config, writer

log = logging.getLogger("stack.metrics")

MAX_LAG_HOURS = 26.0  # a daily schedule plus slack


def raw_tables() -> list[tuple[str, str]]:
    """(airflow_conn_id, schema.table) of every declared stream."""
    from include.pipeline.ingest.connections import load_connections

    return [
        (c.destination.airflow_conn_id, f"{c.destination.schema}.{s.name}")
        for c in load_connections().connections
        for s in c.streams
    ]


def measure(cur, table: str) -> dict:
    """Figures of one raw table: newest extraction (UTC), lag, rows, rows with Airbyte type errors."""
    schema, name = table.split(".", 1)
    cur.execute(
        "select data_type from information_schema.columns"
        " where table_schema = %s and table_name = %s and column_name = '_airbyte_extracted_at'",
        (schema, name),
    )
    found = cur.fetchone()
    if found is None:
        return {"table": table, "missing": True}
    from psycopg2 import sql

    newest = "max(_airbyte_extracted_at)" + (" at time zone 'UTC'" if found[0] == "timestamp without time zone" else "")
    cur.execute(
        sql.SQL(
            "select {newest}, count(*),"
            " count(*) filter (where jsonb_array_length(coalesce(_airbyte_meta::jsonb -> 'changes', '[]'::jsonb)) > 0)"
            " from {table}"
        ).format(newest=sql.SQL(newest), table=sql.Identifier(schema, name))
    )
    newest_at, rows, type_errors = cur.fetchone()
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
        ("%quarantine%", config.SCHEMA),
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
            "max_lag_seconds": max_lag_hours * 3600,
            "is_stale": f["lag_seconds"] is None or f["lag_seconds"] > max_lag_hours * 3600,
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


@task(task_id="freshness", retries=2)
def check_freshness(max_lag_hours: float = MAX_LAG_HOURS, **context) -> dict:
    """Measure every raw table's freshness and quarantined rows; record them in the metrics schema."""
    if not config.enabled():
        log.info("freshness check skipped: STACK_METRICS=off")
        return {"skipped": "STACK_METRICS=off"}
    import psycopg2

    figures, quarantined = [], {}
    by_conn: dict[str, list[str]] = {}
    for conn_id, table in raw_tables():
        by_conn.setdefault(conn_id, []).append(table)
    # the raw tables as their destination's role (the ingest role owns them); the quarantine
    # relations are dbt's, read as the transform role (the ingest role cannot see them)
    from include.pipeline.transform.cosmos_config import WAREHOUSE_CONN_ID

    for conn_id, tables in [*by_conn.items(), (WAREHOUSE_CONN_ID, None)]:
        c = BaseHook.get_connection(conn_id)
        with psycopg2.connect(host=c.host, port=int(c.port or 5432), user=c.login, password=c.password,
                              dbname=c.schema, connect_timeout=10) as conn, conn.cursor() as cur:  # fmt: skip
            if tables is None:
                quarantined.update(quarantine_relations(cur))
            else:
                figures += [measure(cur, t) for t in tables]
        conn.close()
    for f in figures:
        if f.get("missing"):
            log.warning("freshness: %s does not exist (has the sync run?)", f["table"])
        elif f["lag_seconds"] is None or f["lag_seconds"] > max_lag_hours * 3600:
            log.warning(
                "freshness: %s is stale: newest extraction %s, older than %s h",
                f["table"],
                f["newest_extracted_at"],
                max_lag_hours,
            )
        else:
            log.info("freshness: %s newest extraction %s (lag %.0f s), %s rows, %s with type errors",
                     f["table"], f["newest_extracted_at"], f["lag_seconds"], f["row_count"], f["type_errors"])  # fmt: skip
    ti = context["ti"]
    writer.write(
        f"freshness of {ti.dag_id} ({ti.run_id})", statements(ti.dag_id, ti.run_id, figures, quarantined, max_lag_hours)
    )
    return {
        "tables": {
            f["table"]: {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in f.items() if k != "table"}
            for f in figures
        },
        "quarantined": quarantined,
    }
