"""The one-off setup of a stack's databases, shared by `make settings`, `cli demo` and the
`airflow-init` container: warehouse roles and grants (include/sql/warehouse), `airflow db
migrate`, the connections and variables of airflow_settings.yaml, the metrics schema
(include/sql/metrics). Each step is a child process in the stack's environment; a failing one
raises CalledProcessError naming its command (the metrics schema only warns when its database
is down).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from include.pipeline import environments, settings
from include.pipeline.private_files import private_dir, tighten

PY = sys.executable


def _say(message: str) -> None:
    print(f"==> {message}", flush=True)


def _run(cmd: list[str], env: dict[str, str], **kw) -> None:
    subprocess.run(cmd, env=env, check=True, cwd=settings.REPO_ROOT, **kw)


def migrate_and_load_settings() -> None:
    env = environments.setup_env()  # setup: the superuser, and every secret airflow_settings.yaml names
    home = private_dir(Path(env["AIRFLOW_HOME"]))  # metadata DB, airflow.cfg, passwords.json: owner only
    _say("warehouse roles and grants (include/sql/warehouse)")
    _run([PY, "-m", "include.pipeline.services.warehouse"], env)  # the superuser's one job
    _say("airflow db migrate")
    _run([str(Path(PY).with_name("airflow")), "db", "migrate"], env, stdout=subprocess.DEVNULL)
    tighten(home / "airflow.db", warn=lambda _: None)  # Airflow creates it 0644 (inside the 0700 home)
    _say(f"loading {settings.AIRFLOW_SETTINGS_FILE.name}")
    _run([PY, "-m", "include.pipeline.airflow_settings", str(settings.AIRFLOW_SETTINGS_FILE)], env)
    _say("metrics schema (include/sql/metrics)")
    _run([PY, "-m", "include.pipeline.observe.schema"], env)  # only warns when the metrics DB is down
