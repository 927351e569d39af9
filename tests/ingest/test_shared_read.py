"""One read for two destinations (include/pipeline/ingest/shared_read.py, include/airbyte_runtime/
shared_lake.py): the warehouse connection's sync feeds the lake connection it is paired with,
against a real Postgres and a real S3, compared with two separate reads of the same files."""

# ruff: noqa: S608 - the queries name schemas and tables this test made
from __future__ import annotations

import http.client
import io
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pyarrow.parquet as pq
import pytest

from include.airbyte_runtime import lake as lake_destination
from include.airbyte_runtime.shared_lake import normalized
from include.pipeline import settings
from include.pipeline.ingest.declaration import load_connections
from include.pipeline.ingest.embedded import sync_connection
from include.pipeline.ingest.embedded_sync import run_embedded, shop_settings
from include.pipeline.ingest.lake_sync import lake_part, sync_to_lake
from include.pipeline.ingest.shared_read import lake_read_by, shared_readers
from include.simulator.exports import export_day
from include.simulator.shop import ShopSettings
from tests.support.declarations import RETURNS_CONNECTION, declaration, edited, with_source, write
from tests.support.postgres import new_database, query

pytestmark = pytest.mark.integration
IGNORED = ("_airbyte_raw_id", "_airbyte_extracted_at", "_airbyte_meta")  # new on every read


@pytest.fixture
def pair(s3_server, exports_env, tmp_path, monkeypatch):
    """The shipped declaration's paired connections (warehouse, lake), reading a shop bucket of
    their own (day 0's export) and writing a lake bucket of their own; `monkeypatch`ed as the
    declaration the tasks load."""
    shipped = load_connections()
    lake_name, reader = next(iter(shared_readers(shipped).items()))
    source = shipped.connection(reader).source
    shop = ShopSettings(
        bucket=f"t-{uuid.uuid4().hex[:10]}", customers=60, orders=80, format=shop_settings(source).format
    )
    export_day(s3_server.client(), shop, "2026-01-01", log=lambda _: None)
    text = edited(declaration(), (f"      bucket: {source.config['bucket']}\n", f"      bucket: {shop.bucket}\n"),
                  ("    bucket: lake\n", f"    bucket: lake-{uuid.uuid4().hex[:8]}\n"))  # fmt: skip
    monkeypatch.setattr(settings, "CONNECTIONS_FILE", write(tmp_path, text))
    config = load_connections()
    return config.connection(reader), config.connection(lake_name), shop


def lake_twin(lake, bucket: str):
    """`lake` writing into `bucket` instead (the separate reads' lake)."""
    return lake.model_copy(update={"destination": lake.destination.model_copy(update={"bucket": bucket})})


def raw_rows(warehouse, connection) -> dict[str, list[str]]:
    rows = {}
    for stream in connection.streams:
        drop = " - ".join(f"'{c}'" for c in IGNORED)
        found = query(
            warehouse, f"select (to_jsonb(t) - {drop})::text from {connection.destination.schema}.{stream.name} t"
        )
        rows[stream.name] = sorted(r[0] for r in found)
    return rows


def lake_records(client, lake) -> dict[str, list[str]]:
    """Every record of every Parquet part of each stream, without the columns new on every read."""
    s3 = lake.destination.s3
    records = {}
    for stream in lake.streams:
        rows = []
        for obj in client.list_objects(s3.bucket, prefix=f"{s3.path_prefix}/{stream.name}/", recursive=True):
            response = client.get_object(s3.bucket, obj.object_name)
            try:
                table = pq.read_table(io.BytesIO(response.read()))
            finally:
                response.close()
                response.release_conn()
            for row in table.drop_columns(list(IGNORED)).to_pylist():
                rows.append(json.dumps(row, sort_keys=True, default=str))
        records[stream.name] = sorted(rows)
    return records


def warehouse_states(warehouse, connection) -> list[dict]:
    rows = query(warehouse, f"select state_json from {connection.destination.schema}._airbyte_state")
    return [json.loads(r[0]) for r in rows]


def lake_state(client, lake) -> list | None:
    return lake_destination.load_state(client, lake.destination.s3, lake.name)


def counts(result: dict) -> dict[str, int]:
    return {name: s["records"] for name, s in result["streams"].items()}


