"""The configured catalog, the read groups and the stored state of a sync.

The configured catalog and state are what the connector's `read` gets; they are built here, the
way PyAirbyte builds them, so that a `read` can be started before PyAirbyte is loaded (early.py)
and compared with PyAirbyte's own. The stored state is read from <schema>._airbyte_state, the
table every sync so far wrote, so a connection's incremental state carries over.
"""

from __future__ import annotations

import json
import os
from typing import Any

# Sync mode -> (PyAirbyte write strategy, force full refresh)
MODES = {
    "incremental_deduped_history": ("merge", False),
    "incremental_append": ("append", False),
    "full_refresh_append": ("append", True),
    "full_refresh_overwrite": ("replace", True),
}


def read_groups(spec: dict) -> list[tuple[str, bool, list[str]]]:
    """(write strategy, force full refresh, stream names) of each `source.read` the sync makes, in
    order: PyAirbyte applies one write strategy per read.

    A full refresh (a reset of the ingest) replaces every table, but reads each stream that has a
    cursor in incremental mode from no state (`forget_stored_state` deletes it first): the
    connector reads everything all the same, and ends with a real cursor, so the next day's sync
    reads that day's files only. In full_refresh mode source-s3 ends with a state that holds no
    cursor, and the day after a full refresh re-read every file (2,460 records instead of 80)."""
    groups: dict[tuple[str, bool], list[str]] = {}
    for stream in spec["streams"]:
        strategy, full = MODES[stream["sync_mode"]]
        if spec.get("full_refresh"):
            strategy = "replace"
        groups.setdefault((strategy, full), []).append(stream["name"])
    return [(strategy, full, names) for (strategy, full), names in groups.items()]


def configured_catalog(spec: dict, catalog: dict, names: list[str], full_refresh: bool) -> dict:
    """The configured catalog PyAirbyte sends with `read` (`Source.get_configured_catalog`, then
    `CatalogProvider`, dumped without None): the discovered streams that are selected, in the
    catalog's order, incremental unless a full refresh the stream supports, each with the declared
    primary key and cursor (`set_primary_key`/`set_cursor_key`) or else the connector's own."""
    declared = {s["name"].lower(): s for s in spec["streams"]}
    selected = set(names)
    streams = []
    for stream in catalog.get("streams", []):
        if stream.get("name") not in selected:
            continue
        own = declared.get(stream["name"].lower(), {})
        modes = stream.get("supported_sync_modes") or []
        entry: dict[str, Any] = {
            "stream": stream,
            "sync_mode": "full_refresh" if full_refresh and "full_refresh" in modes else "incremental",
            "destination_sync_mode": "overwrite",
            # set to 1 when unset by PyAirbyte's CatalogProvider.validate_catalog
            "generation_id": 1,
            "minimum_generation_id": 1,
            "sync_id": 1,
        }
        cursor = [own["cursor_field"]] if own.get("cursor_field") else stream.get("default_cursor_field")
        primary_key = [list(own["primary_key"])] if own.get("primary_key") else stream.get("source_defined_primary_key")
        if cursor is not None:
            entry["cursor_field"] = cursor
        if primary_key is not None:
            entry["primary_key"] = primary_key
        streams.append(entry)
    return {"streams": streams}


def stored_state(spec: dict) -> list | None:
    """The state messages PyAirbyte hands the connector (`cache.get_state_provider`): those this
    source stored in <schema>._airbyte_state for tables of its streams' own names. [] when there
    is none yet; None when they cannot be read (then nothing is started early)."""
    import psycopg2

    wh = spec["warehouse"]
    try:
        conn = psycopg2.connect(
            host=wh["host"], port=wh["port"], user=wh["user"], dbname=wh["database"],
            password=os.environ.get("WAREHOUSE_PASSWORD", ""), connect_timeout=10,
        )  # fmt: skip
    except psycopg2.Error:
        return None
    from psycopg2 import sql

    table = sql.Identifier(spec["schema"], "_airbyte_state")
    try:
        with conn, conn.cursor() as cur:
            cur.execute("select to_regclass(%s)", [table.as_string(cur)])
            if cur.fetchone()[0] is None:
                return []
            query = sql.SQL("select state_json from {} where source_name = %s and table_name = stream_name")
            cur.execute(query.format(table), [spec["connector"]])
            return [json.loads(row[0]) for row in cur.fetchall()]
    except (psycopg2.Error, ValueError, TypeError):
        return None
    finally:
        conn.close()


def without_nulls(value: Any) -> Any:
    """`value` with every None member of an object dropped (a missing field and a null one mean the same)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def first_difference(ours: Any, theirs: Any, path: str = "") -> str:
    """Where two JSON values first differ, as ` at <path>` (` at streams[0].primary_key`), or ''."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        for key in sorted(ours.keys() | theirs.keys()):
            if ours.get(key) != theirs.get(key) or (key in ours) != (key in theirs):
                return first_difference(ours.get(key), theirs.get(key), f"{path}.{key}" if path else key)
    elif isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            if a != b:
                return first_difference(a, b, f"{path}[{index}]")
    return f" at {path}" if path else ""


def same_state(ours: list, theirs: Any) -> bool:
    """Whether two lists of state messages are the same, in any order, nulls aside."""
    if not isinstance(theirs, list):
        return False
    canonical = [[json.dumps(without_nulls(m), sort_keys=True) for m in side] for side in (ours, theirs)]
    return sorted(canonical[0]) == sorted(canonical[1])
