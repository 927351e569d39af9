"""Run one declared connection with PyAirbyte, inside the embedded Airbyte runtime (.venv-airbyte).

This file is executed as a script by that venv's interpreter, never imported by Airflow: it may
import only the standard library and PyAirbyte. Input: a JSON spec on stdin (see
include/pipeline/ingest/embedded.py); the warehouse password comes in WAREHOUSE_PASSWORD, never
on the command line. Output: progress lines, then one line `RESULT <json>` with per-stream figures.

Tables are written in the Destinations-V2 shape (_airbyte_raw_id, _airbyte_extracted_at,
_airbyte_meta), which is also what the Airbyte platform's Postgres destination writes.
"""

from __future__ import annotations

import json
import os
import sys
import time

# Sync mode -> (PyAirbyte write strategy, force full refresh)
MODES = {
    "incremental_deduped_history": ("merge", False),
    "incremental_append": ("append", False),
    "full_refresh_append": ("append", True),
    "full_refresh_overwrite": ("replace", True),
}


def log(message: str) -> None:
    print(f"[embedded-airbyte] {message}", flush=True)


def main() -> int:
    spec = json.load(sys.stdin)
    os.environ.setdefault("AIRBYTE_OFFLINE_MODE", "1")  # the connector registry is unreachable
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("NO_LIVE_PROGRESS", "1")

    import airbyte as ab
    from airbyte.caches import PostgresCache

    wh = spec["warehouse"]
    cache = PostgresCache(
        host=wh["host"],
        port=wh["port"],
        username=wh["user"],
        password=os.environ["WAREHOUSE_PASSWORD"],
        database=wh["database"],
        schema_name=spec["schema"],
        **({"cache_dir": spec["work_dir"]} if spec.get("work_dir") else {}),
    )
    streams = spec["streams"]
    source = ab.get_source(
        spec["connector"],
        config=spec["config"],
        local_executable=spec["executable"],
        streams=[s["name"] for s in streams],
        install_if_missing=False,
    )
    for stream in streams:
        if stream.get("cursor_field"):
            source.set_cursor_key(stream["name"], stream["cursor_field"])
        if stream.get("primary_key"):
            source.set_primary_key(stream["name"], list(stream["primary_key"]))

    # One read per (write strategy, refresh) group: PyAirbyte applies one strategy per read.
    groups: dict[tuple[str, bool], list[str]] = {}
    for stream in streams:
        strategy, full = MODES[stream["sync_mode"]]
        if spec.get("full_refresh"):
            strategy, full = ("replace", True)
        groups.setdefault((strategy, full), []).append(stream["name"])

    figures: dict[str, dict] = {}
    for (strategy, full), names in groups.items():
        started = time.monotonic()
        log(f"reading {', '.join(names)} (write strategy {strategy}, full refresh {full})")
        result = source.read(cache=cache, streams=names, write_strategy=strategy, force_full_refresh=full)
        tracker = getattr(result, "_progress_tracker", None)
        counts = dict(getattr(tracker, "stream_read_counts", {}) or {})
        seconds = round(time.monotonic() - started, 3)
        for name in names:
            figures[name] = {
                "records": int(counts.get(name, 0)),
                "table": f"{spec['schema']}.{name}",
                "write_strategy": strategy,
                "seconds": seconds,
            }
            log(f"stream {name}: {figures[name]['records']} records -> {spec['schema']}.{name}")

    with cache.get_sql_engine().connect() as conn:
        from sqlalchemy import text

        for name, fig in figures.items():
            fig["rows_in_table"] = conn.execute(text(f'select count(*) from "{spec["schema"]}"."{name}"')).scalar()

    print("RESULT " + json.dumps({"connection": spec["connection"], "streams": figures}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
