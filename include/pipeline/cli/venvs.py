"""`setup-runtime`: .env secrets, the PyAirbyte and connector virtualenvs, the dbt manifest."""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import shutil
import subprocess
from pathlib import Path

from include.pipeline import env_file, settings
from include.pipeline.cli._common import PY, say


def sync_venv(venv: Path, lock: Path) -> None:
    """Create `venv` and install `lock` into it with uv; skipped when the lock is unchanged."""
    digest = hashlib.sha256(lock.read_bytes() + b"\n--compile-bytecode").hexdigest()  # install options count
    stamp = venv / ".lock-sha256"
    if stamp.exists() and stamp.read_text() == digest:
        say(f"{venv.name}: up to date with {lock.relative_to(settings.REPO_ROOT)}")
        return
    uv = shlex.split(os.environ.get("STACK_UV", "")) or [shutil.which("uv") or "uv"]
    say(f"{venv.name}: installing {lock.relative_to(settings.REPO_ROOT)}")
    if not (venv / "bin" / "python").exists():
        subprocess.run([*uv, "venv", "-q", "--python", "3.11", str(venv)], check=True)
    # --compile-bytecode: with PYTHONDONTWRITEBYTECODE set (as on CI boxes and in many images), a
    # venv without .pyc files recompiles every module at every start (`import airbyte` alone: seconds of CPU).
    subprocess.run(
        [*uv, "pip", "sync", "-q", "--compile-bytecode", "--python", str(venv / "bin" / "python"), str(lock)],
        check=True,
    )
    stamp.write_text(digest)


def cmd_setup_runtime(args: argparse.Namespace) -> int:
    # --no-env: the container image build (Dockerfile) installs the runtime, but no secret goes in a layer
    added = [] if getattr(args, "no_env", False) else env_file.ensure_env_file()
    if added:
        say(f"generated {', '.join(added)} into {settings.ENV_FILE} (keep it; never commit it)")
    from include.pipeline.ingest.declaration import load_connections

    config = load_connections()
    req = settings.AIRBYTE_REQUIREMENTS_DIR
    sync_venv(settings.REPO_ROOT / ".venv-airbyte", req / "pyairbyte.txt")
    from include.pipeline.ingest.connectors import prepare_offline

    for connector in sorted({s.connector for s in config.sources.values()}):
        # a lock is installed as pinned, without re-resolving: a connector with broken metadata
        # (source-s3, see its .overrides.txt) installs like any other
        sync_venv(settings.REPO_ROOT / f".venv-{connector}", req / f"{connector}.txt")
        prepare_offline(settings.REPO_ROOT / f".venv-{connector}")  # nothing downloaded at run time
    # `make bi`: Superset in its own venv (its pins would fight Airflow's), and its secrets
    from include.bi import install

    install.setup(generate_secrets=not getattr(args, "no_env", False))
    say("dbt parse (writes the manifest Cosmos renders the DAG from)")
    env = {**os.environ, "DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    subprocess.run(
        [str(Path(PY).with_name("dbt")), "parse", "--quiet", "--profiles-dir", str(settings.DBT_PROJECT_DIR),
         "--project-dir", str(settings.DBT_PROJECT_DIR)],
        check=True, env=env,
    )  # fmt: skip
    return 0
