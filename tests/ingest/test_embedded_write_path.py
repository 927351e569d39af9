"""The embedded engine's write path (COPY + one-transaction merge) against a real Postgres.

The connector is tests/ingest/protocol_source.py, run by the real runtime like any
connector, so each test chooses the exact values and versions of the records it sends.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest
from psycopg2.sql import SQL, Identifier

from include.pipeline.ingest import embedded
from include.pipeline.ingest.declaration import Connection, PostgresDestination, Source, Stream
from include.pipeline.ingest.embedded import EmbeddedSyncError, sync_connection

pytestmark = pytest.mark.integration

SOURCE = Path(__file__).with_name("protocol_source.py")
COLUMNS = "id, name, amount, active, payload::text, tags::text, updated_at"

SPECIAL = [
    "tab\there",
    "new\nline and \r\n windows line",
    "back\\slash \\N \\t",
    'double "quotes", a comma',
    "single 'quotes'",
    "unicode: é ß 漢字 🎉",
    "",
    None,
    "NULL",
    '"',
    ",",
]


def record(id_: int, updated_at: str, **values) -> dict:
    return {"id": id_, "updated_at": f"2026-01-{updated_at}T00:00:00+00:00", **values}


@pytest.fixture
def source(tmp_path, monkeypatch):
    """Write the records the source will serve; the source's executable is protocol_source.py."""
    executable = tmp_path / "source-protocol-test"
    executable.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{SOURCE}" "$@"\n')
    executable.chmod(executable.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(embedded, "connector_executable", lambda connector: executable)
    records_file = tmp_path / "records.json"

    def serve(records: list[dict]) -> Path:
        records_file.write_text(json.dumps(records))
        return records_file

    return serve


def connection(records_file: Path, sync_mode: str, **config) -> Connection:
    return Connection(
        name="protocol_test",
        source=Source(
            name="protocol", connector="source-protocol-test", config={"records_file": str(records_file), **config}
        ),
        destination=PostgresDestination(name="warehouse", schema="raw", airflow_conn_id="warehouse"),
        streams=(Stream(name="items", sync_mode=sync_mode, cursor_field="updated_at", primary_key=("id",)),),
    )


def sync(conn: Connection, warehouse, **kwargs) -> dict:
    lines: list[str] = []
    result = sync_connection(conn, warehouse, log=lines.append, **kwargs)
    result["lines"] = lines
    return result


def rows(sql) -> list[tuple]:
    query = SQL("select {} from raw.items order by id, _airbyte_extracted_at").format(SQL(COLUMNS))  # a constant
    return sql(query)


def test_special_characters_nulls_and_json_survive_the_load(source, warehouse, sql):
    records = [
        record(
            i + 1,
            "01",
            name=value,
            amount=None if value is None else 1234567.125,
            active=None if value is None else i % 2 == 0,
            payload=None if value is None else {"text": value, "nested": {"list": [value, 1, None]}},
            tags=None if value is None else [value, "x"],
        )
        for i, value in enumerate(SPECIAL)
    ]
    records.append(record(99, "01", name="nul\x00char"))
    conn = connection(source(records), "incremental_deduped_history")

    result = sync(conn, warehouse)

    assert result["streams"]["items"]["records"] == len(records)
    assert result["streams"]["items"]["rows_in_table"] == len(records)
    got = {r[0]: r for r in rows(sql)}
    for i, value in enumerate(SPECIAL):
        _, name, amount, active, payload, tags, _ = got[i + 1]
        assert name == value, (i, name, value)
        if value is None:
            assert (amount, active, payload, tags) == (None, None, None, None)
        else:
            assert float(amount) == 1234567.125 and active == (i % 2 == 0)
            assert json.loads(payload) == {"text": value, "nested": {"list": [value, 1, None]}}
            assert json.loads(tags) == [value, "x"]
    assert got[99][1] == "nulchar", "Postgres text cannot hold NUL: it is dropped, the rest kept"
    # the table keeps the Destinations-V2 shape and the types PyAirbyte declares (as with its
    # pandas loader: its DDL renders timestamp-with-time-zone columns as plain `timestamp`)
    types = dict(
        sql(
            "select column_name, data_type from information_schema.columns where table_schema='raw' and table_name='items'"
        )
    )
    assert types == {
        "id": "bigint",
        "name": "character varying",
        "amount": "numeric",
        "active": "boolean",
        "payload": "json",
        "tags": "json",
        "updated_at": "timestamp without time zone",
        "_airbyte_raw_id": "character varying",
        "_airbyte_extracted_at": "timestamp without time zone",
        "_airbyte_meta": "json",
    }
    assert sql("select count(*) from raw.items where _airbyte_raw_id is null or _airbyte_meta::text <> '{}'") == [(0,)]


def test_merge_keeps_one_row_per_key_with_its_latest_version_and_carries_the_state(source, warehouse, sql):
    first = [record(1, "01", name="a"), record(2, "02", name="b v1"), record(3, "03", name="c")]
    conn = connection(source(first), "incremental_deduped_history")
    assert sync(conn, warehouse)["streams"]["items"]["records"] == 3
    state = sql("select state_json from raw._airbyte_state where stream_name = 'items'")
    assert json.loads(state[0][0])["stream"]["stream_state"] == {"updated_at": "2026-01-03T00:00:00+00:00"}

    # day 2: b changed, d is new and sent twice in the same sync (the later one wins)
    source(
        [
            *first[:1],
            record(2, "04", name="b v2"),
            first[2],
            record(4, "05", name="d old"),
            record(4, "05", name="d new"),
        ]
    )
    second = sync(conn, warehouse)
    # the state was carried: only records at or after the cursor (2026-01-03) were read
    assert second["streams"]["items"]["records"] == 4
    # the write path's own time (COPY to stage + merge) is reported, and is part of the stream's read
    figures = second["streams"]["items"]
    assert 0 < figures["load_seconds"] <= figures["seconds"], figures
    assert [(r[0], r[1]) for r in rows(sql)] == [(1, "a"), (2, "b v2"), (3, "c"), (4, "d new")]
    assert any("older versions replaced" in line for line in second["lines"])

    # a rerun of the same day re-reads the records at the cursor: no duplicate appears
    third = sync(conn, warehouse)
    assert third["streams"]["items"]["records"] == 2
    assert sql("select count(*), count(distinct id) from raw.items") == [(4, 4)]
    assert [(r[0], r[1]) for r in rows(sql)] == [(1, "a"), (2, "b v2"), (3, "c"), (4, "d new")]


def test_append_keeps_every_version_and_overwrite_replaces_the_table(source, warehouse, sql):
    first = [record(1, "01", name="a"), record(2, "02", name="b")]
    appended = connection(source(first), "incremental_append")
    sync(appended, warehouse)
    source([*first, record(3, "03", name="c")])
    result = sync(appended, warehouse)
    assert result["streams"]["items"]["write_strategy"] == "append"
    # the record at the cursor (b) is read again and appended, as append mode promises
    assert [(r[0], r[1]) for r in rows(sql)] == [(1, "a"), (2, "b"), (2, "b"), (3, "c")]

    overwritten = connection(source([record(7, "07", name="only")]), "full_refresh_overwrite")
    result = sync(overwritten, warehouse)
    assert result["streams"]["items"]["write_strategy"] == "replace"
    assert 0 < result["streams"]["items"]["load_seconds"] <= result["streams"]["items"]["seconds"]
    assert [(r[0], r[1]) for r in rows(sql)] == [(7, "only")]


def test_a_failure_mid_load_leaves_the_previous_table_and_state(source, warehouse, sql):
    first = [record(1, "01", name="a"), record(2, "02", name="b"), record(3, "03", name="c")]
    conn = connection(source(first), "incremental_deduped_history")
    sync(conn, warehouse)
    before = rows(sql)
    state_before = sql("select state_json from raw._airbyte_state")

    # day 2's merge deletes the old versions of 2 and 3, inserts some rows, then fails on id 4
    source([record(2, "04", name="b v2"), record(3, "04", name="c v2"), record(4, "05", name="d")])
    sql("""
        create function raw.fail_on_4() returns trigger language plpgsql as $$
        begin if new.id = 4 then raise exception 'injected failure on id 4'; end if; return new; end $$;
        create trigger fail_on_4 before insert on raw.items for each row execute function raw.fail_on_4();
    """)  # fmt: skip
    with pytest.raises(EmbeddedSyncError, match="injected failure on id 4"):
        sync(conn, warehouse)
    assert rows(sql) == before, "nothing of the failed load is visible"
    assert sql("select state_json from raw._airbyte_state") == state_before, "the cursor did not move"
    stage_tables = (
        "select table_name from information_schema.tables where table_schema = 'raw' and table_name like 'items\\_%'"
    )
    assert sql(stage_tables) == [], "no stage table is left behind"

    # the connector itself fails mid-read: nothing is loaded either
    sql("drop trigger fail_on_4 on raw.items")
    failing = connection(
        source([record(2, "04", name="b v2"), record(4, "05", name="d")]), "incremental_deduped_history", fail_after=1
    )
    with pytest.raises(EmbeddedSyncError):
        sync(failing, warehouse)
    assert rows(sql) == before

    # the next sync starts from the old cursor and loads the whole change
    source([record(2, "04", name="b v2"), record(3, "04", name="c v2"), record(4, "05", name="d")])
    result = sync(conn, warehouse)
    assert result["streams"]["items"]["records"] == 3
    assert [(r[0], r[1]) for r in rows(sql)] == [(1, "a"), (2, "b v2"), (3, "c v2"), (4, "d")]


def test_case13_a_value_its_column_cannot_hold_is_nulled_and_flagged_by_the_loader_and_the_sync_goes_on(
    source, warehouse, sql
):
    """Reliability case 13 at the loader: no SQL UPDATE, the flag comes from the write path."""
    sent = [
        record(1, "01", name="fine", amount=12.5, active=True, payload={"a": 1}),
        record(2, "01", name="bad number, boolean and json", amount="n/a", active="maybe", payload="{not json"),
        record(3, "01", name="too big for numeric(38, 9)", amount=1e30),
        record(4, "01", name="text that fits", amount=" -7.25e2 ", active="yes", payload='{"b": [1, 2]}'),
        {**record(5, "01", name="a whole float and an integer as text"), "id": 5.0, "amount": "3"},
        {**record(6, "01", name="an integer key that is not one"), "id": "six"},
    ]
    result = sync(connection(source(sent), "incremental_append"), warehouse)
    assert result["streams"]["items"]["records"] == 6
    assert any("amount='n/a' does not fit its column type" in line for line in result["lines"])
    got = sql(
        "select id, name, amount, active, payload::text, _airbyte_meta::jsonb -> 'changes' from raw.items"
        " order by id nulls last"
    )
    nulled = lambda *fields: [  # noqa: E731
        {"field": f, "change": "NULLED", "reason": "DESTINATION_TYPECAST_ERROR"} for f in fields
    ]
    assert got == [
        (1, "fine", 12.5, True, '{"a":1}', None),
        (2, "bad number, boolean and json", None, None, None, nulled("amount", "active", "payload")),
        (3, "too big for numeric(38, 9)", None, None, None, nulled("amount")),
        (4, "text that fits", -725.0, True, '{"b": [1, 2]}', None),
        (5, "a whole float and an integer as text", 3.0, None, None, None),
        (None, "an integer key that is not one", None, None, None, nulled("id")),
    ], got


def test_a_value_postgres_rejects_fails_the_copy_and_leaves_no_stage_table(source, warehouse, sql):
    conn = connection(source([record(1, "01", name="a")]), "incremental_deduped_history")
    sync(conn, warehouse)
    before = rows(sql)

    # date and time columns are not checked by the loader: Postgres refuses the whole COPY
    source([record(1, "02", name="a v2"), {**record(2, "02", name="b"), "updated_at": "not a time"}])
    with pytest.raises(EmbeddedSyncError, match="invalid input syntax for type timestamp"):
        sync(conn, warehouse)
    assert rows(sql) == before
    stage_tables = (
        "select table_name from information_schema.tables where table_schema = 'raw' and table_name like 'items\\_%'"
    )
    assert sql(stage_tables) == [], "the stage table of the failed COPY is dropped"


LEFT_STAGES = (
    "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
    " where n.nspname = 'raw' and c.relpersistence = 'u' and c.relkind = 'r'"
)


def test_more_streams_at_once_than_open_copies_all_land_whole(source, warehouse, sql):
    """Six streams read interleaved: at most four stage COPYs are open at once (StageCopy), so some
    are committed and paused while their stream goes on, then resumed into the same stage."""
    names = ["items"] + [f"items_{k}" for k in range(2, 7)]
    padding = "p" * 400  # ~3 MB of CSV per stream: each stage gets several chunks, in turns
    records = [record(i, "01", name=f"{i} {padding}") for i in range(1, 6001)]
    conn = Connection(
        name="protocol_test",
        source=Source(
            name="protocol",
            connector="source-protocol-test",
            config={"records_file": str(source(records)), "copies": len(names)},
        ),
        destination=PostgresDestination(name="warehouse", schema="raw", airflow_conn_id="warehouse"),
        streams=tuple(
            Stream(name=n, sync_mode="incremental_deduped_history", cursor_field="updated_at", primary_key=("id",))
            for n in names
        ),
    )
    result = sync(conn, warehouse)
    assert any("streams at once: the stage COPY fed least recently" in line for line in result["lines"])
    for name in names:
        assert result["streams"][name]["records"] == 6000
        query = SQL("select count(*), count(distinct id), min(id), max(id), sum(length(name)) from raw.{}")
        assert sql(query.format(Identifier(name))) == [(6000, 6000, 1, 6000, sum(len(r["name"]) for r in records))]
    assert sql(LEFT_STAGES) == [], "every stage is dropped after its merge"


def test_a_second_sync_of_the_same_streams_waits_for_the_first_then_drops_its_left_stages(source, warehouse, sql):
    """Each sync holds an advisory lock per stream for its whole run: a second sync of the same
    streams into the same schema waits (their merges would race and could duplicate keys), and
    once it holds them, every stage of its streams is a left-over it drops."""
    import time

    import psycopg2

    conn = connection(source([record(1, "01", name="a"), record(2, "01", name="b")]), "incremental_deduped_history")
    sync(conn, warehouse)
    sql("create unlogged table raw.items_01abc2xyz (id bigint)")  # the running sync's stage
    other = psycopg2.connect(
        host=warehouse.host, port=warehouse.port, user=warehouse.user,
        password=warehouse.password, dbname=warehouse.database,
    )  # fmt: skip
    try:  # another sync of raw.items is running (as a runner claims it)
        other.cursor().execute("select pg_advisory_lock(hashtext('embedded-sync:raw.items')::bigint)")
        thread, outcome = in_background(sync, conn, warehouse)
        waiting = "select count(*) from pg_locks where locktype = 'advisory' and not granted"
        deadline = time.monotonic() + 120
        while sql(waiting) != [(1,)]:
            assert time.monotonic() < deadline and thread.is_alive(), outcome
            time.sleep(0.2)
        time.sleep(1)
        assert thread.is_alive(), "the second sync did not wait"
        assert sql(LEFT_STAGES) == [("items_01abc2xyz",)], "the running sync's stage is left alone"
    finally:
        other.close()  # that sync ended: its claim goes with its session
    thread.join(120)
    lines = outcome["result"]["lines"]
    assert any("another sync of items into raw is running: waiting for it to end" in x for x in lines)
    assert any("dropped 1 stage table(s) an interrupted sync left: items_01abc2xyz" in x for x in lines)
    assert sql(LEFT_STAGES) == []
    assert sql("select count(*), count(distinct id) from raw.items") == [(2, 2)]


# -- reliability case 12: a sync killed mid-way, then resumed -----------------------------------------
def kill_the_runner_when(ready, seconds: float = 120.0) -> None:
    """Wait for `ready()`, then SIGKILL the embedded runner's process group (runner + connector):
    the worst kill, with no handler, no finally block and no chance to clean up."""
    import os
    import signal
    import time

    import psutil

    deadline = time.monotonic() + seconds
    while not ready():
        assert time.monotonic() < deadline, "the sync never reached the point to kill it at"
        time.sleep(0.1)
    runners = [
        p for p in psutil.Process().children(recursive=True) if "airbyte_runtime/__main__.py" in " ".join(p.cmdline())
    ]
    assert len(runners) == 1, runners
    os.killpg(runners[0].pid, signal.SIGKILL)


def in_background(fn, *args, **kwargs):
    import threading

    outcome: dict = {}

    def run():
        try:
            outcome["result"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_case12_a_sync_killed_mid_way_and_resumed_has_no_duplicate_key_and_no_state_past_unwritten_rows(
    source, warehouse, sql, tmp_path
):
    """Killed while reading, then killed while loading, then resumed: nothing of either kill is
    visible, the cursor stays put, and the resumed sync loads every change once."""
    day1 = [record(i, "01", name=f"{i} v1") for i in range(1, 6)]
    conn = connection(source(day1), "incremental_deduped_history")
    sync(conn, warehouse)
    before, state_before = rows(sql), sql("select state_json from raw._airbyte_state")

    # day 2: 2 and 3 changed, 6-9 are new
    day2 = [record(2, "02", name="2 v2"), record(3, "02", name="3 v2")] + [
        record(i, "03", name=f"{i} v1") for i in range(6, 10)
    ]
    source(day2)

    # 1. killed while reading: the source sends 2, 3 and 6, then a STATE with cursor 2026-01-03
    # for them, then hangs. A state saved now would make the resumed sync skip 2 and 3 (01-02).
    marker = tmp_path / "stalled"
    stalling = connection(source(day2), "incremental_deduped_history", stall_after=3, stall_marker=str(marker))
    thread, outcome = in_background(sync, stalling, warehouse)
    kill_the_runner_when(marker.exists)
    thread.join(60)
    assert isinstance(outcome.get("error"), EmbeddedSyncError), outcome
    assert rows(sql) == before, "nothing of the sync killed while reading is visible"
    assert sql("select state_json from raw._airbyte_state") == state_before, "the cursor did not move"

    # 2. killed while loading: the merge transaction hangs on inserting id 6, after deleting the
    # old versions of 2 and 3; the server ends the dead client's transaction without a commit
    sql("""
        create function raw.slow_on_6() returns trigger language plpgsql as $$
        begin if new.id = 6 then perform pg_sleep(3); end if; return new; end $$;
        create trigger slow_on_6 before insert on raw.items for each row execute function raw.slow_on_6();
    """)  # fmt: skip
    thread, outcome = in_background(sync, conn, warehouse)
    kill_the_runner_when(lambda: sql("select count(*) from pg_stat_activity where wait_event = 'PgSleep'")[0][0] > 0)
    thread.join(60)
    assert isinstance(outcome.get("error"), EmbeddedSyncError), outcome
    sql("drop trigger slow_on_6 on raw.items")  # waits for that backend to end
    assert rows(sql) == before, "nothing of the sync killed while loading is visible"
    assert sql("select state_json from raw._airbyte_state") == state_before, "the cursor did not move"
    assert len(sql(LEFT_STAGES)) == 1, "the killed merge's stage is still there (nothing could drop it)"

    # 3. resumed: the next run of the same day loads every change once
    result = sync(conn, warehouse)
    assert any("dropped 1 stage table(s) an interrupted sync left" in line for line in result["lines"])
    assert sql(LEFT_STAGES) == []
    assert result["streams"]["items"]["records"] == len(day2)
    assert sql("select count(*), count(distinct id) from raw.items") == [(9, 9)], "no duplicate primary key"
    assert [(r[0], r[1]) for r in rows(sql)] == [
        (1, "1 v1"), (2, "2 v2"), (3, "3 v2"), (4, "4 v1"), (5, "5 v1"),
        (6, "6 v1"), (7, "7 v1"), (8, "8 v1"), (9, "9 v1"),
    ]  # fmt: skip
    state = sql("select state_json from raw._airbyte_state where stream_name = 'items'")
    assert json.loads(state[0][0])["stream"]["stream_state"] == {"updated_at": "2026-01-03T00:00:00+00:00"}


def test_a_role_that_owns_its_schema_but_cannot_create_in_the_database_syncs(source, warehouse, sql):
    """As the warehouse_ingest role (include/sql/warehouse/V001__roles.sql): it owns raw, and may not
    create schemas. The runtime creates the schema and its state table only when they are missing."""
    import dataclasses
    import secrets

    role, password = f"ingest_like_{secrets.token_hex(4)}", secrets.token_hex(16)
    sql(SQL("create role {} login password %s").format(Identifier(role)), (password,))
    try:
        sql(SQL("revoke create on database {} from public").format(Identifier(warehouse.database)))
        sql(SQL("create schema raw authorization {}").format(Identifier(role)))
        as_role = dataclasses.replace(warehouse, user=role, password=password)
        conn = connection(source([record(1, "01", name="a")]), "incremental_deduped_history")
        assert sync(conn, as_role)["streams"]["items"]["rows_in_table"] == 1
        source([record(1, "02", name="a v2"), record(2, "02", name="b")])
        assert sync(conn, as_role)["streams"]["items"]["rows_in_table"] == 2
        assert [(r[0], r[1]) for r in rows(sql)] == [(1, "a v2"), (2, "b")]
        owners = sql("select distinct tableowner from pg_tables where schemaname = 'raw'")
        assert owners == [(role,)], "the raw table and the state table are the role's own"
    finally:
        sql(SQL("drop schema if exists raw cascade"))
        sql(SQL("drop owned by {}").format(Identifier(role)))
        sql(SQL("drop role {}").format(Identifier(role)))
