"""`make setup`'s part for `make bi`: the Superset virtualenv and its secrets in .env."""

from __future__ import annotations

import os
import time

from include.bi import run
from include.pipeline.cli._common import say
from include.pipeline.cli.venvs import sync_venv


def setup(generate_secrets: bool = True) -> None:
    """Install .venv-superset from its lock (skipped when unchanged) and generate the missing
    SUPERSET_SECRET_KEY / SUPERSET_ADMIN_PASSWORD. STACK_SKIP_BI=1 skips the venv (~800 MB; the
    Airflow image does: compose's profile `bi` runs the apache/superset image)."""
    if os.environ.get("STACK_SKIP_BI") != "1":
        started = time.monotonic()
        sync_venv(run.VENV, run.LOCK)
        say(f"{run.VENV.name}: ready in {time.monotonic() - started:.1f} s")
    if not generate_secrets:
        return
    added = run.ensure_secrets()
    if added:
        say(f"generated {', '.join(added)} into {run.settings.ENV_FILE} (keep it; never commit it)")
