"""`make bi`: Apache Superset over the warehouse's marts and metrics, on 127.0.0.1:BI_PORT (8088).

Superset runs from its own virtualenv (.venv-superset, include/bi/requirements/superset.txt: its
pins would fight Airflow's) with include/bi/superset_config.py; its metadata is a SQLite file in
.local/superset/. Each start: the secrets (SUPERSET_SECRET_KEY, SUPERSET_ADMIN_PASSWORD) are
generated into .env when missing, the embedded services started, Superset's metadata migrated, the
admin's password set from .env, and the dashboards in include/bi/assets imported (overwriting what
they define: the files are the truth). Then gunicorn serves until Ctrl-C or SIGTERM, like `make up`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from include.pipeline import env_file, environments, settings

VENV = settings.REPO_ROOT / ".venv-superset"
LOCK = settings.REPO_ROOT / "include" / "bi" / "requirements" / "superset.txt"
CONFIG = Path(__file__).with_name("superset_config.py")
PREPARE = Path(__file__).with_name("prepare.py")
SECRETS = ("SUPERSET_SECRET_KEY", "SUPERSET_ADMIN_PASSWORD")
ADMIN = "admin"


class BiError(RuntimeError):
    pass


def home() -> Path:
    return settings.LOCAL_DIR / "superset"


def ensure_secrets(path: Path | None = None) -> list[str]:
    """Generate the missing SUPERSET_* secrets into .env (0600, under its lock); the added keys."""
    import fcntl
    import secrets

    path = path or settings.ENV_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        existing = settings.read_env_file(path)
        added = [key for key in SECRETS if not existing.get(key) and not os.environ.get(key)]
        if added:
            from include.pipeline.private_files import write_private

            lines = path.read_text().rstrip("\n").splitlines()
            lines += [f"{key}={secrets.token_urlsafe(32)}" for key in added]
            write_private(path, "\n".join(lines) + "\n")
        return added
    finally:
        os.close(fd)


def superset_env(port: int) -> dict[str, str]:
    """The environment of Superset's processes: its config, its secrets, the reader role's login
    (for the loader, which registers the warehouse database). No other secret of the stack."""
    reader = environments.metrics_env(("METRICS_READER",))
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ", "TMPDIR")}
    env.update(
        SUPERSET_CONFIG_PATH=str(CONFIG),
        SUPERSET_HOME=str(home()),
        FLASK_APP="superset.app:create_app()",
        BI_PORT=str(port),
        BI_ASSETS=str(settings.REPO_ROOT / "include" / "bi" / "assets"),
        BI_WAREHOUSE_HOST=reader["METRICS_HOST"],
        BI_WAREHOUSE_PORT=reader["METRICS_PORT"],
        BI_WAREHOUSE_DB=reader["METRICS_DB"],
        BI_WAREHOUSE_USER=reader["METRICS_READER_USER"],
        BI_WAREHOUSE_PASSWORD=reader["METRICS_READER_PASSWORD"],
        DO_NOT_TRACK="1",
        SCARF_ANALYTICS="false",
        PYTHONUNBUFFERED="1",
    )
    for key in SECRETS:
        value = settings.setting(key)
        if not value:
            raise BiError(f"{key} is missing from {settings.ENV_FILE} and the environment (make setup generates it)")
        env[key] = value
    return env


def prepare(env: dict[str, str]) -> None:
    """Migrate the metadata DB, set the admin from .env, import include/bi/assets (idempotent)."""
    home().mkdir(parents=True, exist_ok=True, mode=0o700)
    started = time.monotonic()
    proc = subprocess.run([str(VENV / "bin" / "python"), str(PREPARE)], env=env, cwd=settings.REPO_ROOT,
                          capture_output=True, text=True)  # fmt: skip
    if proc.returncode != 0:
        raise BiError(f"preparing Superset ({PREPARE.name}) failed:\n{(proc.stdout + proc.stderr)[-4000:]}")
    print(proc.stdout.strip(), f"\n==> Superset ready in {time.monotonic() - started:.1f} s", flush=True)


def server_command(port: int) -> list[str]:
    return [
        str(VENV / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1",
        "--worker-class", "gthread", "--threads", "4", "--timeout", "120", "--graceful-timeout", "10",
        "--limit-request-line", "0",
        "--no-control-socket",  # gunicorn 27's socket in ~/.gunicorn: one per user, two servers would share it
        "superset.app:create_app()",
    ]  # fmt: skip


def main() -> int:
    from include.pipeline.cli.supervisor import stop_like_ctrl_c, stop_with_make, supervise
    from include.pipeline.services import port_owner
    from include.pipeline.services.stack import start_services

    stop_like_ctrl_c()
    stop_with_make()
    if not (VENV / "bin" / "superset").exists():
        raise BiError(f"{VENV} has no Superset: run `make setup` (it installs {LOCK.relative_to(settings.REPO_ROOT)})")
    port = int(os.environ.get("BI_PORT", "8088"))
    owner = port_owner(port)
    if owner:
        raise BiError(f"port {port} on 127.0.0.1 is in use ({owner}): stop it, or choose another: BI_PORT=8089 make bi")
    env_file.ensure_env_file()
    added = ensure_secrets()
    if added:
        print(f"==> generated {', '.join(added)} into {settings.ENV_FILE}", flush=True)
    if os.environ.get("STACK_BI_NO_SERVICES") != "1":
        start_services()
    env = superset_env(port)
    prepare(env)
    print(f"==> Superset on http://127.0.0.1:{port}  user: {ADMIN}  password: `make password` (Ctrl-C to stop)")
    return supervise(env, {"superset": server_command(port)}, title="Superset")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
