"""One role per stage (issue 11): each role can do its job in the warehouse and nothing more.

Against the session's real Postgres: a fresh database set up by include/sql/warehouse, objects made
by the role whose job it is, then every other stage's role tries what it must not do.
"""

from __future__ import annotations

import psycopg2
import pytest

from include.pipeline.observe import schema as metrics_schema
from include.pipeline.services.warehouse import migrate
from tests.support.postgres import new_database, server_params

INGEST, TRANSFORM, METRICS, READER = "warehouse_ingest", "warehouse_transform", "warehouse_metrics", "warehouse_reader"
DENIED = "42501"  # insufficient_privilege


class Db:
    """One database of the session server, reachable as the superuser or as any role."""

    def __init__(self, server, name: str):
        self.server, self.name = server, name

    def run(self, sql: str, role: str | None = None, params=None) -> list:
        conn = psycopg2.connect(**server_params(self.server, self.name, role))
        try:
            with conn, conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def attempt(self, sql: str, role: str) -> str | None:
        """None when `role` may run `sql`, else the SQLSTATE Postgres refused it with (rolled back)."""
        try:
            self.run(sql, role)
        except psycopg2.Error as exc:
            return exc.pgcode
        return None


@pytest.fixture(scope="module")
def db(postgres_server) -> Db:
    """A database set up as the stack's, with one object per stage made by that stage's role."""
    db = Db(postgres_server, new_database(postgres_server).database)
    assert migrate(server_params(postgres_server, db.name), postgres_server.role_passwords) == ["001"]
    db.run("create table raw.users (id int primary key, _airbyte_extracted_at timestamptz)", INGEST)
    db.run("insert into raw.users values (1, now()), (2, now())", INGEST)
    db.run("create table staging.stg_users as select id from raw.users", TRANSFORM)
    db.run("create table marts.customers as select id from staging.stg_users", TRANSFORM)
    db.run("create table metrics.dag_runs (dag_id text primary key)", METRICS)
    db.run("insert into metrics.dag_runs values ('ecommerce_daily')", METRICS)
    return db


def test_no_role_holds_a_server_wide_privilege(db):
    rows = db.run(
        "select rolname, rolsuper, rolcreatedb, rolcreaterole, rolbypassrls, rolreplication, rolcanlogin"
        " from pg_roles where rolname like 'warehouse\\_%' order by rolname"
    )
    assert [r[0] for r in rows] == sorted([INGEST, METRICS, READER, TRANSFORM])
    assert all(r[1:] == (False, False, False, False, False, True) for r in rows), rows
    member_of = db.run(
        "select r.rolname, g.rolname from pg_auth_members m join pg_roles r on r.oid = m.member"
        " join pg_roles g on g.oid = m.roleid where r.rolname like 'warehouse\\_%'"
    )
    assert member_of == [], "no role is a member of another (pg_read_server_files, ...)"


def test_each_schema_belongs_to_its_stage(db):
    owners = dict(db.run("select nspname, pg_get_userbyid(nspowner) from pg_namespace"))
    assert {s: owners[s] for s in ("raw", "airbyte_internal")} == {"raw": INGEST, "airbyte_internal": INGEST}
    for name in ("staging", "intermediate", "marts", "snapshots", "analytics"):
        assert owners[name] == TRANSFORM, name
    assert owners["metrics"] == METRICS


def test_ingest_writes_raw_and_nothing_else(db):
    for sql in (
        "insert into raw.users values (3, now())",
        "delete from raw.users where id = 3",
        "create table raw.new_stream (x int); drop table raw.new_stream",
        "create table airbyte_internal.raw_users (x int)",
        "create temporary table stage (x int)",
    ):
        assert db.attempt(sql, INGEST) is None, sql
    for sql in (
        "select * from marts.customers",
        "insert into marts.customers values (9)",
        "drop table marts.customers",
        "create table marts.evil (x int)",
        "select * from staging.stg_users",
        "select * from metrics.dag_runs",
        "insert into metrics.dag_runs values ('x')",
        "create schema evil",
        "create table public.evil (x int)",
    ):
        assert db.attempt(sql, INGEST) == DENIED, sql


