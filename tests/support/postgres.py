"""A real Postgres for the session (the stack's own embedded server) and fresh databases on it."""

from __future__ import annotations

import secrets
import uuid

import pytest

from include.pipeline.endpoints import Warehouse
from include.pipeline.services.postgres import EmbeddedPostgres
from include.pipeline.services.warehouse import migrate as migrate_warehouse
from include.pipeline.settings import ROLES


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


@pytest.fixture
def warehouse(postgres_server: EmbeddedPostgres) -> Warehouse:
    """A fresh, empty database on the session's Postgres, for one test."""
    return new_database(postgres_server)


@pytest.fixture
def pg(warehouse: Warehouse):
    """An open connection (`Warehouse.connect()`) to the test's fresh database, closed after the
    test. A module that needs tables in it overrides `pg` with a fixture of the same name that
    takes this one, creates them and returns it."""
    conn = warehouse.connect()
    try:
        yield conn
    finally:
        conn.close()


def query(warehouse: Warehouse, statement: str, params=None) -> list[tuple]:
    """Run one statement on `warehouse` in its own connection (committed, closed); all rows."""
    conn = warehouse.connect()
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


@pytest.fixture
def sql(warehouse: Warehouse):
    """Run a query on the test database and return all rows."""
    return lambda statement, params=None: query(warehouse, statement, params)
