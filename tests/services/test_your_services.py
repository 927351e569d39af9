"""A Postgres and an S3 of your own (docs/your-services.md): with WAREHOUSE_HOST and S3_ENDPOINT set,
`services start` (what `make services`, `make settings`, `make demo` and `make up` run first)
starts neither embedded server and takes no port, and the setup runs against your database.

"Yours" here are the session's real Postgres and S3 servers, reached as a user would reach theirs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

from include.pipeline import endpoints, settings
from include.pipeline.settings import ROLES, role_password_key
from tests.support import REPO_ROOT
from tests.support.postgres import new_database
from tests.support.s3 import stage_keys


def your_env(tmp_path, postgres_server, s3_server, database: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "WAREHOUSE_", "S3_", "METRICS_"))}
    env.update(
        STACK_LOCAL_DIR=str(tmp_path / ".local"),
        STACK_ENV_FILE=str(tmp_path / ".env"),
        WAREHOUSE_HOST="127.0.0.1",
        WAREHOUSE_PORT=str(postgres_server.port),
        WAREHOUSE_USER=postgres_server.superuser,
        WAREHOUSE_PASSWORD=postgres_server.password,
        WAREHOUSE_DB=database,
        S3_ENDPOINT=s3_server.endpoint,
        S3_ACCESS_KEY=s3_server.access_key,
        S3_SECRET_KEY=s3_server.secret_key,
        # an S3 of your own: each stage's identity is a key it knows (here all the same one)
        **stage_keys(s3_server.access_key, s3_server.secret_key),
        # roles belong to the whole server: keep the passwords the session's other tests log in with
        **{role_password_key(job): postgres_server.role_passwords[role] for job, role in ROLES.items()},
    )
    return env


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_services_start_leaves_your_postgres_and_s3_alone_and_setup_runs_on_them(tmp_path, postgres_server, s3_server):
    wh = new_database(postgres_server)
    with wh.connect() as conn, conn.cursor() as cur:  # data of yours, in a schema of yours
        cur.execute("create schema sales; create table sales.orders (id int); insert into sales.orders values (1)")
    env = your_env(tmp_path, postgres_server, s3_server, wh.database)

    started = cli(env, "include.pipeline.cli", "services", "start")

    assert started.returncode == 0, started.stdout + started.stderr
    lines = started.stdout.splitlines()
    assert (
        f"postgres: WAREHOUSE_HOST is set: the warehouse is yours, 127.0.0.1:{postgres_server.port}/{wh.database}; "
        "none started"
    ) in lines
    assert f"s3: S3_ENDPOINT is set: the S3 is yours, {s3_server.endpoint}; none started" in lines
    local = tmp_path / ".local"
    assert not (local / "postgres").exists() and not (local / "s3").exists(), "no embedded server was made"
    assert "postgres" not in json.loads(
        (local / "services.json").read_text() if (local / "services.json").exists() else "{}"
    )

    status = cli(env, "include.pipeline.cli", "services", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.splitlines()[:2] == [
        f"postgres: yours (WAREHOUSE_HOST), 127.0.0.1:{postgres_server.port}/{wh.database}: not started or stopped here",
        f"s3: yours (S3_ENDPOINT), {s3_server.endpoint}: not started or stopped here",
    ]

    stopped = cli(env, "include.pipeline.cli", "services", "stop")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert stopped.stdout.splitlines() == [
        "==> postgres is yours (WAREHOUSE_HOST): left running",
        "==> s3 is yours (S3_ENDPOINT): left running",
    ]

    setup = cli(env, "include.pipeline.services.warehouse")  # what `make settings` runs first
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert setup.stdout.startswith(f"warehouse roles on 127.0.0.1:{postgres_server.port}/{wh.database}: applied 001")
    with wh.connect() as conn, conn.cursor() as cur:
        cur.execute(
            "select n.nspname, pg_get_userbyid(n.nspowner) from pg_namespace n"
            " where n.nspname in ('sales', 'raw', 'marts') order by 1"
        )
        owners = dict(cur.fetchall())
        cur.execute("select pg_get_userbyid(relowner) from pg_class where oid = 'sales.orders'::regclass")
        [(table_owner,)] = cur.fetchall()
    assert owners == {"marts": "warehouse_transform", "raw": "warehouse_ingest", "sales": postgres_server.superuser}
    assert table_owner == postgres_server.superuser, "a schema the stack does not name is left as it was"


def test_the_embedded_port_is_not_taken_for_your_postgres(tmp_path, monkeypatch):
    """services.json keeps the embedded server's port: it is the warehouse's port only while
    WAREHOUSE_HOST is unset; your host without WAREHOUSE_PORT is on 5432."""
    state = tmp_path / "services.json"
    state.write_text(json.dumps({"postgres": {"port": 45678}}))
    monkeypatch.setattr(settings, "SERVICES_STATE", state)
    monkeypatch.setenv("WAREHOUSE_PASSWORD", "pw")
    monkeypatch.delenv("WAREHOUSE_PORT", raising=False)
    monkeypatch.delenv("WAREHOUSE_HOST", raising=False)
    assert (endpoints.Warehouse.from_settings().host, endpoints.Warehouse.from_settings().port) == ("127.0.0.1", 45678)
    monkeypatch.setenv("WAREHOUSE_HOST", "db.example.internal")
    assert endpoints.Warehouse.from_settings().port == 5432
    monkeypatch.setenv("WAREHOUSE_PORT", "6432")
    assert endpoints.Warehouse.from_settings().port == 6432


def test_a_setup_without_the_privileges_it_needs_says_so_in_one_line_and_changes_nothing(
    postgres_server, monkeypatch, capsys
):
    """A role that owns the database and has CREATEROLE, but may not SET ROLE to the stack's roles
    (they exist already: roles belong to the server), cannot give them their schemas."""
    import uuid

    from include.pipeline.services import warehouse

    owner, database = f"dw_owner_{uuid.uuid4().hex[:8]}", f"yours_{uuid.uuid4().hex[:8]}"
    conn = postgres_server.connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"create role {owner} login createrole password 'owner-pw'")
        cur.execute(f"create database {database} owner {owner}")
    conn.close()
    env = {
        "WAREHOUSE_HOST": "127.0.0.1", "WAREHOUSE_PORT": str(postgres_server.port), "WAREHOUSE_USER": owner,
        "WAREHOUSE_PASSWORD": "owner-pw", "WAREHOUSE_DB": database,
        **{role_password_key(job): postgres_server.role_passwords[role] for job, role in ROLES.items()},
    }  # fmt: skip
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    assert warehouse.main() == 2

    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert err.splitlines() == [
        f"error: warehouse roles on 127.0.0.1:{postgres_server.port}/{database} as {owner}: "
        'must be able to SET ROLE "warehouse_ingest"; nothing was changed. The setup needs a superuser, or a role '
        "that owns the database, has CREATEROLE and can SET ROLE to the four warehouse_* roles (docs/your-services.md)"
    ]
    superuser = replace(endpoints.Warehouse.from_settings(), user=postgres_server.superuser)
    with replace(superuser, password=postgres_server.password).connect() as conn, conn.cursor() as cur:
        cur.execute("select nspname from pg_namespace where nspname in ('raw', 'marts', 'metrics')")
        assert cur.fetchall() == []
        cur.execute("select to_regclass('public.warehouse_migrations')")
        assert cur.fetchall() == [(None,)]


def test_the_sync_child_keeps_libpq_tls_settings_and_no_other_pg_variable():
    """PGSSLMODE / PGSSLROOTCERT reach the embedded sync's runner (its warehouse connections are
    libpq's, as every other of the stack's); PGPASSWORD and the like do not."""
    from include.pipeline.ingest.embedded import child_env

    environ = {"PGSSLMODE": "verify-full", "PGSSLROOTCERT": "/etc/ssl/your-ca.pem", "PGPASSWORD": "s3cret"}
    environ["PGUSER"] = "postgres"
    env = child_env(environ=environ)
    assert {k: v for k, v in env.items() if k.startswith("PG")} == {
        "PGSSLMODE": "verify-full",
        "PGSSLROOTCERT": "/etc/ssl/your-ca.pem",
    }
