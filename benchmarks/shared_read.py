"""One read for two destinations: the warehouse's and the lake's syncs of the same files, two ways.

    .venv/bin/python benchmarks/shared_read.py --customers 100000 [--rounds 2]

One throw-away stack (embedded Postgres and S3, no Airflow) with the shop's day-0 export at
`customers` customers and orders; then, each round, on the same files, each from no state (a
first sync, every file):
- (A) two reads, as the DAG ran them: the warehouse's sync (the runtime, `shop_to_warehouse`) and
  the lake's (`lake_sync.py`, `shop_to_lake`) started together, each with its own connector;
- (B) source-s3's own read of every export file (no destination);
- (C) one read for both: the warehouse's sync given the lake's part (include/pipeline/ingest/
  shared_read.py), one connector feeding the warehouse and the lake.
Prints each figure (wall seconds), the best of the rounds, (A) and (C) as multiples of (B), and
(C)'s saving on (A). Note the machine's load (`uptime`) beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.airflow_stack import cli, stack_env  # noqa: E402
from benchmarks.scale import DAY0, connector_read  # noqa: E402
from benchmarks.sync_vs_read import EXPORT  # noqa: E402

# One sync of `mode` (warehouse, lake or both) into schema/prefix `tag`: prints [seconds, records].
SYNC = """
import json, os, sys
from include.pipeline import endpoints, environments
from include.pipeline.ingest.declaration import load_connections
from include.pipeline.ingest.embedded import sync_connection
from include.pipeline.ingest.lake_sync import lake_part, sync_to_lake
from include.pipeline.ingest.shared_read import shared_readers
mode, tag = sys.argv[1], sys.argv[2]
os.environ.update(environments.s3_env())
config = load_connections()
lake_name, reader = next(iter(shared_readers(config).items()))
warehouse, lake = config.connection(reader), config.connection(lake_name)
warehouse = warehouse.model_copy(update={"destination": warehouse.destination.model_copy(update={"schema": tag})})
lake = lake.model_copy(update={"destination": lake.destination.model_copy(update={"path_prefix": tag})})
admin = endpoints.Warehouse.from_settings()
if mode == "lake":
    figures = sync_to_lake(lake, log=lambda _: None)
else:
    figures = sync_connection(warehouse, admin, log=lambda _: None, lake=lake_part(lake) if mode == "both" else None)
    if mode == "both":
        assert "streams" in figures.get("lake", {}), figures.get("lake")
    with admin.connect() as conn, conn.cursor() as cur:
        cur.execute(f"drop schema {tag} cascade")
print(json.dumps([figures["seconds"], sum(int(s.get("records") or 0) for s in figures["streams"].values())]))
"""


def start(mode: str, tag: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SYNC, mode, tag], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def finish(proc: subprocess.Popen) -> tuple[float, int]:
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"sync failed:\n{out[-2000:]}\n{err[-4000:]}")
    return tuple(json.loads(out.strip().splitlines()[-1]))


def timed(*modes: tuple[str, str], env: dict[str, str]) -> tuple[float, list[tuple[float, int]]]:
    """Wall seconds of the syncs `modes` started together, and each one's (seconds, records)."""
    started = time.monotonic()
    procs = [start(mode, tag, env) for mode, tag in modes]
    results = [finish(p) for p in procs]
    return time.monotonic() - started, results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", "--records", type=int, default=100_000, dest="size")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-shared-read-"))
    env = stack_env(root, SHOP_CUSTOMERS=str(args.size), SHOP_ORDERS=str(args.size))
    walls: dict[str, list[float]] = {"A": [], "B": [], "C": []}
    print(f"load before: {os.getloadavg()}", flush=True)
    try:
        cli(env, "setup-runtime")
        cli(env, "services", "start")
        print(f"==> {args.size:,} customers and orders: exporting {DAY0} into the stack's S3", flush=True)
        subprocess.run([sys.executable, "-c", EXPORT, DAY0], cwd=ROOT, env=env, check=True, capture_output=True)
        timed(("warehouse", "bench_warm"), env=env)  # warm-up: the connector metadata cache, page cache
        for round_ in range(1, args.rounds + 1):
            wall, ((wh_s, wh_n), (lake_s, lake_n)) = timed(
                ("warehouse", f"bench_a{round_}"), ("lake", f"bench_a{round_}"), env=env
            )
            walls["A"].append(wall)
            print(f"round {round_}: (A) two reads together: {wall:.1f} s (warehouse {wh_s:.1f} s, {wh_n:,} "
                  f"records; lake {lake_s:.1f} s, {lake_n:,} records)", flush=True)  # fmt: skip
            seconds, records = connector_read(env)
            walls["B"].append(seconds)
            print(f"round {round_}: (B) source-s3's own read: {seconds:.1f} s, {records:,} records", flush=True)
            wall, ((both_s, both_n),) = timed(("both", f"bench_c{round_}"), env=env)
            walls["C"].append(wall)
            print(f"round {round_}: (C) one read for both: {wall:.1f} s ({both_n:,} records)", flush=True)
    finally:
        subprocess.run([sys.executable, "-m", "include.pipeline.cli", "services", "stop"], cwd=ROOT, env=env,
                       capture_output=True)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)
    a, b, c = (min(walls[k]) for k in "ABC")
    print(f"best of {args.rounds} rounds at {args.size:,} customers and orders (load after: {os.getloadavg()}):")
    print(f"  (A) two reads together {a:.1f} s = {a / b:.2f}x the read; (B) the read alone {b:.1f} s; "
          f"(C) one read for both {c:.1f} s = {c / b:.2f}x the read: {100 * (1 - c / a):.0f}% off (A)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
