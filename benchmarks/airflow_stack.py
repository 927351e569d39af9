"""Drive a throw-away stack under Airflow's real scheduler, for benchmarks: `cli up` in its own
folder, runs triggered through the REST API (what the web UI does), and the peak memory of every
process of the stack sampled while it runs.

Used by benchmarks/scale.py; importable by any benchmark that needs "a run under the scheduler".
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
DAG_ID = "ecommerce_daily"


def stack_env(root: Path, **extra: str) -> dict[str, str]:
    """The environment of a stack kept entirely under `root` (its own .env, .local, Airflow home)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "WAREHOUSE_", "STACK_"))}
    env.update(
        STACK_LOCAL_DIR=str(root / ".local"),
        STACK_ENV_FILE=str(root / ".env"),
        DO_NOT_TRACK="1",
    )
    env.update(extra)
    return env


def cli(env: dict[str, str], *args: str, timeout: float = 3600) -> subprocess.CompletedProcess:
    """`python -m include.pipeline.cli ARGS` in the stack's environment; raises with its output on failure."""
    proc = subprocess.run(
        [sys.executable, "-m", "include.pipeline.cli", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(
            f"cli {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


class RssSampler(threading.Thread):
    """Samples the resident memory of a process tree every `interval` seconds.

    Keeps the peak of each process (by pid, with a short label of its command line) and the peak of
    the whole tree. A peak between two samples can be missed: it is a lower bound, good to ~0.5 s.
    """

    def __init__(self, root_pid: int, interval: float = 0.5):
        super().__init__(daemon=True)
        self.root_pid, self.interval = root_pid, interval
        self.per_process: dict[int, tuple[int, str]] = {}
        self.tree_peak = 0
        self._halt = threading.Event()

    @staticmethod
    def label(proc: psutil.Process) -> str:
        try:
            cmd = proc.cmdline()
        except psutil.Error:
            return "?"
        words = [Path(c).name if c.startswith("/") else c for c in cmd[:6]]
        return " ".join(words)[:90]

    def sample(self) -> None:
        try:
            root = psutil.Process(self.root_pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        total = 0
        for proc in procs:
            try:
                rss = proc.memory_info().rss
            except psutil.Error:
                continue
            total += rss
            peak, label = self.per_process.get(proc.pid, (0, ""))
            if rss > peak:
                self.per_process[proc.pid] = (rss, label or self.label(proc))
        self.tree_peak = max(self.tree_peak, total)

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)

    def reset(self) -> None:
        self.per_process.clear()
        self.tree_peak = 0

    def top(self, n: int = 1) -> list[tuple[int, str]]:
        """The `n` largest per-process peaks: [(rss bytes, label)]."""
        return sorted(self.per_process.values(), reverse=True)[:n]


@dataclass
class RunResult:
    run_id: str
    state: str
    seconds: float
    tasks: dict[str, dict] = field(default_factory=dict)  # task_id -> {state, start, end, duration}

    def span(self, prefix: str) -> float:
        """Wall seconds from the first start to the last end of the tasks whose id starts with `prefix`."""
        chosen = [t for tid, t in self.tasks.items() if tid.startswith(prefix) and t["start"] and t["end"]]
        if not chosen:
            return 0.0
        return (max(t["end"] for t in chosen) - min(t["start"] for t in chosen)).total_seconds()


def _parse(value: str | None):
    import datetime as dt

    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


class AirflowUp:
    """`cli up` for a stack folder: start, log in, trigger runs and wait for them, stop."""

    def __init__(self, env: dict[str, str], log_path: Path):
        from include.pipeline.services import find_free_port

        self.port = find_free_port()
        self.env = {**env, "AIRFLOW_PORT": str(self.port), "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"}
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.token: str | None = None
        self.sampler: RssSampler | None = None

    def call(self, path: str, method: str = "GET", body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, method=method, data=data)  # noqa: S310 - 127.0.0.1
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - 127.0.0.1 only
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, {}
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return 0, {}

    def tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def __enter__(self) -> AirflowUp:
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "include.pipeline.cli", "up"], cwd=ROOT, env=self.env,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.sampler = RssSampler(self.proc.pid)
        self.sampler.start()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            status, health = self.call("/api/v2/monitor/health")
            if status == 200 and health and all(v.get("status") == "healthy" for v in health.values()):
                break
            if self.proc.poll() is not None:
                raise RuntimeError("`cli up` exited:\n" + self.tail())
            time.sleep(2)
        else:
            raise RuntimeError("Airflow did not become healthy in 300 s:\n" + self.tail())
        password = self.env.get("AIRFLOW_ADMIN_PASSWORD") or _env_file_value(self.env, "AIRFLOW_ADMIN_PASSWORD")
        status, token = self.call("/auth/token", "POST", {"username": "admin", "password": password})
        if status not in (200, 201):
            raise RuntimeError(f"login failed ({status})")
        self.token = token["access_token"]
        deadline = time.monotonic() + 180
        while self.call(f"/api/v2/dags/{DAG_ID}")[0] != 200:  # the dag processor serializes it first
            if time.monotonic() > deadline:
                raise RuntimeError(f"{DAG_ID} never appeared in the API:\n" + self.tail())
            time.sleep(2)
        self.call(f"/api/v2/dags/{DAG_ID}", "PATCH", {"is_paused": False})
        return self

    def idle_rss(self, settle: float = 20) -> int:
        """RSS of the whole tree after `settle` seconds with nothing running (bytes)."""
        time.sleep(settle)
        total = 0
        for proc in [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
        return total

    def run(self, logical_date: str, conf: dict | None = None, timeout: float = 3600) -> RunResult:
        """Trigger a run for `logical_date` (YYYY-MM-DD) and wait for it to end."""
        started = time.monotonic()
        status, run = self.call(
            f"/api/v2/dags/{DAG_ID}/dagRuns", "POST",
            {"logical_date": f"{logical_date}T00:00:00Z", "conf": conf or {},
             "dag_run_id": f"bench__{logical_date}__{secrets.token_hex(3)}"},
        )  # fmt: skip
        if status != 200:
            raise RuntimeError(f"trigger failed ({status}): {run}")
        url = f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run['dag_run_id'], safe='')}"
        state = None
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError("an Airflow component died:\n" + self.tail())
            state = self.call(url)[1].get("state")
            if state in ("success", "failed"):
                break
            time.sleep(2)
        seconds = time.monotonic() - started
        tasks = {}
        for ti in self.call(f"{url}/taskInstances?limit=1000")[1].get("task_instances", []):
            tasks[ti["task_id"]] = {
                "state": ti["state"], "start": _parse(ti.get("start_date")),
                "end": _parse(ti.get("end_date")), "duration": ti.get("duration"),
            }  # fmt: skip
        return RunResult(run["dag_run_id"], state or "timeout", seconds, tasks)

    def xcom(self, run_id: str, task_id: str, key: str = "return_value"):
        path = (
            f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances/"
            f"{urllib.parse.quote(task_id, safe='')}/xcomEntries/{key}?deserialize=true"
        )
        status, entry = self.call(path)
        return entry.get("value") if status == 200 else None

    def __exit__(self, *exc) -> None:
        try:  # Airflow first: nothing may leave it running
            if self.proc and self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGTERM)  # `up` stops on SIGTERM; a background process ignores SIGINT
                try:
                    self.proc.wait(timeout=90)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
        finally:
            if self.sampler:
                self.sampler.stop()
            self._log.close()


def _env_file_value(env: dict[str, str], key: str) -> str | None:
    path = Path(env["STACK_ENV_FILE"])
    if not path.exists():
        return None
    for line in path.read_text().splitlines():
        if line.startswith(f"{key}="):
            return line.split("=", 1)[1].strip().strip("'\"")
    return None
