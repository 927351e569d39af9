"""Airflow tasks of the publish step: each mart to the lake, then the run's dbt artifacts.

The marts are the dbt models under models/marts in the manifest Cosmos renders from, so a new
mart is published without touching the DAG. Each mart is its own task (`publish.<mart>`): a
failed upload retries that mart alone. It waits for its own mart's tasks in the transform group
only (`transform.<mart>.run` and `transform.<mart>.test`), not the whole group: a mart is
published once it and its tests passed, and a failing model or test keeps its own mart (and,
through dbt's skipped children, theirs) out of the lake while the other marts are published.

`publish_artifacts` runs once the transform ran, whatever its outcome: a failed build's
run_results are what one needs to read in the lake. Its upstream tasks are the freshness gate and
dbt_docs, its trigger rule all_done_min_one_success: after a failed build the gate succeeded and
dbt_docs is upstream_failed, so it runs; when the ingest or the gate failed, no dbt ran and nothing
has succeeded, so it is upstream_failed instead of failing on artifacts that were never made.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

from airflow.sdk import BaseHook, task, task_group

from include.pipeline import assets, settings
from include.pipeline.publish import lake, past_days

log = logging.getLogger(__name__)

DBT_PROJECT = settings.DBT_PROJECT_DIR  # DBT_PROJECT_DIR / DBT_MANIFEST_PATH, as Cosmos reads them
DBT_MANIFEST = settings.DBT_MANIFEST


def mart_models(project: Path = DBT_PROJECT) -> list[str]:
    """The dbt models under models/marts, by file name: cheap enough for DAG parsing (one task each)."""
    return sorted(p.stem for p in (project / "models" / "marts").rglob("*.sql"))


def marts(manifest_path: Path = DBT_MANIFEST) -> dict[str, tuple[str, str]]:
    """model name -> (schema, relation) of every model under models/marts, from dbt's manifest."""
    if not manifest_path.exists():
        raise FileNotFoundError(f"{manifest_path} is missing: run `make setup` (it runs dbt parse)")
    nodes = json.loads(manifest_path.read_text())["nodes"].values()
    return {
        n["name"]: (n["schema"], n.get("alias") or n["name"])
        for n in nodes
        if n["resource_type"] == "model" and n["original_file_path"].startswith("models/marts/")
    }


def lake_client(conn_id: str = lake.LAKE_CONN_ID):
    from include.pipeline.services.s3 import client_for_airflow_connection

    return client_for_airflow_connection(BaseHook.get_connection(conn_id))


READER_CONN_ID = "warehouse_reader"  # publish only reads the marts: the read-only role


def _warehouse_connection(conn_id: str = READER_CONN_ID):
    from include.pipeline.endpoints import Warehouse

    return Warehouse.from_airflow_connection(conn_id).connect(application_name="stack-publish")


INVOCATION_COMMENT = "dbt invocation_id="  # the marts' post-hook in dbt_project.yml


def _built_by(conn, schema: str, relation: str) -> str | None:
    """The dbt invocation id in the mart's table comment (a post-hook of every mart), or None."""
    with conn.cursor() as cur:
        cur.execute("select obj_description(to_regclass(%s), 'pg_class')", (f'"{schema}"."{relation}"',))
        row = cur.fetchone()
    comment = (row[0] if row else None) or ""
    return (comment.removeprefix(INVOCATION_COMMENT) or None) if comment.startswith(INVOCATION_COMMENT) else None


def _invocation_id(dag_id: str, run_id: str) -> str | None:
    """The dbt invocation id of this run's `dbt build` when the table has no comment naming it:
    kept here by transform.docs.keep_build_artifacts when the build ran on this machine, else
    staged in the lake (another Celery worker ran it)."""
    from include.pipeline.publish import artifacts

    path = artifacts.artifacts_dir(run_id) / "dbt_build" / "run_results.json"
    if path.exists():
        return json.loads(path.read_text()).get("metadata", {}).get("invocation_id")
    return artifacts.invocation_id(lake_client(), dag_id, run_id)


def _record(manifest: dict, dag_id: str, run_id: str) -> None:
    from include.pipeline.observe import writer

    row = {
        "mart": manifest["mart"], "ds": manifest["ds"], "dag_id": dag_id, "run_id": run_id,
        "rows": manifest["rows"], "bytes": manifest["bytes"], "objects": len(manifest["objects"]),
        "committed_at": manifest["committed_at"], "dbt_invocation_id": manifest["dbt_invocation_id"],
    }  # fmt: skip
    writer.write(
        f"lake partition {manifest['mart']} ds={manifest['ds']}",
        [writer.upsert("lake_partitions", row, key=("mart", "ds"))],
    )


