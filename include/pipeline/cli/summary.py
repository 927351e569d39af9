"""Rows per mart after each day of a multi-day demo, printed as one table: the marts growing."""

from __future__ import annotations

import psycopg2
from psycopg2 import sql

from include.pipeline import endpoints

MARTS = ("customers", "orders", "products", "daily_revenue", "monthly_cohort_retention")
EXTRA = {
    "snapshot rows": "select count(*) from snapshots.customers_snapshot",
    "net revenue": "select coalesce(sum(net_amount), 0)::bigint from marts.orders",
}


def mart_rows() -> dict[str, int | None]:
    """{mart: rows} now (None when a relation is missing), plus snapshot rows and net revenue."""
    wh = endpoints.Warehouse.for_role("transform")  # the role that reads raw and every dbt schema
    queries = {m: sql.SQL("select count(*) from {}").format(sql.Identifier("marts", m)) for m in MARTS} | EXTRA
    out: dict[str, int | None] = {}
    conn = wh.connect(connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for name, query in queries.items():
                try:
                    cur.execute(query)
                    out[name] = int(cur.fetchone()[0])
                except psycopg2.Error:
                    out[name] = None
    finally:
        conn.close()
    return out


def print_growth(growth: dict[str, dict[str, int | None]]) -> None:
    days = list(growth)
    names = list(next(iter(growth.values())))
    header = ["", *days]
    rows = [[name, *("missing" if growth[d][name] is None else str(growth[d][name]) for d in days)] for name in names]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print("\nMarts day by day (rows)")
    for i, row in enumerate([header, *rows]):
        print("  " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
        if i == 0:
            print("  " + "  ".join("-" * w for w in widths))
