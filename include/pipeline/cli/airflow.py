"""`settings`, `airflow ...` and `up`: Airflow's metadata DB and settings, and Airflow itself."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from include.pipeline import env_file, environments, settings, sizing
from include.pipeline.cli._common import airflow_bin, run, say
from include.pipeline.cli.supervisor import stop_like_ctrl_c, stop_with_make, supervise
from include.pipeline.services import ServiceError
from include.pipeline.services.airflow_init import migrate_and_load_settings
from include.pipeline.services.stack import start_services


def cmd_settings(_: argparse.Namespace) -> int:
    migrate_and_load_settings()
    return 0


def cmd_airflow(args: argparse.Namespace) -> int:
    return run([airflow_bin(), *args.rest], check=False).returncode


def cmd_up(_: argparse.Namespace) -> int:
    from include.pipeline.services import port_owner

    stop_like_ctrl_c()
    stop_with_make()
    env_file.ensure_env_file()  # secrets added since this .env was made (S3_*) before anything reads them
    env = environments.stack_env()
    owner = port_owner(int(env["AIRFLOW__API__PORT"]))
    if owner:
        raise ServiceError(
            f"port {env['AIRFLOW__API__PORT']} on 127.0.0.1 is in use ({owner}): stop it, "
            "or choose another port: AIRFLOW_PORT=8081 make up"
        )
    start_services()
    migrate_and_load_settings()
    env = environments.stack_env()
    home = Path(env["AIRFLOW_HOME"])
    password = settings.setting("AIRFLOW_ADMIN_PASSWORD")
    from include.pipeline.private_files import write_private

    write_private(home / "passwords.json", json.dumps({"admin": password}))  # 0600 from creation
    say(
        f"Airflow on http://127.0.0.1:{env['AIRFLOW__API__PORT']}  user: admin  "
        f"password: AIRFLOW_ADMIN_PASSWORD in {settings.ENV_FILE} (`make password` prints it)"
    )
    say("Ctrl-C stops Airflow; `make stop` stops the embedded services")
    say_sizing(env)
    return supervise(env)


def say_sizing(env: dict[str, str]) -> None:
    """Print how many processes Airflow was sized to here, and where each figure came from."""
    machine = sizing.Sizing.of_this_machine()
    chosen = machine.airflow_env()
    figures = ", ".join(
        f"{key.removeprefix('AIRFLOW__').lower().replace('__', '.')}={env[key]}"
        + ("" if env[key] == chosen[key] else " (from the environment)")
        for key in chosen
    )
    say(
        f"sizing: {machine.cores} cores, {machine.available_mib / 1024:.1f} GiB available -> {figures}"
        " (core.parallelism is also the LocalExecutor's worker count; set AIRFLOW__... to override)"
    )
