"""Every raw table the runtime writes has one index on `_airbyte_extracted_at` (issue 27).

A daily dbt build reads only the records extracted since its last build (macro
latest_extraction); without this index each staging model scans its raw table whole. The runtime
creates it with the table, after a full refresh swaps the table in, and on a table an older
runtime (or PyAirbyte) made without it; never twice. Run through the real runtime with the test
connector of test_embedded_write_path.py.
"""

from __future__ import annotations

import pytest

from include.airbyte_runtime.tables import TYPE_ERRORS
from tests.ingest.test_embedded_write_path import connection, record, source, sync  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration

INDEXES = (
    "select i.indexrelid::regclass::text from pg_index i join pg_attribute a"
    " on a.attrelid = i.indrelid and a.attnum = i.indkey[0]"
    " where i.indrelid = 'raw.items'::regclass and a.attname = '_airbyte_extracted_at' and i.indpred is null"
)


def test_a_table_created_by_a_sync_without_records_has_the_index(source, warehouse, sql):  # noqa: F811
    sync(connection(source([]), "incremental_deduped_history"), warehouse)
    assert sql("select count(*) from raw.items") == [(0,)]
    assert len(sql(INDEXES)) == 1


def test_merge_append_and_replace_keep_exactly_one_index(source, warehouse, sql):  # noqa: F811
    records = [record(1, "01", name="a"), record(2, "02", name="b")]
    for mode in ("incremental_deduped_history", "incremental_append", "full_refresh_overwrite"):
        conn = connection(source(records), mode)
        sync(conn, warehouse)
        sync(conn, warehouse)
        assert len(sql(INDEXES)) == 1, mode
    assert sql("select count(*) from raw.items") == [(2,)]


def test_a_raw_table_without_the_index_gets_it_at_the_next_sync(source, warehouse, sql):  # noqa: F811
    conn = connection(source([record(1, "01", name="a")]), "incremental_deduped_history")
    sync(conn, warehouse)
    (name,) = sql(INDEXES)[0]
    sql(f"drop index {name}")  # a table as an older runtime left it
    assert sql(INDEXES) == []
    source([record(1, "01", name="a"), record(2, "02", name="b")])
    sync(conn, warehouse)
    assert len(sql(INDEXES)) == 1
    # the index serves the dbt read of a day's records: a time past the newest is an index read
    # the index serves a read of the records since a time (two rows: a scan is cheaper unless barred)
    plan = sql(
        "set local enable_seqscan = off;"
        " explain select * from raw.items where _airbyte_extracted_at >= timestamp '2026-01-01'"
    )
    (name,) = sql(INDEXES)[0]
    assert name.split(".")[-1] in " ".join(row[0] for row in plan), plan


KEY_INDEXES = (
    "select i.indexrelid::regclass::text from pg_index i join pg_attribute a"
    " on a.attrelid = i.indrelid and a.attnum = i.indkey[0]"
    " where i.indrelid = 'raw.items'::regclass and a.attname = 'id'"
)


def test_a_merged_table_gets_one_index_on_its_key_and_its_merge_deletes_through_it(source, warehouse, sql):  # noqa: F811
    # a merge deletes the staged keys' rows: without the index, a scan of the whole table each day
    conn = connection(source([record(1, "01", name="a"), record(2, "02", name="b")]), "incremental_deduped_history")
    sync(conn, warehouse)
    sync(conn, warehouse)
    assert len(sql(KEY_INDEXES)) == 1
    (name,) = sql(KEY_INDEXES)[0]
    plan = sql(
        "create temp table staged as select * from raw.items where id = 2; analyze staged;"
        " set local enable_seqscan = off; set local enable_hashjoin = off; set local enable_mergejoin = off;"
        " explain delete from raw.items f using staged s where f.id = s.id"
    )
    assert name.split(".")[-1] in " ".join(row[0] for row in plan), plan
    # keyless rows are kept as they come: the index is not unique
    assert sql("select indisunique from pg_index where indexrelid = %s::regclass", (name,)) == [(False,)]


def test_append_and_replace_tables_get_no_key_index(source, warehouse, sql):  # noqa: F811
    records = [record(1, "01", name="a")]
    for mode in ("incremental_append", "full_refresh_overwrite"):
        sync(connection(source(records), mode), warehouse)
        assert sql(KEY_INDEXES) == [], mode


FLAGGED_INDEXES = (
    "select indexrelid::regclass::text from pg_index"
    " where indrelid = 'raw.items'::regclass and pg_get_expr(indpred, indrelid) like '%changes%'"
)


@pytest.mark.parametrize("mode", ["incremental_deduped_history", "incremental_append", "full_refresh_overwrite"])
def test_the_flagged_records_are_counted_from_a_partial_index(mode, source, warehouse, sql):  # noqa: F811
    # the freshness gate counts the records Airbyte flagged before each day's dbt build: without
    # this index that count parses the _airbyte_meta of every record in the table, every day
    from psycopg2 import sql as sql_

    from include.pipeline.observe.freshness import measure

    records = [
        record(1, "01", name="fine", amount=1.5),
        record(2, "01", name="flagged", amount="n/a"),
        record(3, "01", name="flagged too", active="maybe"),
    ]
    conn = connection(source(records), mode)
    sync(conn, warehouse)
    sync(conn, warehouse)
    assert len(sql(FLAGGED_INDEXES)) == 1
    # records whose changes are missing, null or not an array are not flagged, and never fail a write
    sql(
        "insert into raw.items (id, _airbyte_meta) values"
        " (4, '{}'), (5, '{\"changes\": null}'), (6, '{\"changes\": {}}'), (7, '{\"changes\": []}'), (8, null)"
    )
    db = warehouse.connect()
    try:
        with db, db.cursor() as cur:
            figures = measure(cur, "raw.items")
            cur.execute("set local enable_seqscan = off")
            cur.execute(sql_.SQL("explain select count(*) from raw.items where ") + sql_.SQL(TYPE_ERRORS))
            plan = " ".join(row[0] for row in cur.fetchall())
    finally:
        db.close()
    # what a scan that parses each record finds (the gate's count before the index), and 2 per sync
    flagged = sql(
        "select count(*) filter (where _airbyte_meta::jsonb -> 'changes' is not null"
        " and jsonb_typeof(_airbyte_meta::jsonb -> 'changes') = 'array'"
        " and jsonb_array_length(_airbyte_meta::jsonb -> 'changes') > 0), count(*) from raw.items"
    )
    assert (figures["type_errors"], figures["row_count"]) == flagged[0]
    assert figures["type_errors"] in (2, 4), figures  # the two records, once or once per sync (append)
    (name,) = sql(FLAGGED_INDEXES)[0]
    assert name.split(".")[-1] in plan, plan
