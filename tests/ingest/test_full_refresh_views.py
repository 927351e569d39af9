"""A full refresh drops only the views dbt manages over the raw tables; anything of the user's that
depends on them stops the refresh, named, with nothing dropped."""

from __future__ import annotations

import json

import pytest

from include.pipeline import settings
from include.pipeline.ingest.embedded_sync import FullRefreshBlocked, dbt_managed_views, drop_dependent_views

SETUP = """
    create schema raw; create schema staging; create schema analytics;
    create table raw.users (id int primary key, name text);
    create table raw.purchases (id int, user_id int);
    create view staging.stg_users as select id, name from raw.users;
    create view staging.stg_user_purchases as
        select p.id, u.name from raw.purchases p join staging.stg_users u on u.id = p.user_id;
"""
MANAGED = {("staging", "stg_users"), ("staging", "stg_user_purchases")}


@pytest.fixture
def raw(warehouse, sql):
    sql(SETUP)
    return warehouse


def relations(sql) -> set[str]:
    rows = sql(
        "select n.nspname || '.' || c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname in ('raw', 'staging', 'analytics') and c.relkind in ('r', 'v', 'm')"
    )
    return {r for (r,) in rows}


def test_only_dbts_views_are_dropped_deepest_first(raw, sql):
    lines: list[str] = []
    dropped = drop_dependent_views(raw, "raw", ["users", "purchases"], log=lines.append, managed=MANAGED)
    assert set(dropped) == {"staging.stg_users", "staging.stg_user_purchases"}
    assert relations(sql) == {"raw.users", "raw.purchases"}
    assert "dropped dbt's views over raw" in lines[0]


@pytest.mark.parametrize(
    ("user_object", "named"),
    [
        ("create view analytics.report as select * from raw.users", "view analytics.report"),
        # through a dbt view: CASCADE on stg_users would have taken it without a word
        ("create view analytics.report as select * from staging.stg_users", "view analytics.report"),
        ("create materialized view analytics.snap as select * from raw.purchases", "materialized view analytics.snap"),
        (
            "create table analytics.notes (user_id int references raw.users (id))",
            "constraint notes_user_id_fkey on table analytics.notes",
        ),
    ],
)
def test_a_dependent_of_the_users_stops_the_refresh_and_is_named(raw, sql, user_object, named):
    sql(user_object)
    before = relations(sql)
    with pytest.raises(FullRefreshBlocked) as info:
        drop_dependent_views(raw, "raw", ["users", "purchases"], log=print, managed=MANAGED)
    message = str(info.value)
    assert named in message and "nothing was dropped" in message and "Fix:" in message, message
    assert relations(sql) == before, "not one view dropped"


def test_a_view_not_in_the_manifest_is_the_users(raw, sql):
    with pytest.raises(FullRefreshBlocked, match="view staging.stg_user_purchases"):
        drop_dependent_views(raw, "raw", ["purchases"], log=print, managed={("staging", "stg_users")})


def test_the_managed_views_come_from_dbts_manifest(tmp_path):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"nodes": {
        "model.p.a": {"resource_type": "model", "schema": "staging", "name": "a", "alias": "a_v",
                      "config": {"materialized": "view"}},
        "model.p.b": {"resource_type": "model", "schema": "marts", "name": "b", "alias": "b",
                      "config": {"materialized": "table"}},
        "seed.p.c": {"resource_type": "seed", "schema": "staging", "name": "c", "config": {"materialized": "view"}},
    }}))  # fmt: skip
    assert dbt_managed_views(manifest) == {("staging", "a_v")}
    shipped = settings.DBT_PROJECT_DIR / "target" / "manifest.json"
    assert shipped.exists(), "make setup writes the manifest (dbt parse)"
    assert dbt_managed_views(shipped) <= {
        (n["schema"], n["alias"]) for n in json.loads(shipped.read_text())["nodes"].values() if "alias" in n
    }
