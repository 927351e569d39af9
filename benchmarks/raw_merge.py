"""What a day's merge into a big raw table costs, with and without an index on the stream's key.

    .venv/bin/python benchmarks/raw_merge.py [--customers 10000000] [--day 40000 400000] [--repeat 2]

A sync of an `incremental_deduped_history` stream ends with the runtime's merge
(include/airbyte_runtime/destination_postgres.py, `_merge`): the staged keys' rows are deleted
from the stream's raw table, then the latest staged version of each key inserted. On a throw-away
embedded Postgres (sized as the stack's), `raw.users` and `raw.purchases` of a synthetic shop of
--customers customers and as many purchases (benchmarks/synthetic_shop.py: the raw tables' real
shape), then for each --day size D: a stage of D records per stream (half the keys already in the
table, half new), merged by the runtime's own code in a transaction that is rolled back, --repeat
times; first as the tables are without a key index, then after `tables.ensure_key_index` (the
index's build time printed too). Prints each merge's seconds and the plan Postgres chose for its
delete.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STREAMS = ("users", "purchases")


def make_stage(cur, stream: str, records: int, customers: int) -> str:
    """An unlogged stage of `records` rows, keys spread over the table: half of them existing keys'
    latest versions, half the same rows under new keys (analyzed, as the runtime's stages are)."""
    from psycopg2 import sql

    stage = f"{stream}_stage_{records}"
    step = max(2, 2 * customers // records)
    source, target = sql.Identifier("raw", stream), sql.Identifier("raw", stage)
    cur.execute(sql.SQL("drop table if exists {}").format(target))
    cur.execute(
        sql.SQL(
            "create unlogged table {} as select * from (select distinct on (id) * from {}"
            " where id %% %s in (0, 1) order by id, _airbyte_extracted_at desc) as latest limit %s"
        ).format(target, source),
        (step, records),
    )
    cur.execute(sql.SQL("update {} set id = id + %s where id %% %s = 1").format(target), (customers * 2, step))
    cur.execute(sql.SQL("analyze {}").format(target))
    return stage


def merge_seconds(conn, writer, stream: str, stage: str) -> tuple[float, str]:
    from psycopg2 import sql

    with conn.cursor() as cur:
        cur.execute(
            "select string_agg(quote_ident(attname), ', ' order by attnum) from pg_attribute"
            " where attrelid = %s::regclass and attnum > 0 and not attisdropped",
            (f"raw.{stream}",),
        )
        columns = sql.SQL(cur.fetchone()[0])
        final, staged = sql.Identifier("raw", stream), sql.Identifier("raw", stage)
        cur.execute(sql.SQL("explain delete from {} f using {} s where f.id = s.id").format(final, staged))
        plan = " / ".join(row[0].strip() for row in cur.fetchall()[:3])
        started = time.monotonic()
        how = writer._merge(cur, stream, final, staged, columns)
        seconds = time.monotonic() - started
    conn.rollback()
    return seconds, f"{how}; the delete's plan: {plan}"


def merges(dsn: dict, stages: list[list], repeat: int) -> None:
    """In the runtime's venv (.venv-airbyte): each stage merged `repeat` times without the key
    index, then with it."""
    import psycopg2

    from include.airbyte_runtime import tables
    from include.airbyte_runtime.destination_postgres import WarehouseWriter

    conn = psycopg2.connect(**dsn)
    catalog = {"streams": [{"stream": {"name": s, "json_schema": {"properties": {}}}, "primary_key": [["id"]],
                            "cursor_field": ["updated_at"]} for s in STREAMS]}  # fmt: skip
    writer = WarehouseWriter(lambda: conn, "raw", "shop", catalog, "merge")
    for label in ("no key index", "key index"):
        if label == "key index":
            with conn.cursor() as cur:
                for stream in STREAMS:
                    started = time.monotonic()
                    tables.ensure_key_index(cur, "raw", stream, ["id"])
                    conn.commit()
                    print(f"  key index on raw.{stream} built in {time.monotonic() - started:.1f} s", flush=True)
        for stream, day, stage in stages:
            for attempt in range(repeat):
                seconds, how = merge_seconds(conn, writer, stream, stage)
                print(
                    f"{label:>12}  {stream:<9} {day:>8,} staged, run {attempt + 1}: {seconds:7.2f} s  ({how})",
                    flush=True,
                )
    conn.close()


def main() -> int:
    import psycopg2

    from benchmarks.synthetic_shop import fill_shop
    from include.pipeline.services.postgres import EmbeddedPostgres

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=10_000_000)
    parser.add_argument("--day", type=int, nargs="+", default=[40_000, 400_000], help="staged records per stream")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="raw-merge-pg-"))
    server = EmbeddedPostgres(data, password=secrets.token_urlsafe(16))
    try:
        server.start()
        dsn = {"host": "127.0.0.1", "port": server.port, "user": server.superuser, "password": server.password,
               "dbname": "postgres"}  # fmt: skip
        conn = psycopg2.connect(**dsn)
        started = time.monotonic()
        fill_shop(conn, args.customers)
        print(
            f"raw filled: {args.customers:,} customers and purchases in {time.monotonic() - started:.1f} s", flush=True
        )
        with conn.cursor() as cur:
            stages = [[s, d, make_stage(cur, s, d, args.customers)] for s in STREAMS for d in args.day]
        conn.commit()
        conn.close()
        # the runtime runs in its own venv (orjson, the connectors' libraries)
        child = [str(ROOT / ".venv-airbyte" / "bin" / "python"), "-P", "-c",
                 "import json, sys; sys.path.insert(0, sys.argv[1]); from benchmarks.raw_merge import merges;"
                 " merges(*json.loads(sys.argv[2]))", str(ROOT), json.dumps([dsn, stages, args.repeat])]  # fmt: skip
        subprocess.run(child, check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