def test_transform_reads_raw_and_owns_the_dbt_schemas(db):
    assert db.run("select count(*) from raw.users", TRANSFORM) == [(2,)]
    for sql in (
        # what dbt does: build beside, swap, drop the old, analyze, temporary tables of merges
        "create table marts.customers__dbt_tmp as select id from staging.stg_users;"
        " alter table marts.customers rename to customers__dbt_backup;"
        " alter table marts.customers__dbt_tmp rename to customers;"
        " drop table marts.customers__dbt_backup; analyze marts.customers",
        "create temporary table stg_users__dbt_tmp as select * from raw.users",
        "create table snapshots.customers_snapshot (id int)",
        "create table intermediate.int_x (id int)",
        "delete from staging.stg_users where id = 2",
    ):
        assert db.attempt(sql, TRANSFORM) is None, sql
    for sql in (
        "insert into raw.users values (9, now())",
        "update raw.users set id = 10 where id = 1",
        "delete from raw.users",
        "truncate raw.users",
        "drop table raw.users",
        "alter table raw.users add column evil int",
        "create table raw.evil (x int)",
        "insert into metrics.dag_runs values ('x')",
        "select * from metrics.dag_runs",
        "create schema evil",
    ):
        assert db.attempt(sql, TRANSFORM) == DENIED, sql


def test_metrics_owns_metrics_and_cannot_read_raw(db):
    for sql in (
        "insert into metrics.dag_runs values ('other') on conflict (dag_id) do nothing",
        "create table metrics.new_table (x int)",
    ):
        assert db.attempt(sql, METRICS) is None, sql
    for sql in (
        "select * from raw.users",
        "select * from marts.customers",
        "select * from staging.stg_users",
        "create table raw.evil (x int)",
        "create schema evil",
        "create temporary table t (x int)",
    ):
        assert db.attempt(sql, METRICS) == DENIED, sql


def test_reader_selects_marts_and_metrics_only(db):
    assert db.run("select count(*) from marts.customers", READER) == [(2,)]
    assert db.run("select dag_id from metrics.dag_runs where dag_id = 'ecommerce_daily'", READER) == [
        ("ecommerce_daily",)
    ]
    # tables their owners make later are readable too (default privileges): dbt rebuilds marts daily
    db.run("create table marts.later as select 1 as x", TRANSFORM)
    db.run("create table metrics.later (x int)", METRICS)
    assert db.attempt("select * from marts.later", READER) is None
    assert db.attempt("select * from metrics.later", READER) is None
    for sql in (
        "select * from raw.users",
        "select * from staging.stg_users",
        "select * from airbyte_internal.raw_users",
        "insert into marts.customers values (9)",
        "update metrics.dag_runs set dag_id = 'x'",
        "delete from metrics.dag_runs",
        "drop table marts.customers",
        "drop table metrics.dag_runs",
        "truncate marts.customers",
        "create table marts.evil (x int)",
        "create table public.evil (x int)",
        "create temporary table evil (x int)",
        "create schema evil",
        "select pg_read_file('PG_VERSION')",
        "select pg_ls_dir('.')",
        "copy marts.customers to '/tmp/bt-roles-evil.csv'",
    ):
        assert db.attempt(sql, READER) == DENIED, sql


