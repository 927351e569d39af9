"""Reliability case 14 through a DAG run: a contracted mart's column type changes.

The day is run again on a copy of the session stack with a dbt project whose `products` mart
returns text for a numeric column its contract declares. dbt fails the model on its contract; in
Airflow that mart's tasks fail, `publish.products` is upstream_failed and its committed lake
partition stays as it was, and so do the marts built from it or tested against it (the shop's
`orders` has a relationships test to `products`, which dbt skips); every other mart is published
again; the failed build's run_results reach the lake (publish_artifacts runs whatever the
transform did).
"""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest

from include.pipeline import settings
from include.pipeline.publish import lake
from include.pipeline.publish.tasks import marts
from tests.e2e.test_daily_dag import s3_client
from tests.support import E2E_DATE

pytestmark = pytest.mark.e2e

BROKEN = "products"  # a mart with an enforced contract (models/marts/_marts__models.yml)


def task_states(stack) -> dict[str, str]:
    db = sqlite3.connect(stack.root / ".local" / "airflow" / "airflow.db")
    try:
        return dict(
            db.execute(
                "select ti.task_id, ti.state from task_instance ti join dag_run dr on dr.run_id = ti.run_id"
                " and dr.dag_id = ti.dag_id where dr.dag_id = 'ecommerce_daily' and date(dr.logical_date) = ?",
                (E2E_DATE,),
            ).fetchall()
        )
    finally:
        db.close()


def blocked_marts(manifest: dict, broken: str, marts: set[str]) -> set[str]:
    """The marts a failed `broken` model keeps out of the lake: itself, the models built from it,
    and those with a test that reads it (a `relationships` test to it is one of that mart's tests,
    and dbt skips it)."""
    nodes = manifest["nodes"]
    down, todo = {broken}, [broken]
    while todo:
        for child in manifest["child_map"].get(todo.pop(), []):
            if child.startswith("model.") and child not in down:
                down.add(child)
                todo.append(child)
    tested = {
        n["attached_node"]
        for n in nodes.values()
        if n["resource_type"] == "test" and n.get("attached_node") and set(n["depends_on"]["nodes"]) & down
    }
    return {nodes[uid]["name"] for uid in down | tested if nodes[uid]["name"] in marts}


def test_case14_a_broken_contract_keeps_its_mart_out_of_the_lake_and_the_other_marts_publish(own_stack):
    stack = own_stack
    manifest = json.loads(settings.DBT_MANIFEST.read_text())
    node = manifest["nodes"][f"model.ecommerce.{BROKEN}"]
    assert node["config"]["contract"]["enforced"], f"{BROKEN} must have an enforced contract for this case"
    project = stack.root / "dbt"
    shutil.copytree(settings.DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("logs"))
    model = project / node["original_file_path"]
    text = model.read_text()
    assert "products.price," in text, f"{model}: the column this case changes"
    model.write_text(text.replace("products.price,", "products.price::text as price,"))
    stack.env.update(DBT_PROJECT_DIR=str(project), DBT_MANIFEST_PATH=str(project / "target" / "manifest.json"))

    client = s3_client(stack)
    relations = {name: relation for name, (_, relation) in marts().items()}
    before = {name: lake.read_manifest(client, relation, E2E_DATE) for name, relation in relations.items()}
    assert all(before.values()), "the first run published every mart"

    run = stack.cli("demo", "--date", E2E_DATE, check=False)
    assert run.returncode != 0 and "run state: failed" in run.stdout, run.stdout[-4000:]
    states = task_states(stack)
    assert states[f"transform.{BROKEN}.run"] == "failed", states
    blocked = blocked_marts(manifest, node["unique_id"], set(relations))
    others = sorted(set(relations) - blocked)
    assert others, f"every mart depends on {BROKEN}: nothing to show the others publish"
    assert {m: states[f"publish.{m}"] for m in blocked} == dict.fromkeys(blocked, "upstream_failed"), states
    assert {m: states[f"publish.{m}"] for m in others} == dict.fromkeys(others, "success"), states
    assert states["publish_artifacts"] == "success", states

    after = {name: lake.read_manifest(client, relation, E2E_DATE) for name, relation in relations.items()}
    for name in blocked:
        assert after[name] == before[name], f"{name}: nothing of this run reached its lake partition"
    for name in others:  # published again by this run (a new commit of the same rows)
        assert after[name]["attempt"] != before[name]["attempt"], name
        assert after[name]["objects"] == before[name]["objects"], f"{name}: the same rows, the same objects"
    assert stack.sql(
        "select data_type from information_schema.columns where table_schema = %s and table_name = %s"
        " and column_name = 'price'",
        (node["schema"], node["alias"]),
    ) == [("numeric",)], "the warehouse's table is untouched"

    # the failed build's run_results are in the lake, and say why
    found = [
        o
        for o in client.list_objects(lake.bucket(), prefix="artifacts/ecommerce_daily/", recursive=True)
        if o.object_name.endswith("/dbt_build/run_results.json")
    ]
    key = max(found, key=lambda o: o.last_modified).object_name  # this run's (a replaced run may share its id)
    response = client.get_object(lake.bucket(), key)
    try:
        results = {r["unique_id"]: r for r in json.loads(response.read())["results"]}
    finally:
        response.close()
        response.release_conn()
    assert results[node["unique_id"]]["status"] == "error"
    assert "contract" in (results[node["unique_id"]]["message"] or "").lower()
