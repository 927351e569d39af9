"""The run's dbt artifacts, handed through the lake from the tasks that make them to publish_artifacts.

Under the CeleryExecutor the dbt build (the watcher producer), `dbt docs generate` and the publish
tasks may each run on another worker, and a worker's `.local/` is its own. So each producer also
stages its files in the lake, at `s3://<lake>/artifacts/_staging/<dag_id>/<run>/<kind>/`
(transform/docs.py), and publish_artifacts moves them to `s3://<lake>/artifacts/<dag_id>/<run>/`
(a server-side copy of each object, then the staged ones deleted): it finds them wherever it runs.
publish_mart reads the build's invocation id the same way. Every call uses the `lake` connection's
client (the lake's writer).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from include.pipeline import settings
from include.pipeline.publish import lake

STAGING = "artifacts/_staging"


def run_folder(run_id: str) -> str:
    """The run id made safe as one folder or key segment."""
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", run_id)


def artifacts_dir(run_id: str) -> Path:
    """Where the artifacts of one DAG run live (the run id made safe as a folder name)."""
    return settings.LOCAL_DIR / "artifacts" / run_folder(run_id)


def staging_prefix(dag_id: str, run_id: str) -> str:
    return f"{STAGING}/{dag_id}/{run_folder(run_id)}/"


def final_prefix(dag_id: str, run_id: str) -> str:
    return f"artifacts/{dag_id}/{run_folder(run_id)}/"


def stage(client, folder: Path, dag_id: str, run_id: str, kind: str) -> list[str]:
    """Upload `folder` (one producer's files) to the run's staging prefix under `kind`/."""
    return lake.upload_folder(client, folder, staging_prefix(dag_id, run_id) + kind)


def _keys(client, prefix: str) -> list[str]:
    return sorted(o.object_name for o in client.list_objects(lake.bucket(), prefix=prefix, recursive=True))


def read(client, dag_id: str, run_id: str, name: str) -> bytes | None:
    """The file `name` (e.g. dbt_build/run_results.json) of the run: staged, else published, else None."""
    from minio.error import S3Error

    for prefix in (staging_prefix(dag_id, run_id), final_prefix(dag_id, run_id)):
        try:
            response = client.get_object(lake.bucket(), prefix + name)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                continue
            raise
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()
    return None


def invocation_id(client, dag_id: str, run_id: str) -> str | None:
    """The dbt invocation id of the run's `dbt build`, from its staged run_results.json."""
    data = read(client, dag_id, run_id, "dbt_build/run_results.json")
    return json.loads(data).get("metadata", {}).get("invocation_id") if data else None


def promote(client, dag_id: str, run_id: str) -> list[str]:
    """Move the run's staged files to its published prefix; return the published keys.

    A retry after a partial move moves the rest; with nothing staged, what is already published
    is returned (an empty list: nothing was ever staged)."""
    from minio.commonconfig import CopySource

    bucket = lake.bucket()
    staged, final = staging_prefix(dag_id, run_id), final_prefix(dag_id, run_id)
    for key in _keys(client, staged):
        client.copy_object(bucket, final + key.removeprefix(staged), CopySource(bucket, key))
        client.remove_object(bucket, key)
    return _keys(client, final)
