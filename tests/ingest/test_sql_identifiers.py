"""Names reach SQL only as quoted identifiers: a hostile name is a name, never a statement.

Validation refuses such names in connections.yaml (test_hostile_input.py); these tests check the
second line of defence, the SQL itself, against a real Postgres."""

from __future__ import annotations

import pytest

from include.pipeline import endpoints, identifiers
from include.pipeline.cli import report
from include.pipeline.observe import writer

HOSTILE = 'raw"; drop schema marts cascade; --'


@pytest.fixture
def warehouse_env(warehouse, monkeypatch):
    """WAREHOUSE_* of the test database, as report.py resolves them; `marts.keep` created in it."""
    for key, value in {
        "WAREHOUSE_HOST": warehouse.host, "WAREHOUSE_PORT": str(warehouse.port), "WAREHOUSE_USER": warehouse.user,
        "WAREHOUSE_PASSWORD": warehouse.password, "WAREHOUSE_DB": warehouse.database,
    }.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    # the summary reads as the transform role; this fresh database has no roles: read as its owner
    monkeypatch.setattr(endpoints.Warehouse, "for_role", classmethod(lambda cls, job: cls.from_settings()))
    with warehouse.connect() as conn, conn.cursor() as cur:
        cur.execute("create schema marts; create table marts.keep (id int); insert into marts.keep values (1), (1)")
        cur.execute('create schema "odd""schema"; create table "odd""schema"."t; x" ("k""ey" int)')
        cur.execute('insert into "odd""schema"."t; x" values (1), (2), (2)')
    conn.close()
    return warehouse


def test_the_run_summary_quotes_every_name(warehouse_env, sql):
    figures = report.table_figures([
        ("raw", HOSTILE, "users", ("id",)),
        ("raw", "raw", 'users"; drop table marts.keep; --', ()),
        ("marts", "marts", "keep", ("id",)),
        ("odd", 'odd"schema', "t; x", ('k"ey',)),
    ])  # fmt: skip
    assert figures == [
        ("raw", f"{HOSTILE}.users", "missing", "-"),
        ("raw", 'raw.users"; drop table marts.keep; --', "missing", "-"),
        ("marts", "marts.keep", "2", "1"),
        ("odd", 'odd"schema.t; x', "3", "1"),
    ]
    assert sql("select count(*) from marts.keep") == [(2,)], "the schema and its table are still there"


def test_metrics_upserts_quote_table_and_columns(warehouse_env, sql):
    statement, row = writer.upsert("t; drop schema marts cascade", {"a": 1, 'b"': 2}, ("a",))
    with warehouse_env.connect() as conn, conn.cursor() as cur:
        text = statement.as_string(cur)
        assert text.startswith('insert into "metrics"."t; drop schema marts cascade" as t ("a", "b""")'), text
        cur.execute(
            'create schema metrics; create table metrics."t; drop schema marts cascade" (a int primary key, "b""" int)'
        )
        cur.execute(statement, row)
        cur.execute(statement, {**row, 'b"': 3})
        cur.execute('select a, "b""" from metrics."t; drop schema marts cascade"')
        assert cur.fetchall() == [(1, 3)]
    conn.close()
    assert sql("select count(*) from marts.keep") == [(2,)]


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("marts.orders", ("marts", "orders")),
        ('"warehouse"."marts"."orders"', ("warehouse", "marts", "orders")),
        ('"w"".x"."marts"."o"', ('w".x', "marts", "o")),
    ],
)
def test_relation_names_become_identifiers(name, parts):
    assert identifiers.relation(name).strings == parts


def test_a_malformed_quoted_relation_is_refused():
    with pytest.raises(ValueError, match="not a quoted relation name"):
        identifiers.relation('"marts"."orders"; drop table x')
