"""The lineage parts one by one: the setting that picks the transport, the JSON-lines transport
under concurrent writers, the dbt models' datasets, and the spec check the e2e test relies on."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from include.pipeline import assets, settings
from include.pipeline.lineage import config
from tests.lineage.schema import SPEC, problems


def test_the_default_keeps_events_under_local_lineage_and_one_setting_switches_or_disables_it(tmp_path):
    default = config.airflow_env(tmp_path, {}.get)
    transport = json.loads(default["AIRFLOW__OPENLINEAGE__TRANSPORT"])
    assert transport["type"].endswith("JsonLinesTransport") and transport["folder"] == str(tmp_path / "lineage")
    http = config.airflow_env(tmp_path, {"LINEAGE_TRANSPORT": '{"type": "http", "url": "http://127.0.0.1:5000"}'}.get)
    assert json.loads(http["AIRFLOW__OPENLINEAGE__TRANSPORT"]) == {"type": "http", "url": "http://127.0.0.1:5000"}
    off = config.airflow_env(tmp_path, {"LINEAGE_TRANSPORT": "off"}.get)
    assert off["AIRFLOW__OPENLINEAGE__DISABLED"] == "True" and "AIRFLOW__OPENLINEAGE__TRANSPORT" not in off
    with pytest.raises(ValueError, match="LINEAGE_TRANSPORT is not JSON"):
        config.airflow_env(tmp_path, {"LINEAGE_TRANSPORT": "http://marquez"}.get)
    with pytest.raises(ValueError, match="has no `type`"):
        config.airflow_env(tmp_path, {"LINEAGE_TRANSPORT": '{"url": "http://marquez"}'}.get)


def _emit_many(folder: str, writer: int, count: int) -> None:
    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
    from openlineage.client.uuid import generate_new_uuid

    from include.pipeline.lineage.transport import JsonLinesConfig, JsonLinesTransport

    transport = JsonLinesTransport(JsonLinesConfig(folder=folder))
    for n in range(count):
        transport.emit(
            RunEvent(
                eventType=RunState.COMPLETE, eventTime="2026-01-05T10:00:00+00:00",
                run=Run(runId=str(generate_new_uuid())), job=Job(namespace="test", name=f"w{writer}.{n}" + "x" * 20_000),
                producer="https://example.com/test",
            )
        )  # fmt: skip


def test_events_from_parallel_processes_stay_whole_lines(tmp_path):
    """Tasks run in parallel processes; a 20 kB line is far above what one write() keeps whole."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_emit_many, args=(str(tmp_path), w, 60)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    lines = (tmp_path / "2026-01-05.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]  # raises on an interleaved line
    assert len(events) == 180 and all(problems(e) == [] for e in events)


def test_each_dbt_model_writes_its_relation_and_staging_reads_the_raw_tables_the_ingest_writes():
    """The names meet: a staging model's input is the dataset an ingest task outputs."""
    from include.pipeline.ingest.declaration import load_connections
    from include.pipeline.lineage.dbt import NAMESPACE, node_lineage
    from include.pipeline.lineage.extractors import datasets

    manifest = json.loads(settings.DBT_MANIFEST.read_text())
    models = {uid: n for uid, n in manifest["nodes"].items() if n["resource_type"] in ("model", "snapshot")}
    assert models
    raw = {
        (d.namespace, d.name) for c in load_connections().connections for d in datasets(assets.connection_outputs(c))
    }
    read_from_raw = set()
    for uid, node in models.items():
        lineage = node_lineage(uid, str(settings.DBT_MANIFEST))
        [out] = lineage.outputs
        assert (out.namespace, out.name) == (NAMESPACE, f"{node['database']}.{node['schema']}.{node['alias']}")
        assert len(lineage.inputs) == len([p for p in node["depends_on"]["nodes"] if not p.startswith("macro.")])
        read_from_raw |= {(d.namespace, d.name) for d in lineage.inputs} & raw
    assert read_from_raw, f"no model reads a raw table the ingest writes ({sorted(raw)})"


