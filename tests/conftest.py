"""Shared fixtures: a real Postgres (the same embedded server the stack uses) on 127.0.0.1."""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path

import pytest

from include.pipeline.services.postgres import EmbeddedPostgres
from include.pipeline.services.s3 import EmbeddedS3
from include.pipeline.services.warehouse import migrate as migrate_warehouse
from include.pipeline.settings import ROLES, Warehouse

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory) -> EmbeddedPostgres:
    """One Postgres for the test session, on a free port, with a generated password; its database
    `warehouse` set up as the stack's is (include/sql/warehouse: one role per stage), each role's
    generated password in `server.role_passwords` ({role: password})."""
    server = EmbeddedPostgres(tmp_path_factory.mktemp("postgres"), password=secrets.token_urlsafe(16))
    server.start()
    server.role_passwords = {role: secrets.token_urlsafe(16) for role in ROLES.values()}
    migrate_warehouse(server_params(server, "warehouse"), server.role_passwords)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> EmbeddedS3:
    """One S3 server (SeaweedFS) for the test session, on free ports, with generated keys."""
    server = EmbeddedS3(
        tmp_path_factory.mktemp("s3"), access_key=secrets.token_hex(10), secret_key=secrets.token_urlsafe(24)
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def exports_env(s3_server: EmbeddedS3):
    """S3_ENDPOINT / S3_ACCESS_KEY / S3_SECRET_KEY of the session's S3 in os.environ (what the
    `${VAR}` references of connections.yaml resolve to), for one test module."""
    values = {"S3_ENDPOINT": s3_server.endpoint, "S3_ACCESS_KEY": s3_server.access_key}
    values["S3_SECRET_KEY"] = s3_server.secret_key
    with pytest.MonkeyPatch.context() as patch:
        for key, value in values.items():
            patch.setenv(key, value)
        yield values


def server_params(server: EmbeddedPostgres, database: str, role: str | None = None) -> dict:
    """psycopg2 connect() keywords for `database`, as the superuser or as `role`."""
    user, password = (role, server.role_passwords[role]) if role else (server.superuser, server.password)
    return {"host": "127.0.0.1", "port": server.port, "user": user, "password": password, "dbname": database}


def new_database(postgres_server: EmbeddedPostgres) -> Warehouse:
    """Create a fresh, empty database on `postgres_server` and return how to reach it."""
    name = f"test_{uuid.uuid4().hex[:10]}"
    conn = postgres_server.connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'create database "{name}"')
    conn.close()
    return Warehouse("127.0.0.1", postgres_server.port, postgres_server.superuser, postgres_server.password, name)


@pytest.fixture
def warehouse(postgres_server: EmbeddedPostgres) -> Warehouse:
    """A fresh, empty database on the session's Postgres, for one test."""
    return new_database(postgres_server)


@pytest.fixture
def sql(warehouse: Warehouse):
    """Run a query on the test database and return all rows."""
    import psycopg2

    def run(query: str, params=None):
        with psycopg2.connect(
            host=warehouse.host, port=warehouse.port, user=warehouse.user,
            password=warehouse.password, dbname=warehouse.database,
        ) as conn, conn.cursor() as cur:  # fmt: skip
            cur.execute(query, params)
            return cur.fetchall() if cur.description else []

    return run


class Stack:
    """A whole local stack in a temporary folder: its own .env, Postgres, Airflow home."""

    def __init__(self, root: Path):
        import os

        self.root = root
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "WAREHOUSE_"))}
        self.env.update(
            STACK_LOCAL_DIR=str(root / ".local"),
            STACK_ENV_FILE=str(root / ".env"),
            WAREHOUSE_PASSWORD=secrets.token_urlsafe(16),
            AIRFLOW_ADMIN_PASSWORD=secrets.token_urlsafe(16),
            DO_NOT_TRACK="1",
        )

    def cli(self, *args: str, check: bool = True):
        """Run `python -m include.pipeline.cli ARGS` as `make` would, output captured."""
        import subprocess
        import sys

        proc = subprocess.run(
            [sys.executable, "-m", "include.pipeline.cli", *args],
            cwd=REPO_ROOT, env=self.env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        if check and proc.returncode != 0:
            raise AssertionError(
                f"cli {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
            )
        return proc

    @staticmethod
    def demo_log(proc) -> str:
        """Airflow's output of a `demo` command: the file whose path the command printed."""
        import re

        found = re.search(r"(/\S+/demo-[^/\s]+\.log)", proc.stdout)
        assert found, f"the demo names its log file:\n{proc.stdout[-3000:]}"
        return Path(found.group(1)).read_text()

    def warehouse(self) -> Warehouse:
        import json

        port = json.loads((self.root / ".local" / "services.json").read_text())["postgres"]["port"]
        return Warehouse("127.0.0.1", port, "postgres", self.env["WAREHOUSE_PASSWORD"], "warehouse")

    def sql(self, query: str, params=None):
        import psycopg2

        wh = self.warehouse()
        with psycopg2.connect(
            host=wh.host, port=wh.port, user=wh.user, password=wh.password, dbname=wh.database
        ) as conn, conn.cursor() as cur:  # fmt: skip
            cur.execute(query, params)
            return cur.fetchall() if cur.description else []


E2E_DATE = "2026-01-05"


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Stack:
    """A stack after one `demo` run of the daily DAG for E2E_DATE (shared by the e2e tests)."""
    stack = Stack(tmp_path_factory.mktemp("stack"))
    stack.first_run = stack.cli("demo", "--date", E2E_DATE)
    yield stack
    stack.cli("services", "stop", check=False)
