"""How much does one-Airflow-task-per-model cost? The Cosmos DAG's dbt part vs one `dbt build`.

    .venv/bin/python benchmarks/cosmos_vs_dbt_build.py [--date 2026-01-05] [--skip-dag-run]

1. `cli demo --date DATE` (embedded services, `airflow dags test`), unless --skip-dag-run reuses
   the latest run of DATE;
2. the dbt part of that run: from the first `transform.*` task's start to the last one's end, read
   from Airflow's metadata database (plus the sum of the task durations);
3. one plain `dbt build` of the same project on the same warehouse right after (same models,
   snapshot and tests; the incremental model merges the same rows);
4. prints both wall times and the ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from include.pipeline import environments, settings  # noqa: E402


def parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=None)


def transform_times(db: Path, date: str) -> tuple[float, float, int]:
    """(wall seconds, summed task seconds, task count) of the transform group of DATE's latest run."""
    con = sqlite3.connect(db)
    run_id = con.execute(
        "select run_id from dag_run where dag_id = ? and date(logical_date) = ? order by id desc limit 1",
        (settings.DAG_ID, date),
    ).fetchone()
    if not run_id:
        raise SystemExit(f"no run of {settings.DAG_ID} for {date} in {db}: run without --skip-dag-run")
    rows = con.execute(
        "select task_id, start_date, end_date, state from task_instance where dag_id = ? and run_id = ?"
        " and task_id like 'transform.%'",
        (settings.DAG_ID, run_id[0]),
    ).fetchall()
    con.close()
    bad = [(t, s) for t, _, _, s in rows if s != "success"]
    if not rows or bad:
        raise SystemExit(f"the transform tasks of {run_id[0]} did not all succeed: {bad or 'none found'}")
    starts = [parse_time(r[1]) for r in rows]
    ends = [parse_time(r[2]) for r in rows]
    wall = (max(ends) - min(starts)).total_seconds()
    summed = sum((e - s).total_seconds() for s, e in zip(starts, ends, strict=True))
    return wall, summed, len(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--date", default="2026-01-05")
    parser.add_argument("--skip-dag-run", action="store_true", help="measure the latest run of DATE instead")
    args = parser.parse_args()

    if not args.skip_dag_run:
        print(f"==> cli demo --date {args.date}", flush=True)
        demo = subprocess.run(
            [sys.executable, "-m", "include.pipeline.cli", "demo", "--date", args.date],
            cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip
        if demo.returncode != 0:
            print(demo.stdout[-4000:], demo.stderr[-2000:], sep="\n")
            return demo.returncode
    env = environments.stack_env()
    db = Path(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///"))
    cosmos_wall, cosmos_sum, tasks = transform_times(db, args.date)

    dbt = Path(sys.executable).with_name("dbt")
    with tempfile.TemporaryDirectory(prefix="bench-dbt-") as tmp:
        cmd = [
            str(dbt), "build", "--project-dir", str(settings.DBT_PROJECT_DIR), "--profiles-dir",
            str(settings.DBT_PROJECT_DIR), "--target-path", f"{tmp}/target", "--log-path", f"{tmp}/logs",
        ]  # fmt: skip
        print("==> dbt build (one process, threads 2 as in the profile)", flush=True)
        started = time.monotonic()
        build = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True)
        build_wall = time.monotonic() - started
    if build.returncode != 0:
        print(build.stdout[-4000:])
        return build.returncode
    summary = next((line for line in build.stdout.splitlines() if "Done. PASS=" in line), "").strip()

    print()
    print(f"  Cosmos dbt part ({tasks} tasks, `airflow dags test`): {cosmos_wall:7.1f} s wall"
          f" ({cosmos_sum:.1f} s summed over tasks)")  # fmt: skip
    print(f"  one `dbt build` of the same project:       {build_wall:7.1f} s wall  [{summary[summary.find('PASS') :]}]")
    print(f"  ratio Cosmos / dbt build:                  {cosmos_wall / build_wall:7.1f} x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