def test_the_spec_check_names_what_is_wrong():
    """The vendored schemas judge the event and its standard facets; a custom facet is held to the
    BaseFacet shape only; a standard facet of a version not vendored is named, not waved through."""
    facets = "https://openlineage.io/spec/facets/"
    good = {
        "eventType": "COMPLETE", "eventTime": "2026-01-05T10:00:00Z", "producer": "https://x",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": "019b95c0-d000-785a-b16b-5e1b1f1e0000", "facets": {}},
        "job": {"namespace": "n", "name": "j", "facets": {"ours": {"_producer": "https://x", "_schemaURL": "https://y", "a": 1}}},
        "outputs": [{"namespace": "s3://lake", "name": "marts/orders/ds=2026-01-05", "facets": {}}],
    }  # fmt: skip
    assert problems(good) == []
    bad = json.loads(json.dumps(good))
    bad["eventType"], bad["run"]["runId"], bad["eventTime"] = "DONE", "run-1", "2026-01-05"
    bad["run"]["facets"]["nominalTime"] = {
        "_producer": "https://x", "_schemaURL": f"{facets}1-0-1/NominalTimeRunFacet.json#/$defs/NominalTimeRunFacet",
    }  # fmt: skip
    bad["job"]["facets"]["ours"].pop("_producer")
    bad["job"]["facets"]["sql"] = {
        "_producer": "https://x", "_schemaURL": f"{facets}0-9-0/SQLJobFacet.json#/$defs/SQLJobFacet", "query": "q",
    }  # fmt: skip
    bad["outputs"][0]["facets"]["schema"] = {
        "_producer": "https://x", "_schemaURL": f"{facets}1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
        "fields": [{"type": "int"}],
    }  # fmt: skip
    found = problems(bad)
    assert found[:4] == [
        "$.eventTime: '2026-01-05' is not a 'date-time'",
        "$.eventType: 'DONE' is not one of ['START', 'RUNNING', 'COMPLETE', 'ABORT', 'FAIL', 'OTHER']",
        "$.job.facets.ours: '_producer' is a required property",
        "$.run.runId: 'run-1' is not a 'uuid'",
    ]  # fmt: skip
    assert found[4:6] == [
        "$.run.facets.nominalTime: 'nominalStartTime' is a required property",
        f"$.job.facets.sql: {facets}0-9-0/SQLJobFacet.json#/$defs/SQLJobFacet is not among the vendored schemas in "
        f"{SPEC / 'facets'} (renew them, see README)",
    ]
    assert found[6:] == ["$.outputs[0].facets.schema.fields[0]: 'name' is a required property"]


def test_the_lineage_page_groups_a_run_by_layer():
    from include.pipeline.lineage.graph import runs

    facets = {"airflow": {"dagRun": {"dag_id": "d", "run_id": "r1"}}}
    events = [
        {"eventType": "COMPLETE", "run": {"facets": facets}, "job": {"name": "d.ingest"},
         "inputs": [{"namespace": "s3://shop-exports", "name": "users"}],
         "outputs": [{"namespace": "postgres://warehouse:5432", "name": "warehouse.raw.users"}]},
        {"eventType": "COMPLETE", "run": {"facets": facets}, "job": {"name": "d.publish.orders"},
         "inputs": [{"namespace": "postgres://warehouse:5432", "name": "warehouse.marts.orders"}],
         "outputs": [{"namespace": "s3://lake", "name": "marts/orders/ds=2026-01-05"}]},
        {"eventType": "START", "run": {"facets": facets}, "job": {"name": "d.ignored"},
         "outputs": [{"namespace": "s3://lake", "name": "marts/x/ds=2026-01-05"}]},
    ]  # fmt: skip
    run = runs(events)[("d", "r1")]
    assert list(run.layers()) == ["source", "raw", "marts", "lake"]
    assert '"s3://lake/marts/orders/ds=2026-01-05"' in run.dot()
    assert "marts/x" not in run.dot()


def test_the_dashboard_page_draws_the_run_from_the_events_folder(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setattr(settings, "LOCAL_DIR", tmp_path)
    page = str(Path(settings.REPO_ROOT) / "dashboard" / "pages" / "lineage.py")
    empty = AppTest.from_file(page, default_timeout=60).run()
    assert "No lineage events" in empty.info[0].value
    (tmp_path / "lineage").mkdir()
    event = {
        "eventType": "COMPLETE", "run": {"facets": {"airflow": {"dagRun": {"dag_id": "d", "run_id": "r1"}}}},
        "job": {"name": "d.publish.orders"},
        "inputs": [{"namespace": "postgres://warehouse:5432", "name": "warehouse.marts.orders"}],
        "outputs": [{"namespace": "s3://lake", "name": "marts/orders/ds=2026-01-05"}],
    }  # fmt: skip
    (tmp_path / "lineage" / "2026-01-05.jsonl").write_text(json.dumps(event) + "\n")
    page_run = AppTest.from_file(page, default_timeout=60).run()
    assert not page_run.exception
    text = " ".join(m.value for m in page_run.markdown)
    assert "**marts** (1)" in text and "**lake** (1)" in text, text


def test_a_publish_names_its_lake_partition_and_a_skipped_one_nothing():
    """A `publish.<mart>` that kept a past day's partition (skipped: publish/past_days.py) wrote
    nothing: its COMPLETE event must not claim the partition as an output."""
    from types import SimpleNamespace

    from airflow.sdk import DAG

    from include.pipeline import assets
    from include.pipeline.lineage.extractors import TaskExtractor
    from include.pipeline.publish.tasks import publish_mart

    with DAG("lineage_probe", schedule=None):
        task = publish_mart.override(task_id="publish.orders", outlets=[assets.mart("orders")])("orders").operator
    context = {"ds": "2026-01-04"}
    done = TaskExtractor(task).extract_on_complete(
        SimpleNamespace(state="success", get_template_context=lambda: context)
    )
    assert "marts/orders/ds=2026-01-04" in [d.name for d in done.outputs]
    kept = TaskExtractor(task).extract_on_complete(
        SimpleNamespace(state="skipped", get_template_context=lambda: context)
    )
    assert kept.outputs == [] and kept.inputs == []
