"""One more day on a stack `make bench` kept (`benchmarks/scale.py --keep`): before/after on the same data.

    .venv/bin/python benchmarks/kept_stack_day.py --stack .local/bench/10000000 --date 2026-01-04 \
        [--project-dir include/dbt] [--unit-tests] [--full-refresh]

Starts the stack's services (with this checkout's code: its Postgres settings), exports and syncs
`--date`'s increment without Airflow (as scale.py's day 2), then runs one plain `dbt build` of
`--project-dir` (another copy of the project: the "before"), as the DAG does (no unit tests, unless
--unit-tests); `--date none` syncs nothing (with --full-refresh: a full rebuild of the same data).
Prints the server's settings, the records synced, the build's wall time, the tests' summed time and
the costliest nodes (dbt's own seconds, run_results.json). Stops the services at the end.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.airflow_stack import cli, stack_env  # noqa: E402
from benchmarks.scale import ingest_increment, warehouse_env  # noqa: E402

SETTINGS = ("shared_buffers", "work_mem", "maintenance_work_mem", "max_wal_size", "checkpoint_timeout")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", type=Path, required=True, help="a stack folder scale.py --keep left")
    parser.add_argument("--date", required=True, help="the day to export and sync (YYYY-MM-DD), or none")
    parser.add_argument("--project-dir", type=Path, default=ROOT / "include" / "dbt")
    parser.add_argument("--unit-tests", action="store_true", help="run dbt's unit tests too (the DAG does not)")
    parser.add_argument("--full-refresh", action="store_true")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    import psycopg2

    size = args.stack.resolve().name
    env = stack_env(args.stack.resolve(), SHOP_CUSTOMERS=size, SHOP_ORDERS=size)
    cli(env, "services", "start")
    try:
        wh = warehouse_env(env)
        conn = psycopg2.connect(
            host=wh["WAREHOUSE_HOST"], port=wh["WAREHOUSE_PORT"], user=wh["WAREHOUSE_USER"],
            password=wh["WAREHOUSE_PASSWORD"], dbname=wh["WAREHOUSE_DB"],
        )  # fmt: skip
        with conn, conn.cursor() as cur:
            cur.execute("select name, current_setting(name) from pg_settings where name = any(%s)", (list(SETTINGS),))
            print("==> Postgres:", ", ".join(f"{k}={v}" for k, v in sorted(cur.fetchall())), flush=True)
        conn.close()
        if args.date != "none":
            started = time.monotonic()
            records = ingest_increment(env, args.date)
            print(f"==> {args.date}: {records:,} records exported and synced in {time.monotonic() - started:.0f} s")
        flags = [
            *(["--full-refresh"] if args.full_refresh else []),
            *([] if args.unit_tests else ["--exclude-resource-type", "unit_test"]),
        ]
        with tempfile.TemporaryDirectory(prefix="kept-day-") as tmp:
            project = str(args.project_dir.resolve())
            cmd = [str(Path(sys.executable).with_name("dbt")), "build", "--project-dir", project, "--profiles-dir",
                   project, "--target-path", f"{tmp}/target", "--log-path", f"{tmp}/logs", *flags]  # fmt: skip
            started = time.monotonic()
            proc = subprocess.run(cmd, env={**env, **wh}, capture_output=True, text=True)
            wall = time.monotonic() - started
            if proc.returncode != 0:
                raise SystemExit(f"dbt build failed:\n{proc.stdout[-4000:]}")
            results = json.loads(Path(tmp, "target", "run_results.json").read_text())["results"]
        tests = sum(r["execution_time"] for r in results if r["unique_id"].startswith(("test.", "unit_test.")))
        print(f"==> dbt build {' '.join(flags)}: {wall:.1f} s wall, {len(results)} nodes, tests {tests:.1f} s summed")
        for r in sorted(results, key=lambda r: -r["execution_time"])[: args.top]:
            print(f"  {r['execution_time']:8.2f} s  {r['unique_id'].split('.', 2)[2][:90]}")
    finally:
        cli(env, "services", "stop")


if __name__ == "__main__":
    main()
