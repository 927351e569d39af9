"""`make up` stopped by SIGTERM (a process manager, `kill`) or SIGHUP (a closed terminal) stops
every process it started, as Ctrl-C does, and frees the port (issue 10).

The supervisor of `cli up` runs here with stand-in components, real processes: a web server on a
port (the API server) and a component whose child leaves its process group (as Airflow's task
supervisor puts a task runner in a group of its own). The same signal on the real `up`, with
Airflow's components, is tested in tests/e2e/test_web_ui.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from include.pipeline.services import find_free_port, port_owner
from tests.support import REPO_ROOT

SUPERVISE = """
import json, sys
from include.pipeline.cli import supervisor
supervisor.stop_like_ctrl_c()
sys.exit(supervisor.supervise(dict(__import__("os").environ), components=json.loads(sys.argv[1])))
"""
# A child in a new session, as a task runner under its task supervisor: out of its component's group.
SPAWNER = "import subprocess, time; subprocess.Popen(['sleep', '600'], start_new_session=True); time.sleep(600)"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_or_sighup_stops_every_component_and_frees_the_port(sig):
    port = find_free_port()
    components = {
        "api-server": [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        "scheduler": [sys.executable, "-c", SPAWNER],
    }
    # `up` started from a terminal: SIGHUP at its default, even when this test runs under nohup
    # (whose ignored SIGHUP a child inherits, and `up` then rightly keeps ignoring: the test below)
    # (and neither signal blocked, whatever mask the test process was started with)
    terminal = (
        "import signal; signal.signal(signal.SIGHUP, signal.SIG_DFL)\n"
        "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP, signal.SIGTERM})\n" + SUPERVISE
    )
    up = subprocess.Popen(
        [sys.executable, "-c", terminal, json.dumps(components)], cwd=REPO_ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    tree: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            tree = psutil.Process(up.pid).children(recursive=True)
            if port_owner(port) and any(p.name() == "sleep" for p in tree):
                break
            time.sleep(0.2)
        else:
            pytest.fail("the components never started")
        assert len(tree) >= 3, [p.cmdline() for p in tree]

        started = time.monotonic()
        os.kill(up.pid, sig)  # the `up` process only, not its group: nothing else is told
        try:
            assert up.wait(timeout=60) == 0
        except subprocess.TimeoutExpired:
            status = [line for line in open(f"/proc/{up.pid}/status") if line.startswith("Sig")]
            pytest.fail(f"`up` still running 60 s after {sig.name}; its signal masks: {status}")
        _, alive = psutil.wait_procs(tree, timeout=max(1, 60 - (time.monotonic() - started)))
        assert alive == [], [p.cmdline() for p in alive]
        assert port_owner(port) is None
        assert "Airflow stopped" in up.stdout.read()
    finally:
        for proc in [*tree, psutil.Process(up.pid)] if up.poll() is None else tree:
            try:
                proc.kill()
            except psutil.Error:
                pass


def test_nohup_keeps_sighup_ignored_and_sigterm_still_stops_it():
    """`nohup make up`: SIGHUP was ignored on purpose and stays ignored; SIGTERM still stops all."""
    port = find_free_port()
    components = {"api-server": [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]}
    nohup = "import signal; signal.signal(signal.SIGHUP, signal.SIG_IGN)\n" + SUPERVISE
    up = subprocess.Popen(
        [sys.executable, "-c", nohup, json.dumps(components)], cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not port_owner(port):
            assert time.monotonic() < deadline, "the component never started"
            time.sleep(0.2)
        os.kill(up.pid, signal.SIGHUP)
        time.sleep(2)
        assert up.poll() is None and port_owner(port), "SIGHUP is ignored under nohup"
        os.kill(up.pid, signal.SIGTERM)
        assert up.wait(timeout=60) == 0
        deadline = time.monotonic() + 30
        while port_owner(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert port_owner(port) is None
    finally:
        if up.poll() is None:
            for child in psutil.Process(up.pid).children(recursive=True):
                child.kill()
            up.kill()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_make_up_killed_stops_it_too(tmp_path, sig):
    """`make up`, the signal sent to make alone: make passes SIGTERM on, but a SIGKILLed make
    dies without a word to `up`; every process must still stop and the port be freed. (A closed
    terminal sends SIGHUP to make and `up` alike: the SIGHUP case above.)"""
    port = find_free_port()
    components = {"api-server": [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]}
    script = tmp_path / "up.py"
    script.write_text(
        SUPERVISE.replace("supervisor.stop_like_ctrl_c()", "supervisor.stop_like_ctrl_c(); supervisor.stop_with_make()")
    )
    (tmp_path / "Makefile").write_text(f"up:\n\t@{sys.executable} {script} '{json.dumps(components)}'\n")
    make = subprocess.Popen(
        ["make", "-s", "-C", str(tmp_path), "up"], env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    tree: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        while not port_owner(port):
            assert time.monotonic() < deadline and make.poll() is None, "the component never started"
            time.sleep(0.2)
        tree = psutil.Process(make.pid).children(recursive=True)
        make.send_signal(sig)  # to make alone, as `kill <pid of make>` does
        make.wait(timeout=30)
        _, alive = psutil.wait_procs(tree, timeout=60)
        assert alive == [], [p.cmdline() for p in alive]
        assert port_owner(port) is None
    finally:
        for proc in tree:
            try:
                proc.kill()
            except psutil.Error:
                pass
