"""The embedded sync dies with the task that started it (issue 10).

Airflow's supervisor ends a task (mark failed, heartbeat lost, kill) with SIGTERM to the task
runner's process group, then SIGKILL 5 s later. The embedded runtime and its connector run in a
group of their own, out of that signal's reach: they must still be gone within 15 s, or they
keep writing while the retry starts. The sync runs in a child process the test kills (started as
the task runs it: sync_connection, the real runtime and a protocol connector that
hangs after 5 records, i.e. mid-sync).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import psutil
import pytest

from tests.support import REPO_ROOT

pytestmark = pytest.mark.integration

SOURCE = Path(__file__).with_name("protocol_source.py")


@pytest.fixture
def start_sync(tmp_path, warehouse):
    """Start the sync in a child process (own process group, as a task runner) and wait until
    its connector is reading; return the child and every process of the sync under it."""
    executable = tmp_path / "source-protocol-test"
    executable.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{SOURCE}" "$@"\n')
    executable.chmod(executable.stat().st_mode | stat.S_IEXEC)
    records = tmp_path / "records.json"
    records.write_text(json.dumps([{"id": n, "updated_at": f"2026-01-01T00:00:{n:02d}+00:00"} for n in range(10)]))
    started: list[subprocess.Popen] = []
    tree: list[psutil.Process] = []

    def start(airflow_sigterm: bool = False, execution_timeout: int | None = None):
        spec = {
            "execution_timeout": execution_timeout,
            "warehouse": {k: v for k, v in asdict(warehouse).items() if k != "password"},
            "records_file": str(records),
            "executable": str(executable),
            "airflow_sigterm": airflow_sigterm,
        }
        out = tmp_path / "child.log"
        with open(out, "w") as log:
            child = subprocess.Popen(
                [sys.executable, "-m", "tests.ingest.sync_in_child", json.dumps(spec)],
                cwd=REPO_ROOT, env={**os.environ, "WAREHOUSE_PASSWORD": warehouse.password},
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        started.append(child)
        deadline = time.monotonic() + 180  # PyAirbyte's start, spec, check, discover on a shared box
        while time.monotonic() < deadline:
            assert child.poll() is None, out.read_text()[-3000:]
            procs = psutil.Process(child.pid).children(recursive=True)
            reading = [p for p in procs if _cmdline(p)[-1:] and str(SOURCE) in _cmdline(p) and "read" in _cmdline(p)]
            if reading:
                tree.extend(procs)
                return child, procs, out
            time.sleep(0.2)
        pytest.fail("the connector never started reading:\n" + out.read_text()[-3000:])

    yield start
    for proc in [*tree, *(psutil.Process(c.pid) for c in started if c.poll() is None)]:
        try:  # a failed test must not leave its sync behind
            proc.kill()
        except psutil.Error:
            pass


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


def _left_after(procs: list[psutil.Process], seconds: float) -> list[str]:
    _, alive = psutil.wait_procs(procs, timeout=seconds)
    return [" ".join(_cmdline(p))[:200] for p in alive]


def test_sigkill_of_the_task_leaves_no_runner_or_connector(start_sync):
    child, procs, out = start_sync()
    names = " ".join(" ".join(_cmdline(p)) for p in procs)
    assert "airbyte_runtime/__main__.py" in names and str(SOURCE) in names, names  # the whole sync is there

    os.killpg(child.pid, signal.SIGKILL)  # the supervisor's last word: no handler, no finally runs
    child.wait(timeout=10)

    assert _left_after(procs, 15) == [], out.read_text()[-3000:]


def test_sigterm_as_airflow_sends_it_stops_the_sync_and_still_calls_on_kill(start_sync):
    child, procs, out = start_sync(airflow_sigterm=True)

    started = time.monotonic()
    os.killpg(child.pid, signal.SIGTERM)  # mark failed: SIGTERM to the task runner's group

    assert _left_after(procs, 15) == [], out.read_text()[-3000:]
    stopped_in = time.monotonic() - started
    # Airflow's handler returns after on_kill, so the task goes on: it sees its sync stopped and fails
    assert child.wait(timeout=30) == 1
    log = out.read_text()
    assert "on_kill called" in log, log[-3000:]
    assert "sync of connection 'kill_test' stopped by signal SIGTERM" in log, log[-3000:]
    assert stopped_in < 5, f"the sync must be gone before the supervisor's SIGKILL (5 s), took {stopped_in:.1f} s"


def test_sigterm_with_python_default_handling_leaves_nothing(start_sync):
    """Outside Airflow (a plain script, `airflow tasks test` with no handler): SIGTERM ends it all."""
    child, procs, out = start_sync()

    os.killpg(child.pid, signal.SIGTERM)

    assert _left_after(procs, 15) == [], out.read_text()[-3000:]
    assert child.wait(timeout=15) == -signal.SIGTERM


def test_execution_timeout_mid_sync_leaves_nothing(start_sync):
    """Airflow's execution_timeout: its SIGALRM raises AirflowTaskTimeout in the task mid-sync (the
    test delivers the alarm as the timer would, once the connector reads)."""
    child, procs, out = start_sync(execution_timeout=3600)

    os.kill(child.pid, signal.SIGALRM)

    assert _left_after(procs, 15) == [], out.read_text()[-3000:]
    assert child.wait(timeout=15) == 3
    log = out.read_text()
    assert "timed out: Timeout" in log and "embedded engine: stopping the sync of 'kill_test'" in log, log[-3000:]
