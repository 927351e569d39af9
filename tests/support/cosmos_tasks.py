"""Which Airflow task shows a dbt model, as Cosmos renders the transform group (tests after each model).

A model with a data test attached is a task group: `transform.<model>.run`, then
`transform.<model>.test`; a model without one (its rules may all be constraints the database
holds, or a user's model may have none) is one task, `transform.<model>_run`. Tests derive what
to expect from the dbt manifest with these, so a project's own models keep them green.
"""

from __future__ import annotations

import json

from include.pipeline import settings


def dbt_manifest() -> dict:
    return json.loads((settings.DBT_PROJECT_DIR / "target" / "manifest.json").read_text())


def models_with_tests(manifest: dict) -> set[str]:
    """The names of the models a data test reads (a relationships test: both of its models)."""
    nodes = manifest["nodes"]
    return {
        nodes[uid]["name"] for n in nodes.values() if n["resource_type"] == "test"
        for uid in n["depends_on"]["nodes"] if uid in nodes and nodes[uid]["resource_type"] == "model"
    }  # fmt: skip


def run_task(model: str, tested: set[str]) -> str:
    """The task that runs `model`."""
    return f"transform.{model}.run" if model in tested else f"transform.{model}_run"


def last_task(model: str, tested: set[str]) -> str:
    """The model's last task: its tests' task, or its one task (what its children wait for)."""
    return f"transform.{model}.test" if model in tested else f"transform.{model}_run"
