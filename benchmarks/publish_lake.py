"""Publishing a big mart to the lake: wall time, rows/s and this process's peak RSS.

    .venv/bin/python benchmarks/publish_lake.py [--rows 1000000]

Starts a throw-away Postgres and S3 server (the embedded ones the stack uses) in a temp folder,
fills `marts.orders` with `--rows` rows shaped like the orders mart (13 columns: ids, a status,
timestamps, a date, numerics; its primary key), publishes it with include/pipeline/publish/lake.py as `make demo` does, reads the
partition back through its manifest (checksums verified) and prints one line per step. Memory
should stay flat whatever the row count (one row group of 50,000 rows at a time).
"""

from __future__ import annotations

import argparse
import resource
import secrets
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from include.pipeline.publish import lake  # noqa: E402
from include.pipeline.services.postgres import EmbeddedPostgres  # noqa: E402
from include.pipeline.services.s3 import EmbeddedS3  # noqa: E402


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="publish-bench-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "postgres", password=secrets.token_urlsafe(16))
        s3 = EmbeddedS3(Path(tmp) / "s3", access_key=secrets.token_hex(10), secret_key=secrets.token_urlsafe(24))
        pg.start()
        s3.start()
        try:
            conn = pg.connect()
            started = time.monotonic()
            with conn, conn.cursor() as cur:
                cur.execute("create schema marts")
                # the shape of the orders mart (include/dbt/models/marts/orders.yml): 13 columns,
                # its primary key from the contract; a null returned_at/refund on most rows
                cur.execute(
                    "create table marts.orders as select g::bigint as order_id, (g %% 100000)::bigint as customer_id,"
                    " (g %% 5000)::bigint as product_id,"
                    " (case when g %% 11 = 0 then 'returned' when g %% 3 = 0 then 'pending' else 'complete' end)::varchar"
                    " as order_status,"
                    " timestamptz '2026-01-01 00:00:00+00' + g * interval '7 seconds' as added_to_cart_at,"
                    " timestamptz '2026-01-01 00:03:00+00' + g * interval '7 seconds' as purchased_at,"
                    " case when g %% 11 = 0 then timestamptz '2026-02-01 00:00:00+00' + g * interval '7 seconds' end"
                    " as returned_at, date '2026-01-01' + (g %% 365) as order_date,"
                    " (g %% 9973 * 0.37)::numeric(12, 2) as unit_price, (g %% 9973 * 1.37)::numeric(14, 2) as gross_amount,"
                    " case when g %% 11 = 0 then (g %% 9973 * 1.37)::numeric(14, 2) end as refund_amount,"
                    " (case when g %% 11 = 0 then 0 else g %% 9973 * 1.37 end)::numeric(14, 2) as net_amount,"
                    " timestamptz '2026-03-01 00:00:00+00' + g * interval '1 second' as updated_at"
                    " from generate_series(1, %s) g",
                    (args.rows,),
                )
                cur.execute("alter table marts.orders add primary key (order_id)")
                cur.execute("analyze marts.orders")
            print(f"filled marts.orders with {args.rows:,} rows in {time.monotonic() - started:.1f} s", flush=True)
            rss_before = peak_rss_mib()
            started = time.monotonic()
            manifest = lake.publish_mart(
                conn, s3.client(), "orders", "2026-01-07", lake_bucket="lake", log=lambda _: None
            )
            seconds = time.monotonic() - started
            print(
                f"publish: {manifest['rows']:,} rows, {len(manifest['objects'])} objects, {manifest['bytes'] / 2**20:,.1f} MiB "
                f"in {seconds:.1f} s ({manifest['rows'] / seconds:,.0f} rows/s); peak RSS {peak_rss_mib():,.0f} MiB "
                f"(before: {rss_before:,.0f} MiB)",
                flush=True,
            )
            started = time.monotonic()
            table = lake.read_partition(s3.client(), "orders", "2026-01-07", lake_bucket="lake")
            print(
                f"read back through the manifest (sha256 checked): {table.num_rows:,} rows in {time.monotonic() - started:.1f} s"
            )
            conn.close()
        finally:
            s3.stop()
            pg.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
