"""What every command module of the CLI shares: printing a step, running a child in the stack's environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from include.pipeline import environments, settings

PY = sys.executable


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def run(cmd: list[str], *, env: dict[str, str] | None = None, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """`cmd` from the repo root, in the stack's environment unless `env` is given."""
    return subprocess.run(cmd, env=env or environments.stack_env(), check=check, cwd=settings.REPO_ROOT, **kw)


def airflow_bin() -> str:
    return str(Path(PY).with_name("airflow"))
