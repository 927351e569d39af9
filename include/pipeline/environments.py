"""The environments the project gives its processes: Airflow's (`airflow_env`), every child's
(`stack_env`: no stage secret) and setup commands' (`setup_env`: every secret)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from include.pipeline import settings
from include.pipeline.endpoints import S3, Warehouse
from include.pipeline.lineage.config import airflow_env as lineage_airflow_env
from include.pipeline.sizing import Sizing
from include.pipeline.transform.docs_site import airflow_env as dbt_docs_airflow_env


def metrics_env(prefixes: tuple[str, ...] = ("METRICS", "METRICS_READER")) -> dict[str, str]:
    """METRICS_* for child processes: explicit settings, else the warehouse as its metrics role.

    METRICS_READER_USER / _PASSWORD: the read-only role the dashboards use (Grafana, Streamlit).
    The warehouse's settings are read only for what METRICS_* leaves out. `prefixes`: the
    identities wanted (the dashboards need only METRICS_READER's).
    """
    host, port, database = (
        settings.setting("METRICS_HOST"),
        settings.setting("METRICS_PORT"),
        settings.setting("METRICS_DB"),
    )
    if not (host and port and database):
        wh = Warehouse.location()
        host, port, database = host or wh.host, port or str(wh.port), database or wh.database
    out = {"METRICS_HOST": host, "METRICS_PORT": port, "METRICS_DB": database}
    for prefix, job in (("METRICS", "metrics"), ("METRICS_READER", "reader")):
        if prefix not in prefixes:
            continue
        user, password = settings.setting(f"{prefix}_USER"), settings.setting(f"{prefix}_PASSWORD")
        if not (user and password):  # the warehouse's role (its password is only needed then)
            role = Warehouse.for_role(job)
            user, password = user or role.user, password or role.password
        out[f"{prefix}_USER"], out[f"{prefix}_PASSWORD"] = user, password
    return out


def airflow_env() -> dict[str, str]:
    """Environment for every Airflow command the project runs (CLI, tests, `make up`).

    Sized to the machine (see `Sizing`): Airflow's default parallelism of 32 starts 32
    LocalExecutor workers, gigabytes idle on a small box. The AIRFLOW__... variables win.
    """
    airflow_home = Path(os.environ.get("AIRFLOW_HOME", settings.LOCAL_DIR / "airflow"))
    api_port = os.environ.get("AIRFLOW_PORT", "8080")
    env = {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(settings.REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(airflow_home / "passwords.json"),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": api_port,
        # Tasks report to the API server's execution API: same host and port (not `localhost`,
        # which may resolve to ::1 while the server listens on 127.0.0.1 only).
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "DO_NOT_TRACK": "1",
        "SCARF_ANALYTICS": "false",
        "AIRBYTE_OFFLINE_MODE": "1",
        "PYTHONPATH": os.pathsep.join(p for p in (str(settings.REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p),
        **Sizing.of_this_machine().airflow_env(),
        **lineage_airflow_env(settings.LOCAL_DIR, settings.setting),  # .local/lineage/ or LINEAGE_TRANSPORT
        **dbt_docs_airflow_env(settings.LOCAL_DIR),  # the newest dbt docs in the web UI (Browse > dbt Docs)
    }
    # Values from the environment win, so CI or a user can point Airflow elsewhere.
    env = {key: os.environ.get(key, value) if key != "PYTHONPATH" else value for key, value in env.items()}
    if env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("sqlite"):  # a writer waits for the lock
        key = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"
        env[key] = os.environ.get(key, "include.pipeline.metadata_db.CONNECT_ARGS")
    return env


def warehouse_env() -> dict[str, str]:
    """WAREHOUSE_* (the superuser and each stage's role) for setup commands (setup_env)."""
    wh = Warehouse.from_settings()
    return {
        "WAREHOUSE_HOST": wh.host,
        "WAREHOUSE_PORT": str(wh.port),
        "WAREHOUSE_USER": wh.user,
        "WAREHOUSE_PASSWORD": wh.password,
        "WAREHOUSE_DB": wh.database,
        # each stage's role (airflow_settings.yaml makes one Airflow connection of each)
        **{settings.role_password_key(job): Warehouse.for_role(job).password for job in settings.ROLES},
    }


def s3_env() -> dict[str, str]:
    """S3_ENDPOINT, the admin keys and every stage identity's keys, for setup commands (setup_env)."""
    env = S3.from_settings().env()
    for identity in settings.S3_IDENTITIES:
        keys = S3.for_identity(identity)
        env.update(zip(settings.s3_key_names(identity), (keys.access_key, keys.secret_key), strict=True))
    return env


def setup_env() -> dict[str, str]:
    """What setup commands get (migrations, `make settings`, `make airbyte-apply`, the demo's
    report): stack_env() plus every secret: the superuser's, each role's, each S3 identity's."""
    env = stack_env()
    for key, value in settings.read_env_file().items():
        env.setdefault(key, value)
    env.update(warehouse_env())
    env.update(s3_env())
    env.update(metrics_env())
    return env


def stack_env() -> dict[str, str]:
    """os.environ + .env + Airflow's settings + where the services are: what Airflow's components
    (and so their tasks) and every other child process get. No secret of settings.STAGE_SECRETS: a task
    reads its stage's password or keys from its Airflow connection when it runs (docs/security.md)."""
    env = dict(os.environ)
    for key, value in settings.read_env_file().items():
        env.setdefault(key, value)
    env.update(airflow_env())
    wh = Warehouse.location()
    env.update({"WAREHOUSE_HOST": wh.host, "WAREHOUSE_PORT": str(wh.port), "WAREHOUSE_USER": wh.user,
                "WAREHOUSE_DB": wh.database})  # fmt: skip
    env["S3_ENDPOINT"] = S3.endpoint_from_settings()  # where the lake and the exports are (no key)
    env.update({k: v for k, v in metrics_env().items() if not k.endswith("_PASSWORD")})
    for key in settings.STAGE_SECRETS:
        env.pop(key, None)
    # `airflow standalone` starts its components as `airflow ...`: the venv's bin must come first.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env
