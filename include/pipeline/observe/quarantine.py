"""What the run's dbt build left in quarantine, per source, stream, problem and column.

Every source's quarantine model (`stg_<source>__quarantined_records`, macro quarantined_records)
lists the raw records staging leaves out: a key missing, a value Airbyte nulled, a value staging
could not parse (`unparseable_value`, with the column). After the build, `record_dbt_results`
counts them into metrics.data_quality (check `quarantined_records`, one row per source.stream,
problem and column, and a total per source), and the run summary prints the same counts: a bad record never stops the
line, and never vanishes without a figure.
"""

from __future__ import annotations

import json
from pathlib import Path

from psycopg2 import sql

from include.pipeline.observe import writer

CHECK = "quarantined_records"
SUFFIX = "__quarantined_records"


def quarantine_models(manifest: dict) -> list[tuple[str, str]]:
    """(schema, table) of every quarantine model in a dbt manifest, sorted."""
    return sorted(
        (node["schema"], node["alias"])
        for node in manifest.get("nodes", {}).values()
        if node.get("resource_type") == "model" and node["name"].endswith(SUFFIX)
    )


def manifest_models(project_dir: str | Path) -> list[tuple[str, str]]:
    path = Path(project_dir) / "target" / "manifest.json"
    return quarantine_models(json.loads(path.read_text())) if path.exists() else []


def counts(cur, relations: list[tuple[str, str]]) -> list[dict]:
    """One dict per (source, stream, problem, column) with its record count; a relation that
    does not exist yet (a model not built) is skipped."""
    out = []
    for schema, table in relations:
        cur.execute("select to_regclass(%s)", [f'"{schema}"."{table}"'])
        if cur.fetchone()[0] is None:
            continue
        cur.execute(
            sql.SQL(
                "select source_name, stream_name, problem, column_name, count(*) from {}"
                " group by 1, 2, 3, 4 order by 1, 2, 3, 4"
            ).format(sql.Identifier(schema, table))
        )
        out += [
            {"source": s, "stream": st, "problem": p, "column": c, "records": int(n)}
            for s, st, p, c, n in cur.fetchall()
        ]
    return out


def subject(row: dict) -> str:
    """`source.stream: problem`, with `(column)` for a value that does not parse."""
    column = f" ({row['column']})" if row.get("column") else ""
    return f"{row['source']}.{row['stream']}: {row['problem']}{column}"


def source_of(table: str) -> str:
    """`shop` for stg_shop__quarantined_records."""
    return table.removeprefix("stg_").removesuffix(SUFFIX)


def statements(dag_id: str, run_id: str, rows: list[dict], relations: list[tuple[str, str]]) -> list[tuple[str, dict]]:
    """Upserts of metrics.data_quality: one per counted group, and one total per source (`shop:
    all streams`, 0 when its quarantine is empty: a run with nothing quarantined says so)."""
    totals = dict.fromkeys((source_of(table) for _, table in relations), 0)
    for row in rows:
        totals[row["source"]] = totals.get(row["source"], 0) + row["records"]
    figures = [(subject(row), row["records"]) for row in rows]
    figures += [(f"{source}: all streams", n) for source, n in sorted(totals.items())]
    details = "records in the quarantine after the run's dbt build"
    key = ("dag_id", "run_id", "check_name", "subject")
    return [
        writer.upsert(
            "data_quality",
            {
                "dag_id": dag_id,
                "run_id": run_id,
                "check_name": CHECK,
                "subject": name,
                "value": value,
                "details": details,
            },
            key,
            overrides={"recorded_at": "now()"},
        )
        for name, value in figures
    ]


def lines(rows: list[dict]) -> list[str]:
    """The run summary's lines: one per group, or one saying the quarantine is empty."""
    if not rows:
        return ["quarantine: empty"]
    total = sum(r["records"] for r in rows)
    return [f"quarantine: {total} record(s) left out of staging (stg_<source>{SUFFIX})"] + [
        f"  {subject(r)}: {r['records']}" for r in rows
    ]
