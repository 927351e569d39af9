"""The Airflow settings that turn OpenLineage on for every Airflow process the project starts.

One setting chooses where events go, LINEAGE_TRANSPORT (environment or .env):
- unset: JSON lines under `.local/lineage/` (transport.py), read by the dashboard's lineage page;
- an OpenLineage transport as JSON, e.g. Marquez or OpenMetadata's OpenLineage endpoint:
  `LINEAGE_TRANSPORT='{"type": "http", "url": "http://127.0.0.1:5000"}'`;
- `off`: no lineage.
The namespace of the jobs is LINEAGE_NAMESPACE (default `ecommerce`). Any AIRFLOW__OPENLINEAGE__*
variable set in the environment wins over these.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

EXTRACTORS = ";".join(
    (
        "include.pipeline.lineage.extractors.IngestExtractor",
        "include.pipeline.lineage.extractors.TaskExtractor",
        "include.pipeline.lineage.dbt.DbtNodeExtractor",
        "include.pipeline.lineage.dbt.DbtBuildExtractor",
    )
)


def transport(value: str | None, local_dir: Path) -> dict | None:
    """The transport config of LINEAGE_TRANSPORT's value; None when lineage is off."""
    if value and value.strip().lower() == "off":
        return None
    if not value:
        return {"type": "include.pipeline.lineage.transport.JsonLinesTransport", "folder": str(local_dir / "lineage")}
    try:
        config = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f'LINEAGE_TRANSPORT is not JSON ({exc}): write e.g. \'{{"type": "http", "url": ...}}\''
        ) from exc
    if not isinstance(config, dict) or "type" not in config:
        raise ValueError(
            f"LINEAGE_TRANSPORT {value!r} has no `type` (an OpenLineage transport: http, file, kafka, ...)"
        )
    return config


def airflow_env(local_dir: Path, setting=os.environ.get) -> dict[str, str]:
    """AIRFLOW__OPENLINEAGE__* for environments.airflow_env()."""
    config = transport(setting("LINEAGE_TRANSPORT"), local_dir)
    env = {
        "AIRFLOW__OPENLINEAGE__NAMESPACE": setting("LINEAGE_NAMESPACE") or "ecommerce",
    }
    if config is None:
        return env | {"AIRFLOW__OPENLINEAGE__DISABLED": "True"}
    return env | {"AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(config), "AIRFLOW__OPENLINEAGE__EXTRACTORS": EXTRACTORS}
