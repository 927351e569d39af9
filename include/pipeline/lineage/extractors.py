"""OpenLineage extractors for the project's own tasks (registered by lineage/config.py).

The OpenLineage provider turns a task's Asset outlets into datasets only for URI schemes some
installed provider converts; nothing converts `s3://` here (no Amazon provider), and a partition
is not an outlet. These extractors name the datasets themselves, in the namespaces OpenLineage's
naming spec gives (`postgres://host:port`, `s3://bucket`), with the logical warehouse host of
include/pipeline/assets.py so the names stay the same across restarts:

- ingest (`AirbyteConnectionSync`): inputs the source's datasets (source-s3: each stream's folder
  in its bucket), outputs the raw tables (or the lake's raw history folders);
- a TaskFlow task (`@task`): inputs its inlets, outputs its outlets; `publish.<mart>` adds the
  mart's table as input and the partition it committed, `marts/<mart>/ds=<ds>`, as output.
The dbt models' events come from Cosmos (its own `get_openlineage_facets_on_complete`).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from airflow.providers.openlineage.extractors.base import BaseExtractor, OperatorLineage
from openlineage.client.event_v2 import Dataset


def dataset(uri: str) -> Dataset | None:
    """An Asset URI as an OpenLineage dataset: postgres://h:p/db/schema/table -> (postgres://h:p,
    db.schema.table); s3://bucket/key -> (s3://bucket, key)."""
    url = urlsplit(uri)
    if url.scheme in ("postgres", "postgresql"):
        parts = [p for p in url.path.split("/") if p]
        return Dataset(namespace=f"postgres://{url.netloc}", name=".".join(parts)) if len(parts) == 3 else None
    if url.scheme == "s3" and url.netloc:
        return Dataset(namespace=f"s3://{url.netloc}", name=url.path.strip("/") or "/")
    return None


def datasets(assets) -> list[Dataset]:
    found = (dataset(getattr(a, "uri", "") or "") for a in assets or ())
    return [d for d in found if d is not None]


def source_datasets(connection) -> list[Dataset]:
    """The datasets a connection's source reads: for source-s3, each stream's folder (its globs' fixed
    prefix) in the source's bucket; other connectors: the stream under the connector's name."""
    config = connection.source.config or {}
    bucket = config.get("bucket") if isinstance(config, dict) else None
    found = []
    for stream in connection.streams:
        declared = next((s for s in config.get("streams", []) if s.get("name") == stream.name), {}) if bucket else {}
        globs = declared.get("globs") or [f"{stream.name}/**"]
        prefix = globs[0].split("*", 1)[0].rstrip("/") or stream.name
        if bucket:
            found.append(Dataset(namespace=f"s3://{bucket}", name=prefix))
        else:
            found.append(Dataset(namespace=connection.source.connector, name=stream.name))
    return found


class IngestExtractor(BaseExtractor):
    @classmethod
    def get_operator_classnames(cls) -> list[str]:
        return ["AirbyteConnectionSync"]

    def _execute_extraction(self) -> OperatorLineage | None:
        from include.pipeline.ingest.declaration import load_connections

        connection = load_connections().connection(self.operator.connection_name)
        return OperatorLineage(inputs=source_datasets(connection), outputs=datasets(self.operator.outlets))

    def extract_on_complete(self, task_instance) -> OperatorLineage | None:
        return self._execute_extraction()


class TaskExtractor(BaseExtractor):
    @classmethod
    def get_operator_classnames(cls) -> list[str]:
        return ["_PythonDecoratedOperator"]

    def _execute_extraction(self) -> OperatorLineage | None:
        return OperatorLineage(inputs=datasets(self.operator.inlets), outputs=datasets(self.operator.outlets))

    def extract_on_complete(self, task_instance) -> OperatorLineage | None:
        lineage = self._execute_extraction()
        group, _, mart = self.operator.task_id.partition(".")
        if group == "publish" and mart and getattr(task_instance, "state", None) == "skipped":
            return OperatorLineage()  # a past day's partition kept (publish/past_days.py): nothing read or written
        if group == "publish" and mart:
            from include.pipeline.assets import warehouse_table
            from include.pipeline.publish import lake
            from include.pipeline.publish.tasks import marts

            found = marts().get(mart)
            if found:  # the mart's table it reads: (schema, relation) from dbt's manifest
                lineage.inputs.extend(datasets([warehouse_table(*found)]))
            ds = task_ds(task_instance)
            if ds:
                partition = lake.partition_prefix(mart, ds).rstrip("/")
                lineage.outputs.append(Dataset(namespace=f"s3://{lake.bucket()}", name=partition))
        return lineage


def task_ds(task_instance) -> str | None:
    """The run's `ds` (YYYY-MM-DD) from the Task SDK's task instance; None when it has none."""
    try:
        return task_instance.get_template_context().get("ds")
    except Exception:  # noqa: BLE001 - lineage must never fail a task: the event goes without it
        return None
