"""`airflow triggerer`, its execution API built at start, a shorter loop: `python -m include.pipeline.cli.triggerer`.

The triggerer answers its triggers' API calls (the dbt part's sensors read the producer's XComs,
transform/watcher.py) with an in-process copy of Airflow's execution API, which Airflow builds on
the first call (Cadwyn generating its versioned routers, seconds of one core). Left to Airflow,
the first run after `up` pays it in the middle of its dbt part, beside dbt on the same cores. So
it is built here, before Airflow starts the triggerer, and the triggerer's client is given this
one (the figures: docs/benchmarks.md, the dbt part's steps).

Its trigger loop also wakes every TRIGGERER_LOOP_SECONDS (0.5 by default) instead of Airflow's
fixed second (`anyio.move_on_after(1)` in TriggerRunner.arun, not configurable): a sensor the
scheduler hands over waits up to a loop to be picked up and up to another for its event to be
reported, at every level of the dbt part's chain of sensors, the last level after dbt ends. The
trigger runner is forked from this process, so it inherits the shorter wait. A shorter loop cuts
that further but costs the triggerer CPU beside dbt (docs/benchmarks.md); 1 is Airflow's own.

If either change does not apply (an Airflow whose triggerer no longer works this way), the
triggerer runs stock for that part and says why.
"""

from __future__ import annotations

import inspect
import os
import sys
import time
import types
from typing import Any

import anyio

DEFAULT_LOOP_SECONDS = 0.5
# What TriggerRunner.arun must contain for the shorter wait to replace Airflow's one-second one.
STOCK_WAIT = "with anyio.move_on_after(1):"


def loop_seconds(environ: dict[str, str] | None = None) -> float:
    """The loop's period from TRIGGERER_LOOP_SECONDS; a bad value is an error naming the variable."""
    raw = (os.environ if environ is None else environ).get("TRIGGERER_LOOP_SECONDS", "")
    if not raw.strip():
        return DEFAULT_LOOP_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.05 <= value <= 1:
        raise SystemExit(f"error: TRIGGERER_LOOP_SECONDS={raw!r}: expected seconds from 0.05 to 1 (Airflow's own)")
    return value


def shortened_anyio(period: float) -> types.ModuleType:
    """`anyio` as triggerer_job_runner sees it, with every timed `move_on_after` capped at `period` s."""
    shim = types.ModuleType("anyio", "anyio, with move_on_after capped (include/pipeline/cli/triggerer.py)")
    shim.__dict__.update(vars(anyio))

    def move_on_after(delay: float | None, shield: bool = False) -> anyio.CancelScope:
        return anyio.move_on_after(None if delay is None else min(delay, period), shield=shield)

    shim.move_on_after = move_on_after
    return shim


def shorten_trigger_loop(period: float) -> bool:
    """Make the trigger runner's loop wait `period` s instead of 1 s; False if Airflow's loop changed."""
    from airflow.jobs import triggerer_job_runner

    try:
        source = inspect.getsource(triggerer_job_runner.TriggerRunner.arun)
    except (AttributeError, OSError, TypeError):
        return False
    # anyio serves only that wait there (and anyio.Event, which the shim passes through).
    if STOCK_WAIT not in source or triggerer_job_runner.anyio is not anyio:
        return False
    triggerer_job_runner.anyio = shortened_anyio(period)
    return True


def warm_execution_api() -> float:
    """Build the in-process execution API the triggerer will use and answer one call; its CPU s."""
    from airflow.jobs import triggerer_job_runner
    from airflow.sdk.api.client import Client

    if not callable(getattr(triggerer_job_runner, "in_process_api_server", None)):
        raise RuntimeError("airflow.jobs.triggerer_job_runner has no in_process_api_server()")
    started = time.process_time()
    api: Any = triggerer_job_runner.in_process_api_server()
    # The client the triggerer makes for itself (TriggerRunnerSupervisor.make_client).
    client = Client(base_url=None, token="", dry_run=True, transport=api.transport)
    client.base_url = "http://in-process.invalid./"
    client.get("health/ping").raise_for_status()  # the first call builds the routers
    triggerer_job_runner.in_process_api_server = lambda: api
    return time.process_time() - started


def say(message: str) -> None:
    print(f"triggerer: {message}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> None:
    period = loop_seconds()
    if period < 1:
        if shorten_trigger_loop(period):
            say(f"trigger loop every {period:g} s (TRIGGERER_LOOP_SECONDS; Airflow's own: 1 s)")
        else:
            say(f"this Airflow's trigger loop is not the one {__name__} shortens: it stays at 1 s")
    try:
        say(f"execution API built before the first trigger ({warm_execution_api():.1f} s of CPU)")
    except Exception as error:  # noqa: BLE001 - Airflow builds it on first use, as it would anyway
        say(f"execution API not built ahead ({type(error).__name__}: {error}); Airflow builds it on first use")
    from airflow.__main__ import main as airflow_main

    sys.argv = ["airflow", "triggerer", *argv]
    airflow_main()


if __name__ == "__main__":
    main(sys.argv[1:])
