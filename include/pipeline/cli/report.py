"""The summary printed after a run: task states, rows per layer, duplicate keys, the records in
quarantine (per source, stream, problem and column), wall time.

`python -m include.pipeline.cli.report DAG_ID DATE [DAG_SECONDS TOTAL_SECONDS]`, inside Airflow's
environment. Exits 1 when any task of the run did not succeed (or the run is missing).
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from collections import Counter
from datetime import timedelta

import psycopg2
from psycopg2 import sql

from include.pipeline import endpoints, settings
from include.pipeline.ingest.declaration import load_connections
from include.pipeline.observe import quarantine

OK_STATES = {"success", "skipped"}


def task_states(dag_id: str, date: str) -> tuple[str | None, dict[str, str], dict]:
    """(run state, {task_id: state}, the dbt failures a retry cannot fix) of the run of `dag_id`
    whose logical date is `date`; the failures are the XCom the dbt producer pushes
    (include/pipeline/transform/failures.py), {} when there is none."""
    from airflow.models import DagRun, TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.sdk import timezone
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from include.pipeline.transform.failures import XCOM_KEY

    day = timezone.parse(date)
    with create_session() as session:
        run = session.scalars(
            select(DagRun)
            .where(DagRun.dag_id == dag_id, DagRun.logical_date >= day, DagRun.logical_date < day + timedelta(days=1))
            .order_by(DagRun.id.desc())
        ).first()
        if run is None:
            return None, {}, {}
        tis = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run.run_id)
        ).all()
        pushed = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag_id, XComModel.run_id == run.run_id, XComModel.key == XCOM_KEY
            )
        ).first()
        failures = XComModel.deserialize_value(pushed) if pushed is not None else {}
        return str(run.state), {ti.task_id: str(ti.state) for ti in tis}, failures or {}


Relation = tuple[str, str, str, tuple[str, ...]]  # (layer, schema, name, primary key)


def layer_tables() -> list[Relation]:
    """(layer, schema, name, primary key) for raw tables and dbt tables/views from the manifest."""
    rows: list[Relation] = []
    for conn in load_connections().connections:
        if conn.destination.type != "postgres":  # the lake's raw history is not a warehouse table
            continue
        for s in conn.streams:
            rows.append(("raw", conn.destination.schema, s.name, s.primary_key))
    manifest = settings.DBT_PROJECT_DIR / "target" / "manifest.json"
    if manifest.exists():
        nodes = json.loads(manifest.read_text())["nodes"].values()
        tests = [n for n in nodes if n["resource_type"] == "test"]
        order = {"staging": 0, "intermediate": 1, "marts": 2, "snapshots": 3}
        models = (
            n for n in nodes
            if n["resource_type"] in ("model", "snapshot")
            and not {**n.get("meta", {}), **n.get("config", {}).get("meta", {})}.get("work_table")
        )  # fmt: skip  # a work table (what one build recomputes) is no layer of data
        for node in sorted(models, key=lambda n: (order.get(n["fqn"][1], 9), n["fqn"])):
            layer = node["fqn"][1] if len(node["fqn"]) > 2 else "models"
            layer = "snapshots" if node["resource_type"] == "snapshot" else layer
            unique = next(
                (t["test_metadata"]["kwargs"].get("column_name") for t in tests
                 if t.get("test_metadata", {}).get("name") == "unique" and node["unique_id"] in t["depends_on"]["nodes"]),
                None,
            )  # fmt: skip
            # a `unique` test on an expression (dbt allows `column_name: "a || b"`) is not counted
            # here: only plain column names become identifiers
            plain = bool(unique) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", unique) is not None
            rows.append((layer, node["schema"], node["alias"], (unique,) if plain else ()))
    return rows


def table_figures(rows: list[Relation]) -> list[tuple[str, str, str, str]]:
    """(layer, schema.name, rows, duplicate keys); every name is a quoted identifier, never text in SQL."""
    wh = endpoints.Warehouse.for_role("transform")  # the role that reads raw and every dbt schema
    out = []
    conn = wh.connect(connect_timeout=5)
    # autocommit, and no `with conn`: since psycopg2 2.9 that block opens a transaction even in
    # autocommit, so one missing relation would abort it and show every later one as missing
    conn.autocommit = True
    with conn.cursor() as cur:
        for layer, schema, name, pk in rows:
            table, relation = sql.Identifier(schema, name), f"{schema}.{name}"
            try:
                cur.execute(sql.SQL("select count(*) from {}").format(table))
                count = cur.fetchone()[0]
                dupes = "-"
                if pk:
                    cols = sql.SQL(", ").join(map(sql.Identifier, pk))
                    cur.execute(
                        sql.SQL(
                            "select count(*) from (select {cols} from {table} group by {cols} having count(*) > 1) d"
                        ).format(cols=cols, table=table)
                    )
                    dupes = str(cur.fetchone()[0])
                out.append((layer, relation, str(count), dupes))
            except psycopg2.Error:
                out.append((layer, relation, "missing", "-"))
    conn.close()
    return out


def quarantine_lines() -> list[str]:
    """What the quarantine models hold now, per source, stream, problem and column (read as the
    transform role, which owns them)."""
    relations = quarantine.manifest_models(settings.DBT_PROJECT_DIR)
    conn = endpoints.Warehouse.for_role("transform").connect(connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            return quarantine.lines(quarantine.counts(cur, relations))
    except psycopg2.Error as exc:
        return [f"quarantine: not counted ({type(exc).__name__}: {str(exc).strip()})"]
    finally:
        conn.close()


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    for i, row in enumerate([header, *rows]):
        print("  " + "  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=False)))
        if i == 0:
            print("  " + "  ".join("-" * w for w in widths))


def main(argv: list[str]) -> int:
    dag_id, date = argv[0], argv[1]
    dag_seconds = argv[2] if len(argv) > 2 else None
    total_seconds = argv[3] if len(argv) > 3 else None
    run_state, states, cannot_retry = task_states(dag_id, date)
    print()
    print(f"Summary of {dag_id} for {date}")
    if run_state is None:
        print("  no run found")
        return 1
    counts = Counter(states.values())
    print(f"  run state: {run_state}; tasks: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    failed = sorted(t for t, s in states.items() if s not in OK_STATES)
    if failed:
        print("  not successful: " + ", ".join(f"{t} ({states[t]})" for t in failed))
    if cannot_retry:
        from include.pipeline.transform.failures import describe_all

        print("  dbt failed in a way a retry cannot fix; its tasks failed at once, without their retries:")
        print(textwrap.indent(describe_all(cannot_retry), "  "))
    print()
    print_table(("layer", "relation", "rows", "duplicate keys"), table_figures(layer_tables()))
    print()
    for line in quarantine_lines():
        print("  " + line)
    if dag_seconds:
        print(f"\n  wall time: dags test {dag_seconds} s, whole command {total_seconds} s")
    return 1 if failed or run_state != "success" else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
