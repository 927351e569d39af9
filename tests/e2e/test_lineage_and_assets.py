"""After the session stack's `demo` run (tests/support/stack.py): its OpenLineage events, and the
Asset events Airflow recorded. No run of its own."""

from __future__ import annotations

import sqlite3

import pytest

from include.pipeline.ingest.declaration import load_connections
from include.pipeline.lineage.graph import read_events, runs
from include.pipeline.publish.tasks import marts
from tests.lineage.schema import FACETS_URL, problems
from tests.support import E2E_DATE

pytestmark = pytest.mark.e2e


def test_every_lineage_event_is_valid_and_the_outputs_cover_raw_every_mart_and_the_lake(stack):
    folder = stack.root / ".local" / "lineage"
    events = list(read_events(folder))
    assert events, f"no OpenLineage event in {folder}"
    invalid = {f"{e['job']['name']} {e.get('eventType')} {e['run']['runId']}": problems(e) for e in events}
    invalid = {k: v for k, v in invalid.items() if v}
    assert invalid == {}, f"events not valid against tests/lineage/spec: {invalid}"
    standard = {f["_schemaURL"] for f in _facets(events) if f.get("_schemaURL", "").startswith(FACETS_URL)}
    assert len(standard) >= 3, f"the events carry almost no standard facet to validate: {standard}"
    outputs = {
        (d["namespace"], d["name"]) for e in events if e.get("eventType") == "COMPLETE" for d in e.get("outputs") or []
    }
    names = {name for _, name in outputs}
    streams = [s.name for c in load_connections().connections if c.destination.type == "postgres" for s in c.streams]
    assert any(name.endswith(f".raw.{stream}") for name in names for stream in streams), sorted(names)
    for schema, relation in marts().values():
        assert any(name.endswith(f".{schema}.{relation}") for name in names), f"no event outputs mart {relation}"
        assert ("s3://lake", f"marts/{relation}/ds={E2E_DATE}") in outputs, f"no event outputs {relation}'s partition"
    assert not any("127.0.0.1" in namespace for namespace, _ in outputs), "a dataset named after a port"
    [run] = [r for (dag_id, _), r in runs(events).items() if dag_id == "ecommerce_daily"]
    assert {"source", "raw", "staging", "marts", "lake"} <= set(run.layers()), run.layers()


def _facets(events: list[dict]) -> list[dict]:
    found = []
    for e in events:
        found += [*(e["run"].get("facets") or {}).values(), *(e["job"].get("facets") or {}).values()]
        for d in [*(e.get("inputs") or []), *(e.get("outputs") or [])]:
            found += [*(d.get("facets") or {}).values()]
    return found


def test_the_demo_log_is_free_of_openlineage_warnings(stack):
    log = stack.demo_log(stack.first_run)
    assert "Model node connected to test" not in log
    assert "[openlineage/namespace] not found" not in log
    assert "To enable emitting Openlineage events" not in log


def test_publish_recorded_a_partitioned_event_per_mart_and_no_asset_is_named_after_a_port(stack):
    db = sqlite3.connect(stack.root / ".local" / "airflow" / "airflow.db")
    try:
        uris = [row[0] for row in db.execute("select uri from asset")]
        events = db.execute(
            "select a.uri, e.partition_key from asset_event e join asset a on a.id = e.asset_id"
        ).fetchall()
    finally:
        db.close()
    assert not [u for u in uris if "127.0.0.1" in u], uris
    for _, relation in marts().values():
        assert (f"s3://lake/marts/{relation}", E2E_DATE) in events, sorted(events)
