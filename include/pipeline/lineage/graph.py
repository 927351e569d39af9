"""The lineage of one DAG run, read back from the JSON lines the transport writes (transport.py):
datasets -> task -> datasets, each dataset in its layer (source, raw, staging, ..., marts, lake).

Used by the dashboard's lineage page (dashboard/pages/lineage.py) and the tests. Only COMPLETE
events count: a task's inputs and outputs are final then.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

LAYERS = ("source", "raw", "raw_history", "staging", "intermediate", "snapshots", "marts", "lake")


def read_events(folder: Path) -> Iterator[dict]:
    for path in sorted(folder.glob("*.jsonl")):
        with path.open() as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)


def run_key(event: dict) -> tuple[str, str] | None:
    """(dag_id, run_id) of a task's event, from the Airflow run facet; None for other events."""
    dag_run = event.get("run", {}).get("facets", {}).get("airflow", {}).get("dagRun") or {}
    if dag_run.get("dag_id") and dag_run.get("run_id"):
        return dag_run["dag_id"], dag_run["run_id"]
    return None


def layer(namespace: str, name: str) -> str:
    """The layer of a dataset: a Postgres table by its schema, the lake's marts and raw history, a
    source's files."""
    if namespace.startswith("postgres://"):
        parts = name.split(".")
        return parts[1] if len(parts) == 3 else "warehouse"
    if name.startswith("marts/"):
        return "lake"
    if name.startswith("raw_history/"):
        return "raw_history"
    return "source"


@dataclass
class RunLineage:
    dag_id: str
    run_id: str
    edges: set[tuple[str, str]] = field(default_factory=set)  # (from, to): dataset -> job -> dataset
    datasets: dict[str, str] = field(default_factory=dict)  # "namespace/name" -> layer
    jobs: set[str] = field(default_factory=set)

    def add(self, event: dict) -> None:
        job = event["job"]["name"]
        for key, direction in (("inputs", "in"), ("outputs", "out")):
            for d in event.get(key) or []:
                node = f"{d['namespace']}/{d['name']}"
                self.datasets[node] = layer(d["namespace"], d["name"])
                self.jobs.add(job)
                self.edges.add((node, job) if direction == "in" else (job, node))

    def layers(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for node, where in sorted(self.datasets.items()):
            found.setdefault(where, []).append(node)
        return {k: found[k] for k in sorted(found, key=lambda k: LAYERS.index(k) if k in LAYERS else len(LAYERS))}

    def dot(self) -> str:
        """Graphviz DOT, left to right, one cluster per layer (Streamlit's graphviz_chart draws it)."""
        lines = ["digraph lineage {", "  rankdir=LR; node [fontsize=10];"]
        for n, (where, nodes) in enumerate(self.layers().items()):
            lines.append(f'  subgraph cluster_{n} {{ label="{where}"; style=dashed;')
            lines.extend(f'    "{node}" [shape=box, label="{node.rsplit("/", 1)[-1]}"];' for node in nodes)
            lines.append("  }")
        lines.extend(f'  "{job}" [shape=ellipse, style=filled, fillcolor="#e8eefc"];' for job in sorted(self.jobs))
        lines.extend(f'  "{a}" -> "{b}";' for a, b in sorted(self.edges))
        lines.append("}")
        return "\n".join(lines)


def runs(events: Iterable[dict]) -> dict[tuple[str, str], RunLineage]:
    found: dict[tuple[str, str], RunLineage] = {}
    for event in events:
        key = run_key(event)
        if key is None or event.get("eventType") != "COMPLETE":
            continue
        found.setdefault(key, RunLineage(*key)).add(event)
    return found
