"""The dbt docs site in Airflow's web UI: Cosmos's plugin serves the newest run's docs
(`.local/dbt_docs/`, copied there by transform/docs.py) under Browse > dbt Docs.

No project import here: environments.airflow_env() reads it.
"""

from __future__ import annotations

import json
from pathlib import Path


def latest_docs_dir(local_dir: Path) -> Path:
    return local_dir / "dbt_docs"


def airflow_env(local_dir: Path) -> dict[str, str]:
    """`[cosmos] dbt_docs_projects`, the setting Cosmos's Airflow 3 plugin reads (it ignores the
    older single `dbt_docs_dir`)."""
    project = {"dir": str(latest_docs_dir(local_dir)), "index": "index.html", "name": "dbt Docs (ecommerce)"}
    return {"AIRFLOW__COSMOS__DBT_DOCS_PROJECTS": json.dumps({"ecommerce": project})}
