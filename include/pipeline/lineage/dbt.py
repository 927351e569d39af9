"""OpenLineage extractors of the dbt tasks (Cosmos watcher mode, include/pipeline/transform/watcher.py).

Cosmos names a model's table after the profile's host and port (`postgres://127.0.0.1:50927`, a
new port at every start of the embedded Postgres) and puts every model of the build into the one
producer task's event; each model's own task has none. Here:
- each model's (and snapshot's) task: outputs its relation, inputs the relations it selects from
  (its parents in dbt's manifest: sources, models, snapshots);
- the producer (`dbt build`): Cosmos's datasets, renamed into the logical namespace.
Relations are named as OpenLineage names Postgres tables, `<db>.<schema>.<table>`, under the
namespace of include/pipeline/assets.py, so a raw table the ingest wrote is the same dataset that a
staging model reads.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from airflow.providers.openlineage.extractors.base import BaseExtractor, OperatorLineage
from openlineage.client.event_v2 import Dataset, InputDataset, OutputDataset

from include.pipeline.assets import WAREHOUSE_HOST

NAMESPACE = f"postgres://{WAREHOUSE_HOST}:5432"
RELATIONS = ("model", "snapshot", "source", "seed")


@functools.lru_cache(maxsize=4)
def _nodes(manifest_path: str) -> dict[str, dict]:
    doc = json.loads(Path(manifest_path).read_text())
    return {**doc.get("nodes", {}), **doc.get("sources", {})}


def relation(node: dict) -> str:
    name = node.get("identifier") if node.get("resource_type") == "source" else node.get("alias")
    return f"{node['database']}.{node['schema']}.{name or node['name']}"


def node_lineage(unique_id: str, manifest_path: str) -> OperatorLineage:
    nodes = _nodes(manifest_path)
    node = nodes.get(unique_id)
    if node is None or node.get("resource_type") not in RELATIONS:
        return OperatorLineage()
    parents = [nodes[p] for p in node.get("depends_on", {}).get("nodes", []) if p in nodes]
    return OperatorLineage(
        inputs=[InputDataset(namespace=NAMESPACE, name=relation(p)) for p in parents
                if p.get("resource_type") in RELATIONS],
        outputs=[OutputDataset(namespace=NAMESPACE, name=relation(node))],
    )  # fmt: skip


def logical(dataset: Dataset) -> Dataset:
    """A dataset of Cosmos's (postgres://<host>:<port>) in the warehouse's logical namespace."""
    if dataset.namespace.startswith("postgres://"):
        return type(dataset)(namespace=NAMESPACE, name=dataset.name, facets=getattr(dataset, "facets", None) or {})
    return dataset


class DbtNodeExtractor(BaseExtractor):
    @classmethod
    def get_operator_classnames(cls) -> list[str]:
        return ["RunSensor", "SnapshotSensor"]

    def _execute_extraction(self) -> OperatorLineage | None:
        from include.pipeline import settings

        return node_lineage(self.operator.model_unique_id, str(settings.DBT_MANIFEST))

    def extract_on_complete(self, task_instance) -> OperatorLineage | None:
        return self._execute_extraction()


class DbtBuildExtractor(BaseExtractor):
    @classmethod
    def get_operator_classnames(cls) -> list[str]:
        return ["Producer"]

    def _execute_extraction(self) -> OperatorLineage | None:
        return OperatorLineage()

    def extract_on_complete(self, task_instance) -> OperatorLineage | None:
        found = self.operator.get_openlineage_facets_on_complete(task_instance)
        return OperatorLineage(
            inputs=[logical(d) for d in found.inputs], outputs=[logical(d) for d in found.outputs],
            run_facets=found.run_facets, job_facets=found.job_facets,
        )  # fmt: skip