def test_one_read_lands_what_two_reads_land_and_the_next_day_reads_only_the_new_files(pair, postgres_server, s3_server):
    warehouse_conn, lake, shop = pair
    client = s3_server.client()
    separate_db, shared_db = new_database(postgres_server), new_database(postgres_server)
    separate_lake = lake_twin(lake, f"lake-{uuid.uuid4().hex[:8]}")
    quiet = lambda _: None  # noqa: E731

    for day in ("2026-01-01", "2026-01-02"):
        if day != "2026-01-01":
            export_day(client, shop, day, log=quiet)
        # two reads, as before: the warehouse's sync alone, then the lake's
        alone = sync_connection(warehouse_conn, separate_db, log=quiet)
        assert "lake" not in alone
        own = sync_to_lake(separate_lake, log=quiet)
        # one read: the warehouse's sync fed the lake's part, and the lake's task read nothing
        lines: list[str] = []
        shared = sync_connection(warehouse_conn, shared_db, log=lines.append, lake=lake_part(lake))
        assert any(f"one read for two destinations: {lake.name}" in line for line in lines), lines
        assert counts(shared) == counts(alone)
        task_lines: list[str] = []
        reported = run_embedded(lake.name, None, log=task_lines.append, pull={warehouse_conn.name: shared}.get)
        assert reported["read_by"] == warehouse_conn.name
        assert any(f"read by {warehouse_conn.name}'s sync in this run" in line for line in task_lines), task_lines
        assert not any("embedded engine:" in line for line in task_lines), "the lake's task started no read"
        assert counts(reported) == counts(own)
        assert set(reported["streams"]) == {s.name for s in lake.streams}

        assert raw_rows(shared_db, warehouse_conn) == raw_rows(separate_db, warehouse_conn), day
        assert lake_records(client, lake) == lake_records(client, separate_lake), day
        states = normalized(warehouse_states(shared_db, warehouse_conn))
        assert states and states == normalized(warehouse_states(separate_db, warehouse_conn))
        assert normalized(lake_state(client, lake)) == normalized(lake_state(client, separate_lake)) == states
        if day == "2026-01-01":
            first = counts(shared)
            assert all(first.values())
    # day 2 read that day's files only: fewer records than day 0's whole history, the same as alone
    assert sum(counts(shared).values()) < sum(first.values())


def test_states_that_differ_make_two_reads_and_each_lands_everything(pair, warehouse, s3_server):
    warehouse_conn, lake, _ = pair
    client = s3_server.client()
    first = sync_connection(warehouse_conn, warehouse, log=lambda _: None, lake=lake_part(lake))
    assert "streams" in first["lake"]
    # the lake's state is lost (its own reset): the two states differ, the read is not shared
    client.remove_object(lake.destination.s3.bucket, lake_destination.state_key(lake.destination.s3, lake.name))
    lines: list[str] = []
    second = sync_connection(warehouse_conn, warehouse, log=lines.append, lake=lake_part(lake))
    assert "lake" not in second
    assert any(f"{lake.name} reads on its own: its stored state differs" in line for line in lines), lines
    assert all(n == 0 for n in counts(second).values()), "the warehouse read from its own state"
    task_lines: list[str] = []
    own = run_embedded(lake.name, None, log=task_lines.append, pull={warehouse_conn.name: second}.get)
    assert "read_by" not in own and counts(own) == counts(first["lake"])
    assert any("did not write" in line for line in task_lines), task_lines
    for stream in warehouse_conn.streams:
        assert query(warehouse, f"select count(*) = count(distinct id) from raw.{stream.name}") == [(True,)]


class RefusingProxy(ThreadingHTTPServer):
    """An S3 endpoint in front of the real one that refuses every object upload (PUT) under
    `refused`: the lake's writes fail, its reads go through (the requests pass on as signed)."""

    def __init__(self, upstream: str, refused: str) -> None:
        self.upstream, self.refused = urlsplit(upstream).netloc, refused

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.command == "PUT" and self.refused_path():
                    error = b"<Error><Code>AccessDenied</Code><Message>refused by the test</Message></Error>"
                    self.send_response(403)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(error)))
                    self.end_headers()
                    self.wfile.write(error)
                    return
                conn = http.client.HTTPConnection(server.upstream, timeout=60)
                conn.request(self.command, self.path, body=body or None, headers=dict(self.headers))
                response = conn.getresponse()
                data = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            def refused_path(self) -> bool:
                return self.path.split("?")[0].startswith(server.refused)

            do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _forward

        server = self
        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


