"""One read for two destinations, from Airflow's side: which connection reads for which, and the
lake task that finds its part already done.

A warehouse connection (`type: postgres`) reads for a lake connection (`type: s3`) when both have
the same source, the same streams with the same cursor each, and are both incremental or both full
refresh; the warehouse's streams must also make one read (one write strategy). `shared_readers`
pairs them from the declaration, so a pair of your own gets it too; a connection alone is
unchanged. With the embedded engine, the warehouse's sync then gets the lake's part in its spec
(lake_sync.py `lake_part`: the lake's S3 settings and keys, on the runtime's stdin) and feeds
both from one connector read when their stored states are equal
(include/airbyte_runtime/shared_lake.py). The DAG runs the lake's task after the warehouse's
(trigger rule all_done): when the warehouse's result (its XCom, this run) says it wrote the lake's
part and the lake's saved state is the one it reports, the lake task reports those figures and
reads nothing (lake_sync.py `result_from_reader`); otherwise it reads on its own, as before. The
platform engine (an Airbyte server) syncs each connection as before, one after the other. Imports the declaration only: the DAG uses it.
"""

from __future__ import annotations

from include.pipeline.ingest.declaration import Connection, IngestionConfig


def _incremental(connection: Connection) -> set[bool]:
    return {s.sync_mode.startswith("incremental") for s in connection.streams}


def reads_for(warehouse: Connection, lake: Connection) -> bool:
    """Whether `warehouse`'s read can feed `lake` too (same source, streams, cursors, kind of read)."""
    if warehouse.destination.type != "postgres" or lake.destination.type != "s3":
        return False
    if warehouse.source.name != lake.source.name:
        return False
    cursors = {s.name: s.cursor_field for s in warehouse.streams}
    if cursors != {s.name: s.cursor_field for s in lake.streams} or len(cursors) != len(warehouse.streams):
        return False
    kinds = _incremental(warehouse)
    if len(kinds) != 1 or kinds != _incremental(lake):
        return False
    return len({s.sync_mode for s in warehouse.streams}) == 1  # one write strategy: one read


def shared_readers(config: IngestionConfig) -> dict[str, str]:
    """{lake connection: the warehouse connection whose read feeds it}: each lake connection read
    by the first warehouse connection that `reads_for` it, each warehouse reading for one lake."""
    readers: dict[str, str] = {}
    for lake in config.connections:
        for warehouse in config.connections:
            if warehouse.name not in readers.values() and reads_for(warehouse, lake):
                readers[lake.name] = warehouse.name
                break
    return readers


def lake_read_by(config: IngestionConfig, warehouse_name: str) -> Connection | None:
    """The lake connection `warehouse_name`'s read also feeds, if any."""
    for lake, reader in shared_readers(config).items():
        if reader == warehouse_name:
            return config.connection(lake)
    return None


__all__ = ["lake_read_by", "reads_for", "shared_readers"]
