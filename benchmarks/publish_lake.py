"""Publishing a big mart to the lake: wall time, rows/s and this process's peak RSS.

    .venv/bin/python benchmarks/publish_lake.py [--rows 1000000]

Starts a throw-away Postgres and S3 server (the embedded ones the stack uses) in a temp folder,
fills `marts.orders` with `--rows` order-like rows (ids, text, numeric(12,2), dates, timestamps,
booleans), publishes it with include/pipeline/publish/lake.py as `make demo` does, reads the
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
                cur.execute(
                    "create table marts.orders as select g as order_id, g %% 100000 as customer_id,"
                    " 'customer ' || (g %% 100000) as customer_name, (g %% 9973 * 1.37)::numeric(12, 2) as amount,"
                    " date '2026-01-01' + (g %% 365) as order_date,"
                    " timestamptz '2026-01-01 00:00:00+00' + g * interval '7 seconds' as placed_at,"
                    " g %% 3 = 0 as paid, case when g %% 11 = 0 then null else 'shipped' end as status"
                    " from generate_series(1, %s) g",
                    (args.rows,),
                )
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
