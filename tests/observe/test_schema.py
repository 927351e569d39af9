"""The metrics schema is created from include/sql/metrics and migrated idempotently."""

from __future__ import annotations

import shutil

import pytest

from include.pipeline.observe import schema

pytestmark = pytest.mark.integration

TABLES = {
    "dag_runs",
    "task_runs",
    "task_events",
    "syncs",
    "dbt_nodes",
    "freshness",
    "freshness_checks",
    "lake_partitions",
    "data_quality",
    "schema_changes",
    "bad_files",
    "schema_migrations",
}


def test_migrate_creates_every_table_once_and_a_second_run_changes_nothing(metrics_params, sql):
    tables = {r[0] for r in sql("select table_name from information_schema.tables where table_schema = 'metrics'")}
    assert tables == TABLES
    assert schema.migrate(metrics_params) == []  # second run: nothing to apply
    assert sql("select version, name from metrics.schema_migrations order by 1") == [
        ("001", "V001__metrics_schema.sql"),
        ("002", "V002__freshness_checks.sql"),
        ("003", "V003__lake_partitions.sql"),
        ("004", "V004__schema_changes.sql"),
    ]


def test_an_applied_migration_edited_afterwards_is_refused_with_the_file_named(metrics_params, tmp_path):
    folder = tmp_path / "metrics"
    shutil.copytree(schema.MIGRATIONS_DIR, folder)
    path = folder / "V001__metrics_schema.sql"
    path.write_text(path.read_text() + "\n-- edited\n")
    with pytest.raises(schema.MigrationError, match="V001__metrics_schema.sql changed after it was applied"):
        schema.migrate(metrics_params, folder)


def test_a_comment_only_edit_listed_in_the_schema_module_is_accepted_and_recorded(metrics_params, sql):
    """V001's comment changed after it was applied; a database that recorded the old checksum
    takes the file's new one instead of refusing to start, and only for the listed checksum."""
    current = sql("select checksum from metrics.schema_migrations where version = '001'")[0][0]
    old = next(iter(schema.COMMENT_ONLY_EDITS["001"]))
    assert current != old, "the committed V001 is the edited one"
    sql("update metrics.schema_migrations set checksum = %s where version = '001'", (old,))
    assert schema.migrate(metrics_params) == []
    assert sql("select checksum from metrics.schema_migrations where version = '001'") == [(current,)]
    sql("update metrics.schema_migrations set checksum = %s where version = '001'", ("0" * 64,))
    with pytest.raises(schema.MigrationError, match="V001__metrics_schema.sql changed after it was applied"):
        schema.migrate(metrics_params)
    sql("update metrics.schema_migrations set checksum = %s where version = '001'", (current,))


def test_a_new_migration_file_is_applied_after_the_others(metrics_params, tmp_path, sql):
    folder = tmp_path / "metrics"
    shutil.copytree(schema.MIGRATIONS_DIR, folder)
    (folder / "V900__add_note.sql").write_text("alter table metrics.dag_runs add column if not exists note text;")
    assert schema.migrate(metrics_params, folder) == ["900"]
    assert sql(
        "select count(*) from information_schema.columns where table_name = 'dag_runs' and column_name = 'note'"
    ) == [(1,)]
    (folder / "bad name.sql").write_text("select 1")
    with pytest.raises(schema.MigrationError, match="bad name.sql"):
        schema.migrate(metrics_params, folder)