def test_migrations_applied_twice_change_nothing(postgres_server):
    name = new_database(postgres_server).database
    db = Db(postgres_server, name)
    params = server_params(postgres_server, name)
    snapshot = (
        "select (select json_agg(json_build_array(nspname, nspowner::regrole::text, nspacl::text) order by nspname)"
        " from pg_namespace),"
        " (select json_agg(defaclacl::text order by defaclacl::text) from pg_default_acl),"
        " (select datacl::text from pg_database where datname = current_database())"
    )
    assert migrate(params) == ["001"]
    first = db.run(snapshot)
    assert migrate(params) == [] and migrate(params, postgres_server.role_passwords) == []
    assert db.run(snapshot) == first
    assert db.run("select version, name from public.warehouse_migrations") == [("001", "V001__roles.sql")]


def test_an_edited_migration_is_refused(postgres_server, tmp_path):
    name = new_database(postgres_server).database
    folder = tmp_path / "warehouse"
    folder.mkdir()
    (folder / "V001__roles.sql").write_text("create schema one;")
    assert migrate(server_params(postgres_server, name), folder=folder) == ["001"]
    (folder / "V001__roles.sql").write_text("create schema two;")
    with pytest.raises(metrics_schema.MigrationError, match="V001__roles.sql changed after it was applied"):
        migrate(server_params(postgres_server, name), folder=folder)


def test_an_older_database_is_upgraded(postgres_server):
    """A warehouse made before roles: everything created by the superuser. After the migration each
    stage's role owns its objects and can go on: ingest appends to raw, dbt replaces a mart."""
    db = Db(postgres_server, new_database(postgres_server).database)
    db.run(
        "create schema raw; create table raw.users (id serial primary key, name text);"
        " insert into raw.users (name) values ('a');"
        " create schema staging; create view staging.v_users as select * from raw.users;"
        " create schema marts; create table marts.customers as select id from raw.users;"
        " create schema metrics; create table metrics.dag_runs (id int generated always as identity, d text)"
    )
    assert migrate(server_params(postgres_server, db.name), postgres_server.role_passwords) == ["001"]
    owners = dict(
        db.run("select n.nspname || '.' || c.relname, pg_get_userbyid(c.relowner) from pg_class c"
               " join pg_namespace n on n.oid = c.relnamespace where n.nspname in ('raw', 'staging', 'marts', 'metrics')")
    )  # fmt: skip
    assert owners["raw.users"] == owners["raw.users_id_seq"] == INGEST
    assert owners["staging.v_users"] == TRANSFORM and owners["marts.customers"] == TRANSFORM
    assert owners["metrics.dag_runs"] == owners["metrics.dag_runs_id_seq"] == METRICS
    assert db.attempt("insert into raw.users (name) values ('b')", INGEST) is None
    assert db.attempt("drop table marts.customers; create table marts.customers as select 1 as id", TRANSFORM) is None
    assert db.attempt("insert into metrics.dag_runs (d) values ('x')", METRICS) is None
    assert db.run("select count(*) from marts.customers", READER) == [(1,)]
    assert db.attempt("select * from raw.users", READER) == DENIED


def test_the_metrics_role_migrates_the_metrics_schema_it_owns(postgres_server):
    """`make setup` (or the writer, when the metrics database came up late) runs the metrics
    migrations as the metrics role, which may not create schemas: they still apply, once."""
    db = Db(postgres_server, new_database(postgres_server).database)
    migrate(server_params(postgres_server, db.name))
    params = {**server_params(postgres_server, db.name, METRICS), "connect_timeout": 2}
    assert metrics_schema.migrate(params) == [v for v, _ in metrics_schema.migrations()]
    assert metrics_schema.migrate(params) == []
    owners = db.run(
        "select distinct pg_get_userbyid(relowner) from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'metrics'"
    )
    assert owners == [(METRICS,)]
    assert db.attempt("select count(*) from metrics.task_runs", READER) is None


def test_each_role_logs_in_with_its_own_password_only(db, postgres_server):
    passwords = postgres_server.role_passwords
    for role in passwords:
        assert db.run("select current_user", role) == [(role,)]
        wrong = {**server_params(postgres_server, db.name, role), "password": passwords[INGEST] + "x"}
        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            psycopg2.connect(**wrong).close()
