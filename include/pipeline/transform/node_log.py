"""What a dbt model's own task log says about it, in watcher mode.

One `dbt build` runs in the producer task, so dbt's own lines for a model are in the producer's
log. Each model's task gets that model's result from the producer's XCom (node_results.py:
status, start and end times, dbt's message: `MERGE 21`, `SELECT 365`, `CREATE VIEW`) and writes it
as dbt would, with what the manifest says about the node: its relation, materialization and the
path of its compiled SQL (relative to the dbt project).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from pathlib import Path
from typing import Any

_ROWS = re.compile(r"^(?:INSERT \d+|[A-Z]+) (\d+)$")


@functools.lru_cache(maxsize=2)
def _nodes(manifest_path: str) -> dict[str, dict]:
    return json.loads(Path(manifest_path).read_text()).get("nodes", {})


def _seconds(event: dict) -> float | None:
    try:
        start = dt.datetime.fromisoformat(str(event["start_time"]))
        end = dt.datetime.fromisoformat(str(event["finish_time"]))
    except (KeyError, TypeError, ValueError):
        return None
    return (end - start).total_seconds()


def rows(message: str | None) -> int | None:
    """The rows of dbt's adapter message (`MERGE 21`, `INSERT 0 5`, `SELECT 365`); None for DDL."""
    found = _ROWS.match((message or "").strip())
    return int(found.group(1)) if found else None


def result_lines(unique_id: str, event: dict[str, Any], manifest_path: str | Path) -> list[str]:
    """The lines a model's task logs once dbt finished it."""
    node = _nodes(str(manifest_path)).get(unique_id, {})
    relation = f"{node.get('schema', '?')}.{node.get('alias') or node.get('name') or unique_id}"
    kind = (node.get("config") or {}).get("materialized", node.get("resource_type", "node"))
    seconds = _seconds(event)
    timing = f" in {seconds:.2f} s" if seconds is not None else ""
    message = event.get("msg") or ""
    counted = rows(message)
    lines = [
        f"dbt {kind} {relation}: {event.get('status')}{timing}"
        + (f" [{message}]" if message else "")
        + (f", {counted} rows" if counted is not None else ""),
        f"dbt started {event.get('start_time')}, finished {event.get('finish_time')}",
    ]
    if node.get("original_file_path"):
        package = unique_id.split(".")[1] if unique_id.count(".") >= 2 else node.get("package_name", "")
        lines.append(f"compiled SQL: target/compiled/{package}/{node['original_file_path']} (in the dbt project)")
    return lines
