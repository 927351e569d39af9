"""The embedded sync alone vs the connector's own read of the same files, and two runtimes side by side.

    .venv/bin/python benchmarks/sync_vs_read.py --size 100000 [--rounds 2] [--other /path/to/another/checkout]

One throw-away stack (embedded Postgres and S3, no Airflow) with the shop's day-0 export at `size`
customers and orders; then, each round: source-s3's own read of every export file (the configured
catalog the sync sends, no state, no destination), and the embedded sync of the same files into a
schema of its own (no state: every file, as a first sync), by this checkout's runtime and, with
`--other`, by another checkout's (for a before/after on the same data, back to back). Prints each
figure, then the best of the rounds and the ratio sync / read (time per record; issue 26: <= 1.5).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.airflow_stack import cli, stack_env  # noqa: E402
from benchmarks.scale import DAY0, connector_read  # noqa: E402

EXPORT = """
import os, sys
from urllib.parse import urlparse
from minio import Minio
from include.pipeline import endpoints, environments
from include.pipeline.ingest.declaration import load_connections
from include.pipeline.ingest.embedded_sync import export_shop_day
s3 = endpoints.S3.from_settings()
os.environ.update(environments.s3_env())
url = urlparse(s3.endpoint)
client = Minio(url.netloc, access_key=s3.access_key, secret_key=s3.secret_key, secure=url.scheme == "https")
export_shop_day(load_connections().connection("shop_to_warehouse").source, client, sys.argv[1], log=lambda _: None)
"""

SYNC = """
import json, os, sys
from include.pipeline import endpoints, environments
from include.pipeline.ingest.declaration import load_connections
from include.pipeline.ingest.embedded import sync_connection
os.environ.update(environments.s3_env())
connection = load_connections().connection("shop_to_warehouse")
connection = connection.model_copy(update={"destination": connection.destination.model_copy(update={"schema": "bench_sync"})})
admin = endpoints.Warehouse.from_settings()
figures = sync_connection(connection, admin, log=lambda _: None)
with admin.connect() as conn, conn.cursor() as cur:
    cur.execute("drop schema bench_sync cascade")
print(json.dumps([figures["seconds"], sum(int(s.get("records") or 0) for s in figures["streams"].values())]))
"""


def run(code: str, cwd: Path, env: dict[str, str], *args: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"failed in {cwd}:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--other", type=Path, help="another checkout whose runtime syncs the same files too")
    args = parser.parse_args()
    runtimes = {"this": ROOT} | ({"other": args.other.resolve()} if args.other else {})
    root = Path(tempfile.mkdtemp(prefix="bench-sync-vs-read-"))
    env = stack_env(root, SHOP_CUSTOMERS=str(args.size), SHOP_ORDERS=str(args.size))
    figures: dict[str, list[float]] = {"read": [], **{name: [] for name in runtimes}}
    try:
        cli(env, "setup-runtime")
        cli(env, "services", "start")
        print(f"==> {args.size:,} customers and orders: exporting {DAY0} into the stack's S3", flush=True)
        run(EXPORT, ROOT, env, DAY0)
        for tree in runtimes.values():  # warm-up: each runtime's connector metadata cache, page cache
            run(SYNC, tree, env)
        for round_ in range(1, args.rounds + 1):
            seconds, records = connector_read(env)
            figures["read"].append(records / seconds)
            print(f"round {round_}: source-s3's own read: {seconds:.1f} s, {records:,} records", flush=True)
            for name, tree in runtimes.items():
                seconds, synced = json.loads(run(SYNC, tree, env))
                figures[name].append(synced / seconds)
                print(
                    f"round {round_}: embedded sync ({name}: {tree}): {seconds:.1f} s, {synced:,} records", flush=True
                )
    finally:
        subprocess.run([sys.executable, "-m", "include.pipeline.cli", "services", "stop"], cwd=ROOT, env=env,
                       capture_output=True)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)
    read = max(figures["read"])
    print(f"best of {args.rounds} rounds at {args.size:,}: source-s3's own read {read:,.0f} records/s")
    for name in runtimes:
        best = max(figures[name])
        print(f"  embedded sync ({name}): {best:,.0f} records/s, {read / best:.2f}x the read's time per record")
    return 0


if __name__ == "__main__":
    sys.exit(main())
