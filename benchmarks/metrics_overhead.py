"""Overhead of the metrics writers on the daily DAG: runs it with STACK_METRICS=on and =off.

    .venv/bin/python benchmarks/metrics_overhead.py [--rounds 2] [--date 2026-01-05]

A throw-away stack in a temp folder (own .env, Postgres, Airflow home, like the tests' `stack`):
one warm-up `cli demo` (first sync, dbt build), then ROUNDS (3) pairs of reruns of the same day in
alternating order (off, on, on, off, ...), timing `airflow dags test` as `cli demo` reports it.
Prints each run, the medians, the best runs and the wall-time overhead ratios (goal: <= 2 %). Because wall time
on a shared 2-core box is noisy, it also times the writers themselves (the same upserts one run
makes, against the same Postgres) and prints that share of a run, which is the tighter figure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def stack_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "WAREHOUSE_", "METRICS_", "STACK_"))}
    env.update(
        STACK_LOCAL_DIR=str(root / ".local"),
        STACK_ENV_FILE=str(root / ".env"),
        WAREHOUSE_PASSWORD=secrets.token_urlsafe(16),
        AIRFLOW_ADMIN_PASSWORD=secrets.token_urlsafe(16),
        DO_NOT_TRACK="1",
    )
    return env


def demo(env: dict[str, str], date: str, metrics: str) -> tuple[float, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "include.pipeline.cli", "demo", "--date", date],
        cwd=REPO_ROOT, env={**env, "STACK_METRICS": metrics}, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    if proc.returncode != 0 or "run state: success" not in proc.stdout:
        raise SystemExit(
            f"demo with STACK_METRICS={metrics} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
        )
    seconds = float(re.search(r"wall time: dags test ([\d.]+) s", proc.stdout).group(1))
    log = Path(re.search(r"(/\S+/demo-[^/\s]+\.log)", proc.stdout).group(1)).read_text()  # Airflow's output
    run_id = re.search(r"DagRun Finished: dag_id=\S+, logical_date=\S+ \S+, run_id=([^,]+),", log).group(1)
    return seconds, run_id


def writer_seconds(env: dict[str, str], run_id: str, repeat: int = 3) -> tuple[float, int]:
    """Time the upserts one run makes (replayed from its own rows) against the stack's Postgres."""
    # the writers find the stack's metrics database through METRICS_*, as outside Airflow
    os.environ.update({k: v for k, v in env.items() if k.startswith(("STACK_", "WAREHOUSE_", "METRICS_"))})
    os.environ.pop("AIRFLOW_HOME", None)
    from types import SimpleNamespace

    from include.pipeline.observe import callbacks, config, listener, writer

    params = config.params_from_env()
    writer.reset()
    conn = writer.connect(params)
    with conn, conn.cursor() as cur:
        cur.execute(
            "select dag_id, run_id, task_id, map_index, try_number, state, start_date, end_date"
            " from metrics.task_runs where run_id = %s", (run_id,),
        )  # fmt: skip
        tis = [SimpleNamespace(dag_id=r[0], run_id=r[1], task_id=r[2], map_index=r[3], try_number=r[4], state=r[5],
                               start_date=r[6], end_date=r[7]) for r in cur.fetchall()]  # fmt: skip
        cur.execute("select count(distinct task_id) from metrics.dbt_nodes where run_id = %s", (run_id,))
        dbt_tasks = cur.fetchone()[0]
        cur.execute("select unique_id, status, execution_time_seconds, rows_affected, failures from metrics.dbt_nodes"
                    " where run_id = %s", (run_id,))  # fmt: skip
        nodes = [{"unique_id": u, "status": s, "execution_time": t, "adapter_response": {"rows_affected": r},
                  "failures": f} for u, s, t, r, f in cur.fetchall()]  # fmt: skip
    conn.close()
    per_task = {}
    for n in nodes:
        per_task.setdefault(len(per_task) % max(dbt_tasks, 1), []).append(n)
    writes = 0
    started = time.perf_counter()
    for _ in range(repeat):
        for ti in tis:
            writer.write("bench", listener.task_statements(ti, "running"))
            writer.write("bench", listener.task_statements(ti, "success"))
            writes += 2
        for chunk in per_task.values():
            key = {"dag_id": tis[0].dag_id, "run_id": run_id, "task_id": "bench", "try_number": 1}
            writer.write("bench", callbacks.dbt_statements(key, {"results": chunk}))
            writes += 1
    elapsed = (time.perf_counter() - started) / repeat
    return elapsed, writes // repeat


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="pairs of (off, on) runs (default 3)")
    parser.add_argument("--date", default="2026-01-05")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="metrics-overhead-"))
    env = stack_env(root)
    print(f"==> throw-away stack in {root}; warm-up run (first sync, dbt build)", flush=True)
    try:
        demo(env, args.date, "on")
        runs: dict[str, list[float]] = {"off": [], "on": []}
        last_on = None
        for i in range(args.rounds):
            for mode in ("off", "on") if i % 2 == 0 else ("on", "off"):
                seconds, run_id = demo(env, args.date, mode)
                runs[mode].append(seconds)
                last_on = run_id if mode == "on" else last_on
                print(f"  round {i + 1}: STACK_METRICS={mode:<3}  dags test {seconds:6.1f} s", flush=True)
        off, on = statistics.median(runs["off"]), statistics.median(runs["on"])
        ratio = (on - off) / off
        best_off, best_on = min(runs["off"]), min(runs["on"])
        best_ratio = (best_on - best_off) / best_off
        spent, writes = writer_seconds(env, last_on)
        print()
        print(f"dags test wall time, median of {args.rounds}: metrics off {off:.1f} s, on {on:.1f} s")
        print(f"dags test wall time, best of {args.rounds}: metrics off {best_off:.1f} s, on {best_on:.1f} s")
        print(f"wall-time overhead ratio: median {ratio * 100:+.1f} %, best {best_ratio * 100:+.1f} % (goal <= 2 %)")
        print(f"writers alone: {writes} upserts of one run take {spent:.3f} s = {spent / off * 100:.2f} % of a run")
        print(json.dumps({"off_s": runs["off"], "on_s": runs["on"], "ratio": round(ratio, 4), "best_ratio": round(best_ratio, 4),
                          "writer_s": round(spent, 4), "writes": writes, "writer_share": round(spent / off, 5)}))  # fmt: skip
    finally:
        subprocess.run([sys.executable, "-m", "include.pipeline.cli", "services", "stop"], cwd=REPO_ROOT, env=env,
                       capture_output=True, check=False)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
