"""Where things live, the stack's names, and the one way a setting is read.

One place resolves every setting, in this order: the process environment, then `.env` at the
repo root (generated secrets, never committed), then the state the embedded services wrote under
`.local/`. Paths default to file-relative locations and can be overridden by environment
variables, so the same code serves a laptop, docker compose and Kubernetes.

The rest is split by concern, each module reading its values through `setting()` here:
- include/pipeline/env_file.py: the `.env` writer (generated secrets);
- include/pipeline/endpoints.py: `Warehouse` and `S3`, where the services are and as whom;
- include/pipeline/sizing.py: how many processes this machine runs;
- include/pipeline/environments.py: the environments of Airflow and of every child process;
- include/pipeline/ingest/engine.py: the ingest engine's switches (`PlatformSettings`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

REPO_ROOT = Path(os.environ.get("STACK_REPO_ROOT", Path(__file__).resolve().parents[2]))
LOCAL_DIR = Path(os.environ.get("STACK_LOCAL_DIR", REPO_ROOT / ".local"))
ENV_FILE = Path(os.environ.get("STACK_ENV_FILE", REPO_ROOT / ".env"))
SERVICES_STATE = LOCAL_DIR / "services.json"

DBT_PROJECT_DIR = Path(os.environ.get("DBT_PROJECT_DIR", REPO_ROOT / "include" / "dbt"))
CONNECTIONS_FILE = Path(
    os.environ.get("AIRBYTE_CONNECTIONS_FILE", REPO_ROOT / "include" / "airbyte" / "connections.yaml")
)
AIRBYTE_REQUIREMENTS_DIR = REPO_ROOT / "include" / "airbyte" / "requirements"
AIRFLOW_SETTINGS_FILE = Path(os.environ.get("AIRFLOW_SETTINGS_FILE", REPO_ROOT / "airflow_settings.yaml"))

# dbt, as Cosmos runs it (transform/cosmos_config.py): the manifest the DAG is rendered from, the
# dbt executable, the Airflow connection of its profile and the profile's default schema.
DBT_MANIFEST = Path(os.environ.get("DBT_MANIFEST_PATH", DBT_PROJECT_DIR / "target" / "manifest.json"))
DBT_EXECUTABLE = Path(os.environ.get("DBT_EXECUTABLE", REPO_ROOT / ".venv" / "bin" / "dbt"))
DBT_CONN_ID = os.environ.get("WAREHOUSE_CONN_ID", "warehouse_transform")  # the transform role
DBT_TARGET_SCHEMA = os.environ.get("DBT_TARGET_SCHEMA", "analytics")

# The metrics (observe/): the Airflow connection the writers read inside Airflow, their schema,
# and libpq's connect timeout in seconds (its minimum: a value of 1 is treated as 2).
METRICS_CONN_ID = os.environ.get("STACK_METRICS_CONN_ID", "metrics")
METRICS_SCHEMA = "metrics"
METRICS_CONNECT_TIMEOUT = 2

DAG_ID = "ecommerce_daily"  # the daily pipeline `make demo` runs
EXPORTS_BUCKET = "shop-exports"  # the simulated shop's export files (connections.yaml: sources.shop)

# The warehouse's login roles, one per job (created by include/sql/warehouse/V001__roles.sql);
# the superuser of WAREHOUSE_USER only runs setup. Each role's password: WAREHOUSE_<JOB>_PASSWORD.
ROLES = {
    "ingest": "warehouse_ingest",  # owns and writes raw (and airbyte_internal)
    "transform": "warehouse_transform",  # reads raw; owns staging, intermediate, marts, snapshots
    "metrics": "warehouse_metrics",  # owns metrics
    "reader": "warehouse_reader",  # reads marts and metrics (Grafana, the Streamlit dashboard)
}


# The S3 identities, one per stage (the admin key S3_ACCESS_KEY / S3_SECRET_KEY only sets S3 up and
# serves `make upload`): name -> (the Airflow connection that holds it, its buckets, its actions).
# Buckets: `exports` the shop's (EXPORTS_BUCKET), `sources` it and every bucket a source of
# connections.yaml reads (your files uploaded by `make upload`), `lake` the lake's (LAKE_BUCKET).
# Their keys: S3_<NAME>_ACCESS_KEY / S3_<NAME>_SECRET_KEY (services/s3.py writes them into the
# embedded server's identities; airflow_settings.yaml makes their Airflow connections).
S3_IDENTITIES = {
    "exports_writer": ("shop_exports_writer", "exports", ("Read", "Write", "List")),  # shop_export
    "exports_reader": ("shop_exports", "sources", ("Read", "List")),  # ingest: source-s3 reads the exports
    "lake_writer": ("lake", "lake", ("Read", "Write", "List")),  # publish, ingest's raw history
    "lake_reader": ("lake_reader", "lake", ("Read", "List")),  # DuckDB (`make lake-sql`)
}


def role_password_key(job: str) -> str:
    return f"WAREHOUSE_{job.upper()}_PASSWORD"


def s3_key_names(identity: str) -> tuple[str, str]:
    """(access key, secret key) setting names of an S3 identity (a key of S3_IDENTITIES)."""
    if identity not in S3_IDENTITIES:
        raise ValueError(f"no S3 identity {identity!r}; the identities are {', '.join(S3_IDENTITIES)}")
    return f"S3_{identity.upper()}_ACCESS_KEY", f"S3_{identity.upper()}_SECRET_KEY"


# Secrets generated into .env on first setup. No default password exists anywhere.
GENERATED_SECRETS = (
    "WAREHOUSE_PASSWORD",
    "AIRFLOW_ADMIN_PASSWORD",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    *(role_password_key(job) for job in ROLES),
    *(key for identity in S3_IDENTITIES for key in s3_key_names(identity)),
)
# Secrets that are never in the environment of Airflow's components and tasks (stack_env): each
# task reads its stage's own from its Airflow connection. Setup commands get them (setup_env).
STAGE_SECRETS = (*GENERATED_SECRETS, "METRICS_PASSWORD", "METRICS_READER_PASSWORD")


def read_env_file(path: Path = ENV_FILE) -> dict[str, str]:
    """The KEY=VALUE settings of a dotenv file (comments, quotes and `export ` as python-dotenv
    reads them: the one parser of `.env`, the one pydantic-settings uses too); {} if it is missing."""
    if not path.exists():
        return {}
    from dotenv import dotenv_values

    return {key: value for key, value in dotenv_values(path).items() if value is not None}


def services_state() -> dict:
    """What the embedded services recorded when they started (ports), or {}."""
    if SERVICES_STATE.exists():
        return json.loads(SERVICES_STATE.read_text())
    return {}


def setting(key: str, default: str | None = None) -> str | None:
    """A setting from the environment, else from `.env`, else `default`."""
    if key in os.environ:
        return os.environ[key]
    return read_env_file().get(key, default)


def metrics_enabled() -> bool:
    """STACK_METRICS=off turns every metrics writer into a no-op (the overhead benchmark's baseline)."""
    return os.environ.get("STACK_METRICS", "on").strip().lower() not in ("off", "0", "false", "no")


def shop_size_overrides() -> dict[str, int | float]:
    """SHOP_CUSTOMERS / SHOP_ORDERS: the simulated shop's size on day 0, and SHOP_DAILY_NEW /
    SHOP_DAILY_CHANGED: its day's new and changed share, over connections.yaml's `simulator:` block
    (e.g. `SHOP_CUSTOMERS=10000000 SHOP_ORDERS=10000000 SHOP_DAILY_NEW=0.002 SHOP_DAILY_CHANGED=0.002`:
    10M of history, a day of the size of a 1M shop's)."""
    out: dict[str, int | float] = {}
    for key, name in (("customers", "SHOP_CUSTOMERS"), ("orders", "SHOP_ORDERS")):
        value = setting(name)
        if value:
            out[key] = int(value)
    for key, name in (("daily_new", "SHOP_DAILY_NEW"), ("daily_changed", "SHOP_DAILY_CHANGED")):
        value = setting(name)
        if value:
            share = float(value)
            if not 0 <= share <= 1:
                raise ValueError(f"{name}={value!r} is not a share: write a number from 0 to 1 (0.01: 1% a day)")
            out[key] = share
    return out
