"""A model's task log shows that model's own dbt result (transform/node_log.py), from the event
the producer pushes and the real manifest."""

from __future__ import annotations

import json

from include.pipeline import settings
from include.pipeline.transform.node_log import result_lines, rows


def test_a_models_lines_name_its_relation_status_rows_timing_and_compiled_sql():
    manifest = json.loads(settings.DBT_MANIFEST.read_text())
    uid, node = next((u, n) for u, n in sorted(manifest["nodes"].items()) if n["resource_type"] == "model")
    event = {"status": "success", "start_time": "2026-01-05T10:42:04.100000", "finish_time": "2026-01-05T10:42:04.310000",
             "msg": "MERGE 21"}  # fmt: skip
    lines = result_lines(uid, event, settings.DBT_MANIFEST)
    relation = f"{node['schema']}.{node['alias']}"
    assert lines[0] == f"dbt {node['config']['materialized']} {relation}: success in 0.21 s [MERGE 21], 21 rows"
    assert "2026-01-05T10:42:04.1" in lines[1]
    assert (
        lines[2]
        == f"compiled SQL: target/compiled/{node['package_name']}/{node['original_file_path']} (in the dbt project)"
    )


def test_rows_come_from_dbts_adapter_message_only():
    assert [rows(m) for m in ("SELECT 365", "INSERT 0 5", "MERGE 21", "CREATE VIEW", "", None)] == [
        365,
        5,
        21,
        None,
        None,
        None,
    ]
