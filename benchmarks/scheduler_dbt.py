"""The daily DAG's dbt part under the REAL scheduler vs one plain `dbt build`, and `make up`'s idle memory.

    .venv/bin/python benchmarks/scheduler_dbt.py [--date 2026-01-07] [--idle-seconds 30] [--keep]

1. starts the stack as `make up` does (`cli up`: embedded Postgres + api-server, scheduler,
   dag-processor, triggerer) in a throw-away folder (its own .env, .local, AIRFLOW_HOME, port),
   the way tests/e2e/test_web_ui.py does;
2. once Airflow is healthy and has been idle for --idle-seconds: the summed RSS of the whole
   `cli up` process tree (every Airflow component and LocalExecutor worker);
3. triggers one run of ecommerce_daily for DATE through the REST API (what the web UI does) and
   waits for it;
4. the dbt part of that run, from the REST API: first `transform.*` task start to last
   `transform.*` task end (and the whole run's wall time);
5. one plain `dbt build` of the same project on the same warehouse right after (same models,
   snapshot and tests; the incremental model merges the same rows);
6. prints both wall times and the ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from include.pipeline import settings  # noqa: E402
from include.pipeline.services import find_free_port  # noqa: E402

DAG_ID = "ecommerce_daily"


def call(url: str, method: str = "GET", body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
        url, method=method, data=json.dumps(body).encode() if body is not None else None
    )
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - http://127.0.0.1 only
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {}
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, {}


def tree_rss(pid: int) -> tuple[int, int]:
    """(summed RSS bytes, process count) of `pid` and all its descendants."""
    total, count = 0, 0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
            count += 1
        except psutil.NoSuchProcess:
            pass
    return total, count


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--date", default="2026-01-07", help="logical date of the run (default: the demo's)")
    parser.add_argument("--idle-seconds", type=int, default=30, help="idle time before the RSS is read")
    parser.add_argument("--keep", action="store_true", help="keep the throw-away folder (logs) afterwards")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-scheduler-"))
    port = find_free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "WAREHOUSE_"))}
    env.update(
        STACK_LOCAL_DIR=str(root / ".local"),
        STACK_ENV_FILE=str(root / ".env"),
        WAREHOUSE_PASSWORD=secrets.token_urlsafe(16),
        AIRFLOW_ADMIN_PASSWORD=secrets.token_urlsafe(16),
        AIRFLOW_PORT=str(port),
        # no scheduled runs: only the run triggered here
        AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
        DO_NOT_TRACK="1",
    )
    log_path = root / "up.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    print(f"==> cli up in {root} (port {port})", flush=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "include.pipeline.cli", "up"], cwd=ROOT, env=env,
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        return measure(args, root, env, proc, base, log_path)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # `up` stops on SIGTERM; a background process ignores SIGINT
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        subprocess.run(
            [sys.executable, "-m", "include.pipeline.cli", "services", "stop"], cwd=ROOT, env=env,
            capture_output=True, check=False,
        )  # fmt: skip
        if args.keep:
            print(f"kept {root}")
        else:
            import shutil

            shutil.rmtree(root, ignore_errors=True)


def measure(args, root: Path, env: dict[str, str], proc: subprocess.Popen, base: str, log_path: Path) -> int:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status, health = call(f"{base}/api/v2/monitor/health")
        if status == 200 and all(v.get("status") == "healthy" for v in health.values()):
            break
        if proc.poll() is not None:
            print(log_path.read_text()[-5000:])
            return 1
        time.sleep(2)
    else:
        print("Airflow did not become healthy in 300 s\n" + log_path.read_text()[-5000:])
        return 1
    sizing = [line.strip() for line in log_path.read_text().splitlines() if "sizing" in line]
    time.sleep(args.idle_seconds)
    rss, nprocs = tree_rss(proc.pid)
    print(f"==> idle after {args.idle_seconds} s: {nprocs} processes, {rss / 2**20:,.0f} MiB RSS summed", flush=True)

    status, token = call(f"{base}/auth/token", "POST", {"username": "admin", "password": env["AIRFLOW_ADMIN_PASSWORD"]})
    token = token["access_token"]
    dags = f"{base}/api/v2/dags/{DAG_ID}"
    deadline = time.monotonic() + 180
    while call(dags, token=token)[0] != 200:  # the dag processor has to serialize it first
        if time.monotonic() > deadline:
            print("the DAG never appeared in the API")
            return 1
        time.sleep(2)
    call(dags, "PATCH", {"is_paused": False}, token)
    print(f"==> trigger {DAG_ID} {args.date} through the REST API", flush=True)
    status, run = call(f"{dags}/dagRuns", "POST", {"logical_date": f"{args.date}T00:00:00Z", "conf": {}}, token)
    if status != 200:
        print(f"trigger failed: {status} {run}")
        return 1
    run_url = f"{dags}/dagRuns/{urllib.request.quote(run['dag_run_id'], safe='')}"
    peak_rss = 0
    state = None
    deadline = time.monotonic() + 3600
    while time.monotonic() < deadline:
        state = call(run_url, token=token)[1].get("state")
        if state in ("success", "failed"):
            break
        peak_rss = max(peak_rss, tree_rss(proc.pid)[0])
        time.sleep(2)
    dag_run = call(run_url, token=token)[1]
    tis = call(f"{run_url}/taskInstances?limit=1000", token=token)[1].get("task_instances", [])
    if state != "success":
        print(f"run ended {state}: " + json.dumps({t["task_id"]: t["state"] for t in tis}))
        return 1
    dbt_tis = [t for t in tis if t["task_id"].startswith("transform.") and t.get("start_date")]
    start = min(parse_time(t["start_date"]) for t in dbt_tis)
    end = max(parse_time(t["end_date"]) for t in dbt_tis)
    dbt_wall = (end - start).total_seconds()
    run_wall = (parse_time(dag_run["end_date"]) - parse_time(dag_run["start_date"])).total_seconds()

    port = json.loads((root / ".local" / "services.json").read_text())["postgres"]["port"]
    dbt_env = {
        **env, "WAREHOUSE_HOST": "127.0.0.1", "WAREHOUSE_PORT": str(port), "WAREHOUSE_USER": "postgres",
        "WAREHOUSE_DB": "warehouse", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }  # fmt: skip
    dbt = Path(sys.executable).with_name("dbt")
    cmd = [
        str(dbt), "build", "--project-dir", str(settings.DBT_PROJECT_DIR), "--profiles-dir",
        str(settings.DBT_PROJECT_DIR), "--target-path", str(root / "dbt-target"), "--log-path", str(root / "dbt-logs"),
    ]  # fmt: skip
    print("==> one plain dbt build on the same warehouse (threads 2 as in the profile)", flush=True)
    started = time.monotonic()
    build = subprocess.run(cmd, env=dbt_env, capture_output=True, text=True)
    build_wall = time.monotonic() - started
    if build.returncode != 0:
        print(build.stdout[-4000:])
        return build.returncode
    summary = next((line for line in build.stdout.splitlines() if "Done. PASS=" in line), "").strip()

    print()
    for line in sizing:
        print(f"  {line}")
    print(f"  machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; date {args.date}")
    print(f"  `make up` idle RSS ({nprocs} processes):       {rss / 2**20:7,.0f} MiB")
    print(f"  `make up` peak RSS during the run:          {peak_rss / 2**20:7,.0f} MiB")
    print(f"  whole DAG run under the scheduler:          {run_wall:7.1f} s wall ({len(tis)} tasks)")
    print(f"  dbt part under the scheduler ({len(dbt_tis)} tasks):   {dbt_wall:7.1f} s wall")
    print(
        f"  one `dbt build` of the same project:        {build_wall:7.1f} s wall  [{summary[summary.find('PASS') :]}]"
    )
    print(f"  ratio scheduler dbt part / dbt build:       {dbt_wall / build_wall:7.2f} x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