def _check_past_day(client, relation: str, ds: str, params: dict | None) -> None:
    """A run of a day before the lake's newest partition of the mart keeps (skips) or refuses
    (fails, no retry) unless the param `republish` is true (publish/past_days.py)."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    verdict = past_days.decide(client, relation, ds, republish=bool((params or {}).get("republish")))
    if verdict.action == past_days.KEEP:  # the task log's "Skipping task" line gives the reason
        raise AirflowSkipException(verdict.message)
    if verdict.action == past_days.REFUSE:
        raise AirflowFailException(verdict.message)
    (log.warning if verdict.later_ds else log.info)("%s", verdict.message)


@task(retries=2, retry_delay=timedelta(seconds=20), execution_timeout=timedelta(hours=1))
def publish_mart(
    model: str, ds: str | None = None, run_id: str | None = None, dag=None, outlet_events=None, params=None
) -> dict:
    """Publish one mart as the run's ds partition; the manifest (without the object list) is the XCom.

    The task's outlet is the mart's Asset (pipeline/assets.py); its event carries the partition
    (`ds`) as partition key and the manifest's figures as extra: the lake_check DAG runs on it.
    A past day's partition is kept once the lake holds a later day (skipped: no event)."""
    found = marts()
    if model not in found:
        raise lake.PublishError(
            f"dbt model {model!r} is not under models/marts in {DBT_MANIFEST} (found: {sorted(found)})"
        )
    schema, relation = found[model]
    _check_past_day(lake_client(), relation, ds, params)
    conn = _warehouse_connection()
    try:
        manifest = lake.publish_mart(
            conn, lake_client(), relation, ds, schema=schema, run_id=run_id,
            invocation_id=_built_by(conn, schema, relation)
            or _invocation_id(dag.dag_id if dag else "dag", run_id or "manual"),
            log=log.info,
        )  # fmt: skip
    finally:
        conn.close()
    _record(manifest, dag.dag_id if dag else "", run_id or "")
    if outlet_events is not None:
        event = outlet_events[assets.mart(model)]
        event.add_partitions(manifest["ds"])
        event.extra = {k: manifest[k] for k in ("mart", "ds", "rows", "bytes", "committed_at", "dbt_invocation_id")}
    return {k: v for k, v in manifest.items() if k not in ("objects", "schema")} | {"objects": len(manifest["objects"])}


@task(retries=2, retry_delay=timedelta(seconds=20), trigger_rule="all_done_min_one_success")
def publish_artifacts(run_id: str | None = None, dag=None) -> dict:
    """The run's dbt artifacts (the build's run_results and manifest, the docs site), staged in the
    lake by the tasks that made them (publish/artifacts.py), to s3://<bucket>/artifacts/<dag_id>/<run_id>/."""
    from include.pipeline.publish import artifacts

    dag_id, run_id = (dag.dag_id if dag else "dag"), run_id or "manual"
    keys = artifacts.promote(lake_client(), dag_id, run_id)
    if not keys:
        raise FileNotFoundError(
            f"no dbt artifacts at s3://{lake.bucket()}/{artifacts.staging_prefix(dag_id, run_id)}: the transform's "
            "dbt build and the dbt_docs task stage them there (their logs say why they could not)"
        )
    prefix = artifacts.final_prefix(dag_id, run_id)
    log.info("dbt artifacts: %d files at s3://%s/%s", len(keys), lake.bucket(), prefix)
    return {"prefix": prefix, "files": len(keys)}


def model_tasks(transform, model: str) -> list:
    """The tasks of dbt model `model` in a Cosmos DbtTaskGroup: its run and its tests' task (a task
    group per model when tests run after each model), or its one task; [] when not rendered."""
    found = [
        node for uid, node in transform.tasks_map.items() if uid.startswith("model.") and uid.split(".")[-1] == model
    ]
    tasks = []
    for node in found:
        children = getattr(node, "children", None)
        tasks.extend(children.values() if children is not None else [node])
    return tasks


def publish_group(transform):
    """The `publish` task group: one task per mart, after that mart's own tasks in `transform`
    (a mart the transform did not render waits for the whole group)."""

    @task_group(group_id="publish")
    def publish():
        for model in mart_models():
            task = publish_mart.override(task_id=model, outlets=[assets.mart(model)])(model)
            task.set_upstream(model_tasks(transform, model) or transform)

    return publish()