def test_a_lake_failing_after_the_warehouse_committed_fails_only_the_lake_then_its_own_read_lands_all(
    pair, warehouse, s3_server
):
    warehouse_conn, lake, _ = pair
    s3 = lake.destination.s3.resolved()
    proxy = RefusingProxy(s3.endpoint, f"/{s3.bucket}/{s3.path_prefix}/")
    try:
        part = lake_part(lake)
        part["s3"]["endpoint"] = f"http://127.0.0.1:{proxy.server_address[1]}"
        lines: list[str] = []
        result = sync_connection(warehouse_conn, warehouse, log=lines.append, lake=part)
    finally:
        proxy.shutdown()
    assert "AccessDenied" in result["lake"]["failed"], result["lake"]
    assert any("the warehouse goes on" in line for line in lines), lines
    # the warehouse committed its rows and its state
    assert all(n > 0 for n in counts(result).values())
    for name, figures in result["streams"].items():
        assert query(warehouse, f"select count(*) from raw.{name}") == [(figures["rows_in_table"],)]
    assert warehouse_states(warehouse, warehouse_conn)
    client = s3_server.client()
    assert lake_state(client, lake) is None, "the lake's state did not move"
    # the lake's task reads on its own, from its own state: every record
    task_lines: list[str] = []
    own = run_embedded(lake.name, None, log=task_lines.append, pull={warehouse_conn.name: result}.get)
    assert any("could not write" in line for line in task_lines), task_lines
    assert counts(own) == counts(result)
    records = lake_records(client, lake)
    assert {name: len(rows) for name, rows in records.items()} == counts(result)


def test_pairing_comes_from_the_declaration_and_leaves_other_connections_alone(tmp_path):
    """The shipped pair is paired; a third connection of another source is not; a lake connection
    whose cursor differs from the warehouse's reads on its own."""
    from include.pipeline.ingest.declaration import load_connections as load

    shipped = load()
    readers = shared_readers(shipped)
    lakes = [c.name for c in shipped.connections if c.destination.type == "s3"]
    warehouses = [c.name for c in shipped.connections if c.destination.type == "postgres"]
    assert list(readers) == lakes and list(readers.values()) == warehouses[:1]

    third = write(tmp_path, with_source(declaration()))
    config = load(third)
    assert shared_readers(config) == readers, "the returns connection reads for no lake"
    other = RETURNS_CONNECTION.split("name: ")[1].split("\n")[0]
    assert lake_read_by(config, other) is None
    assert lake_read_by(config, warehouses[0]).name == lakes[0]

    lake = config.connection(lakes[0])
    moved = lake.model_copy(update={"streams": (lake.streams[0].model_copy(update={"cursor_field": "id"}),
                                                *lake.streams[1:])})  # fmt: skip
    changed = config.model_copy(update={"connections": tuple(moved if c.name == lake.name else c
                                                             for c in config.connections)})  # fmt: skip
    assert shared_readers(changed) == {}, "another cursor: two reads"


class _TaskInstance:
    """What the lake task asks of its own task instance: Airflow's `get_task_states`, answering in the
    execution API's shape ({run_id: {task_id: state}}) from the states given."""

    dag_id, run_id = "ecommerce_daily", "scheduled__2026-01-02T00:00:00+00:00"

    def __init__(self, states: dict[str, str]) -> None:
        self.states, self.asked = states, []

    def get_task_states(self, dag_id, task_ids, run_ids):  # noqa: ANN001, ANN201
        self.asked.append((dag_id, tuple(task_ids), tuple(run_ids)))
        return {self.run_id: {t: self.states[t] for t in task_ids if t in self.states}}


@pytest.mark.parametrize(
    ("reader_state", "stops"),
    [("upstream_failed", True), ("skipped", True), ("failed", False), ("success", False)],
)
def test_a_lake_task_reads_nothing_when_its_reader_never_ran(reader_state, stops):
    """all_done lets the lake read after its reader's own failure, not after the export's."""
    from include.pipeline.ingest.connection_sync import reader_not_run

    readers = shared_readers(load_connections())
    assert readers, "the declaration pairs no lake connection with a reader"
    lake, reader = next(iter(readers.items()))
    ti = _TaskInstance({f"ingest.{reader}": reader_state})
    why = reader_not_run({"ti": ti}, f"ingest.{lake}", lake)
    assert ti.asked == [(ti.dag_id, (f"ingest.{reader}",), (ti.run_id,))]
    assert bool(why) is stops
    if stops:
        assert reader in why and reader_state in why
    assert reader_not_run({"ti": _TaskInstance({})}, f"ingest.{reader}", reader) is None  # a reader itself
