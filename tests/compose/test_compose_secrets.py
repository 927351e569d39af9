"""Least privilege in docker-compose.yaml and compose/, without starting anything: each service
gets only the secrets it uses, no secret is interpolated into a command line, and the Postgres
init script (run against a real Postgres here) leaves the Airflow database to `airflow` alone and
never shows a password to `ps`. The containers themselves: test_compose.py."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path

import psycopg2
import pytest
import yaml

from include.pipeline.endpoints import Warehouse
from include.pipeline.settings import ROLES, role_password_key
from tests.compose.conftest import COMPOSE_FILE, REPO

SECRET_REF = re.compile(r"\$\{(\w*(?:PASSWORD|SECRET|KEY)\w*)")
AIRFLOW_LONG_RUNNING = {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"}
S3_STAGE_KEYS = {
    f"S3_{stage}_{kind}_KEY"
    for stage in ("EXPORTS_WRITER", "EXPORTS_READER", "LAKE_WRITER", "LAKE_READER")
    for kind in ("ACCESS", "SECRET")
}


def services() -> dict[str, dict]:
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]  # merge keys (<<) resolved


def one_offs(found: dict[str, dict]) -> set[str]:
    """The services others wait to see finish (condition: service_completed_successfully)."""
    return {
        name
        for service in found.values()
        for name, how in (service.get("depends_on") or {}).items()
        if isinstance(how, dict) and how.get("condition") == "service_completed_successfully"
    }


def secrets_of(service: dict) -> set[str]:
    """The secret variables of .env a service's environment is given."""
    env = service.get("environment") or {}
    return {ref for value in env.values() for ref in SECRET_REF.findall(str(value))}


def test_every_warehouse_password_reaches_at_most_one_long_running_service():
    found = services()
    once = one_offs(found)
    assert {"airflow-init", "minio-setup", "minio-volume"} <= once, once
    long_running = {name: secrets_of(s) for name, s in found.items() if name not in once}
    assert AIRFLOW_LONG_RUNNING | {"airflow-worker", "grafana", "postgres", "minio"} <= set(long_running)
    dashboards = {"grafana", "superset"}  # the read-only role's password serves both (profiles grafana, bi)
    for job in ROLES:
        holders = [name for name, held in long_running.items() if role_password_key(job) in held]
        if job == "reader":
            assert set(holders) <= dashboards, f"{role_password_key(job)} is given to {holders}"
        else:
            assert len(holders) <= 1, f"{role_password_key(job)} is given to {holders}"
    assert long_running["superset"] == {"SUPERSET_SECRET_KEY", "SUPERSET_ADMIN_PASSWORD", role_password_key("reader")}
    assert long_running["grafana"] & {role_password_key(j) for j in ROLES} == {role_password_key("reader")}
    # Airflow's long-running containers: no warehouse password, no MinIO key at all (a task reads
    # its stage's from its Airflow connection); only Airflow's own secrets
    for name in AIRFLOW_LONG_RUNNING | {"airflow-worker"}:
        assert not long_running[name] - {
            "AIRFLOW_DB_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY",
            "REDIS_PASSWORD", "AIRFLOW_ADMIN_PASSWORD",
        }, (name, sorted(long_running[name]))  # fmt: skip
    assert [n for n, held in long_running.items() if "AIRFLOW_ADMIN_PASSWORD" in held] == ["airflow-apiserver"]
    # MinIO's root: the server itself, and the one-off steps that set it up
    assert {n for n, s in found.items() if "S3_SECRET_KEY" in secrets_of(s)} == {"minio", "minio-setup", "airflow-init"}
    # the stage users' keys: their maker and the step that writes the Airflow connections
    for key in S3_STAGE_KEYS:
        assert {n for n, s in found.items() if key in secrets_of(s)} == {"minio-setup", "airflow-init"}, key


def test_no_secret_is_interpolated_into_a_command_line():
    """${SECRET} in command / entrypoint / healthcheck would be in the process's argv (`ps`);
    `$$VAR` is expanded by the container's shell from its environment (builtins: no argv)."""
    for name, service in services().items():
        for field in ("command", "entrypoint"):
            assert not SECRET_REF.findall(str(service.get(field, ""))), (name, field)
        assert not SECRET_REF.findall(str((service.get("healthcheck") or {}).get("test", ""))), name


def test_minio_setup_keeps_secret_keys_off_mc_command_lines():
    script = (REPO / "compose" / "minio-setup.sh").read_text()
    mc_lines = [
        line for line in script.splitlines() if re.search(r"\bmc\b", line) and not line.lstrip().startswith("#")
    ]
    assert mc_lines
    for line in mc_lines:
        assert "secret" not in line.split("| mc", 1)[-1].lower(), line
    assert 'printf \'%s\\n\' "$secret_key" | mc admin user add minio "$access_key"' in script


@pytest.fixture
def postgres_bin() -> Path:
    import pgserver

    found = Path(pgserver.__file__).parent / "pginstall" / "bin"
    assert (found / "psql").exists(), found
    return found


def test_postgres_init_revokes_public_connect_and_shows_no_password(tmp_path, postgres_bin):
    """compose/postgres-init/01-airflow-db.sh on an empty server, as the postgres image runs it;
    then the warehouse's roles (include/sql/warehouse) as airflow-init makes them."""
    from include.pipeline.services.postgres import EmbeddedPostgres
    from include.pipeline.services.warehouse import migrate
    from tests.support.postgres import server_params

    server = EmbeddedPostgres(tmp_path / "pg", password=secrets.token_urlsafe(16))
    server.start()
    try:
        airflow_password = "a'b" + secrets.token_urlsafe(16)  # a quote: psql's :'pw' must quote it
        # every psql started by the script records its command line
        shim = tmp_path / "shim"
        shim.mkdir()
        (shim / "psql").write_text(
            f'#!/bin/sh\nprintf "%s\\n" "$*" >> {tmp_path}/argv\nexec {postgres_bin}/psql "$@"\n'
        )
        (shim / "psql").chmod(0o755)
        env = {
            "PATH": f"{shim}:{os.environ['PATH']}", "AIRFLOW_DB_PASSWORD": airflow_password, "POSTGRES_DB": "warehouse",
            "PGHOST": "127.0.0.1", "PGPORT": str(server.port), "PGUSER": server.superuser, "PGPASSWORD": server.password,
        }  # fmt: skip
        script = REPO / "compose" / "postgres-init" / "01-airflow-db.sh"
        result = subprocess.run([shutil.which("bash"), str(script)], env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        argv = (tmp_path / "argv").read_text()
        assert "psql" not in argv and argv.strip() and airflow_password not in argv, argv

        role_passwords = {role: secrets.token_urlsafe(16) for role in ROLES.values()}
        migrate(server_params(server, "warehouse"), role_passwords)

        def connect(user: str, password: str, db: str):
            return Warehouse("127.0.0.1", server.port, user, password, db).connect(connect_timeout=5).close()

        connect("airflow", airflow_password, "airflow")  # Airflow's own database, its password
        for role, password in role_passwords.items():
            connect(role, password, "warehouse")
            with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
                connect(role, password, "airflow")
        with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
            connect("airflow", airflow_password, "warehouse")
    finally:
        server.stop()
