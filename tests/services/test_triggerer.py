"""`up`'s triggerer (include/pipeline/cli/triggerer.py): Airflow's, its execution API built at start
and its trigger loop shorter.

The run under the real scheduler (tests/e2e/test_web_ui.py) goes through this triggerer; here,
that the client Airflow's triggerer makes for itself gets the API already built, and what the
shorter loop changes in Airflow's runner and what it refuses.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from include.pipeline.cli import supervisor, triggerer
from include.pipeline.settings import REPO_ROOT

# In a fresh interpreter (Airflow builds this API once per process): build it ahead, then make the
# client the way the triggerer does (TriggerRunnerSupervisor.make_client) and time its first call.
FIRST_CALL = """
import json, time
from include.pipeline.cli import triggerer
from airflow.jobs.triggerer_job_runner import TriggerRunnerSupervisor
ahead = triggerer.warm_execution_api()
client = TriggerRunnerSupervisor.make_client(None)
started = time.process_time()
status = client.get("health/ping").status_code
print(json.dumps({"ahead": ahead, "first_call": time.process_time() - started, "status": status}))
"""


def test_the_triggerers_own_client_gets_the_api_built_ahead():
    done = subprocess.run(
        [sys.executable, "-c", FIRST_CALL], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["status"] == 200
    # Building it is seconds of CPU (the routers of every API version); a call on the built one is not.
    assert figures["ahead"] > 0.5 and figures["first_call"] < figures["ahead"] / 5, figures


def test_a_triggerer_that_cannot_be_warmed_still_starts_stock(monkeypatch, capsys):
    from airflow.jobs import triggerer_job_runner

    monkeypatch.setenv("TRIGGERER_LOOP_SECONDS", "1")  # Airflow's own loop: nothing patched here
    monkeypatch.delattr(triggerer_job_runner, "in_process_api_server")
    started: list[list[str]] = []
    monkeypatch.setattr("airflow.__main__.main", lambda: started.append(list(sys.argv)))
    triggerer.main(["--skip-serve-logs"])
    assert started == [["airflow", "triggerer", "--skip-serve-logs"]]
    assert "execution API not built ahead (RuntimeError" in capsys.readouterr().err


def test_up_runs_the_triggerer_through_it_and_the_rest_stock():
    command = supervisor.component_command(supervisor.COMPONENTS["triggerer"])
    assert command[1:] == ["-m", "include.pipeline.cli.triggerer", "--skip-serve-logs"]
    scheduler = supervisor.component_command(supervisor.COMPONENTS["scheduler"])
    assert scheduler[0].endswith("airflow") and scheduler[1:] == ["scheduler", "--skip-serve-logs"]


# In a fresh interpreter: the installed Airflow's runner module, shortened to 0.2 s, then the wait
# its loop does (`with anyio.move_on_after(1): await stop_event.wait()`) timed in an event loop.
TIMED_WAIT = """
import asyncio, time
from include.pipeline.cli import triggerer
from airflow.jobs import triggerer_job_runner as runner
assert triggerer.shorten_trigger_loop(0.2)
async def loop_wait():
    stop_event = runner.anyio.Event()
    started = time.monotonic()
    with runner.anyio.move_on_after(1):
        await stop_event.wait()
    return time.monotonic() - started
print(asyncio.run(loop_wait()))
"""


def test_the_installed_airflows_trigger_loop_waits_the_shorter_period():
    done = subprocess.run(
        [sys.executable, "-c", TIMED_WAIT], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    waited = float(done.stdout.strip().splitlines()[-1])
    assert 0.15 <= waited < 0.6, waited  # Airflow's own loop waits 1 s here


def test_the_shim_caps_only_timed_waits_and_passes_the_rest_of_anyio_through():
    import anyio

    shim = triggerer.shortened_anyio(0.2)
    assert shim.Event is anyio.Event and shim.CancelScope is anyio.CancelScope
    assert shim.move_on_after is not anyio.move_on_after


def test_an_airflow_whose_loop_changed_is_left_stock(monkeypatch):
    import anyio
    from airflow.jobs import triggerer_job_runner

    monkeypatch.setattr(triggerer, "STOCK_WAIT", "with anyio.move_on_after(5):")
    assert triggerer.shorten_trigger_loop(0.2) is False
    assert triggerer_job_runner.anyio is anyio


@pytest.mark.parametrize(("raw", "expected"), [("", 0.5), ("0.2", 0.2), ("1", 1.0)])
def test_the_period_comes_from_TRIGGERER_LOOP_SECONDS(raw, expected):
    assert triggerer.loop_seconds({"TRIGGERER_LOOP_SECONDS": raw}) == expected


@pytest.mark.parametrize("raw", ["fast", "0", "2", "-1"])
def test_a_bad_TRIGGERER_LOOP_SECONDS_is_an_error_naming_it(raw):
    with pytest.raises(SystemExit, match=f"TRIGGERER_LOOP_SECONDS='{raw}'"):
        triggerer.loop_seconds({"TRIGGERER_LOOP_SECONDS": raw})
