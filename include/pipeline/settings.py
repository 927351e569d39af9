"""Where things live and how the stack is configured.

One place resolves every setting, in this order: the process environment, then `.env` at the
repo root (generated secrets, never committed), then the state the embedded services wrote under
`.local/`. Paths default to file-relative locations and can be overridden by environment
variables, so the same code serves a laptop, docker compose and Kubernetes.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

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
    """Parse a dotenv file (KEY=VALUE lines, # comments, optional quotes)."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ValueError(f"{path}:{number}: expected KEY=VALUE, got {raw!r}")
        key, _, value = line.partition("=")
        values[key.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


def ensure_env_file(path: Path = ENV_FILE) -> list[str]:
    """Create `.env` with generated secrets where missing; return the keys that were added.

    Under an exclusive lock on the file: two starts at once (two terminals, a test run beside a
    demo) must not generate two different passwords, one of them used by initdb. The new file
    replaces the old one whole (a 0600 temporary file renamed over it), so a reader never sees
    half a secret and the file is never readable by others.
    """
    import fcntl
    import tempfile

    def missing() -> list[str]:
        existing = read_env_file(path)
        return [key for key in GENERATED_SECRETS if not existing.get(key) and not os.environ.get(key)]

    from include.pipeline.private_files import tighten

    tighten(path)  # an existing looser .env is made private, with a warning
    if not missing():
        return []
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        added = missing()  # again, under the lock: another process may have just written them
        if added:
            lines = path.read_text().rstrip("\n").splitlines()
            if not lines:
                lines.append("# Generated by `make setup`. Local secrets: never commit this file.")
            lines += [f"{key}={secrets.token_urlsafe(24)}" for key in added]
            with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f"{path.name}.", delete=False) as tmp:
                tmp.write("\n".join(lines) + "\n")  # NamedTemporaryFile is created with mode 0600
            os.replace(tmp.name, path)
        return added
    finally:
        os.close(fd)  # releases the lock


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


@dataclass(frozen=True)
class Warehouse:
    """Connection facts of the warehouse Postgres (embedded or external)."""

    host: str
    port: int
    user: str
    password: str
    database: str

    @classmethod
    def from_settings(cls) -> Warehouse:
        """The warehouse as its superuser (WAREHOUSE_USER): setup commands only."""
        password = setting("WAREHOUSE_PASSWORD")
        if not password:
            raise RuntimeError(
                f"WAREHOUSE_PASSWORD is not set: run `make setup` to generate {ENV_FILE}, "
                "or export it for an external Postgres."
            )
        return cls.location(password)

    @classmethod
    def location(cls, password: str = "") -> Warehouse:
        """Where the warehouse is (host, port, superuser's name, database), with `password`."""
        state = services_state().get("postgres", {})
        host = setting("WAREHOUSE_HOST")
        # the embedded server's port only for the embedded server: a Postgres of your own
        # (WAREHOUSE_HOST set) is on WAREHOUSE_PORT, else on Postgres's 5432
        return cls(
            host=host or "127.0.0.1",
            port=int(setting("WAREHOUSE_PORT") or (None if host else state.get("port")) or 5432),
            user=setting("WAREHOUSE_USER") or "postgres",
            password=password,
            database=setting("WAREHOUSE_DB") or "warehouse",
        )

    @classmethod
    def for_role(cls, job: str) -> Warehouse:
        """The warehouse as the login role of `job` (a key of ROLES), with its generated password."""
        if job not in ROLES:
            raise ValueError(f"no warehouse role for job {job!r}; the jobs are {', '.join(ROLES)}")
        key = role_password_key(job)
        password = setting(key)
        if not password:
            raise RuntimeError(f"{key} is not set: run `make setup` to generate it into {ENV_FILE}")
        where = cls.location()
        return cls(where.host, where.port, ROLES[job], password, where.database)

    @classmethod
    def from_airflow_connection(cls, conn_id: str) -> Warehouse:
        """The warehouse of an Airflow Postgres connection (inside a task: the task's own roles)."""
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        conn = PostgresHook.get_connection(conn_id)
        return cls(conn.host, int(conn.port or 5432), conn.login, conn.password, conn.schema)

    def params(self, **extra: object) -> dict:
        """psycopg2 connect() keywords (a 10 s connect timeout unless `extra` sets one)."""
        return {
            "host": self.host, "port": self.port, "user": self.user, "password": self.password,
            "dbname": self.database, "connect_timeout": 10, **extra,
        }  # fmt: skip

    def connect(self, **extra: object) -> PgConnection:
        """A new psycopg2 connection (`extra`: connect() keywords such as connect_timeout)."""
        import psycopg2

        return psycopg2.connect(**self.params(**extra))

    def uri(self, *, hide_password: bool = False) -> str:
        password = "***" if hide_password else self.password
        return f"postgresql://{self.user}:{password}@{self.host}:{self.port}/{self.database}"


@dataclass(frozen=True)
class S3:
    """The S3 service holding the shop's export files (the embedded SeaweedFS, or S3_ENDPOINT)."""

    endpoint: str
    access_key: str
    secret_key: str

    @classmethod
    def from_settings(cls) -> S3:
        state = services_state().get("s3", {})
        access_key, secret_key = setting("S3_ACCESS_KEY"), setting("S3_SECRET_KEY")
        if not access_key or not secret_key:
            raise RuntimeError(
                f"S3_ACCESS_KEY / S3_SECRET_KEY are not set: run `make setup` to generate {ENV_FILE}, "
                "or export them for an external S3."
            )
        endpoint = setting("S3_ENDPOINT") or state.get("endpoint") or ""
        return cls(endpoint=endpoint, access_key=access_key, secret_key=secret_key)

    @classmethod
    def for_identity(cls, identity: str) -> S3:
        """The S3 service as one stage's identity (a key of S3_IDENTITIES), with its generated keys."""
        access_name, secret_name = s3_key_names(identity)
        access_key, secret_key = setting(access_name), setting(secret_name)
        if not access_key or not secret_key:
            raise RuntimeError(
                f"{access_name} / {secret_name} are not set: run `make setup` to generate them into {ENV_FILE}, "
                "or export the keys of that identity on your S3"
            )
        return cls(endpoint=cls.endpoint_from_settings(), access_key=access_key, secret_key=secret_key)

    @staticmethod
    def endpoint_from_settings() -> str:
        return setting("S3_ENDPOINT") or services_state().get("s3", {}).get("endpoint") or ""

    def env(self) -> dict[str, str]:
        return {"S3_ENDPOINT": self.endpoint, "S3_ACCESS_KEY": self.access_key, "S3_SECRET_KEY": self.secret_key}


def metrics_enabled() -> bool:
    """STACK_METRICS=off turns every metrics writer into a no-op (the overhead benchmark's baseline)."""
    return os.environ.get("STACK_METRICS", "on").strip().lower() not in ("off", "0", "false", "no")


def metrics_env(prefixes: tuple[str, ...] = ("METRICS", "METRICS_READER")) -> dict[str, str]:
    """METRICS_* for child processes: explicit settings, else the warehouse as its metrics role.

    METRICS_READER_USER / _PASSWORD: the read-only role the dashboards use (Grafana, Streamlit).
    The warehouse's settings are read only for what METRICS_* leaves out. `prefixes`: the
    identities wanted (the dashboards need only METRICS_READER's).
    """
    host, port, database = setting("METRICS_HOST"), setting("METRICS_PORT"), setting("METRICS_DB")
    if not (host and port and database):
        wh = Warehouse.location()
        host, port, database = host or wh.host, port or str(wh.port), database or wh.database
    out = {"METRICS_HOST": host, "METRICS_PORT": port, "METRICS_DB": database}
    for prefix, job in (("METRICS", "metrics"), ("METRICS_READER", "reader")):
        if prefix not in prefixes:
            continue
        user, password = setting(f"{prefix}_USER"), setting(f"{prefix}_PASSWORD")
        if not (user and password):  # the warehouse's role (its password is only needed then)
            role = Warehouse.for_role(job)
            user, password = user or role.user, password or role.password
        out[f"{prefix}_USER"], out[f"{prefix}_PASSWORD"] = user, password
    return out


def shop_size_overrides() -> dict[str, int]:
    """SHOP_CUSTOMERS / SHOP_ORDERS: the simulated shop's size on day 0, over connections.yaml's
    `simulator:` block (e.g. `SHOP_CUSTOMERS=1000000 SHOP_ORDERS=1000000` for the benchmark)."""
    out = {}
    for key, name in (("customers", "SHOP_CUSTOMERS"), ("orders", "SHOP_ORDERS")):
        value = setting(name)
        if value:
            out[key] = int(value)
    return out


# What one busy LocalExecutor slot costs: the idle worker (~130 MiB) plus the task process it
# forks (Airflow + the DAG + a dbt build or a PyAirbyte sync), measured at ~400-500 MiB.
TASK_SLOT_MIB = 512


@dataclass(frozen=True)
class Sizing:
    """How many processes Airflow may run here: 2 per core, capped by memory (half the free RAM)."""

    cores: int
    available_mib: int
    parallelism: int  # [core] parallelism: also the LocalExecutor's worker-process count
    api_workers: int

    @classmethod
    def of_this_machine(cls) -> Sizing:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            cores = os.cpu_count() or 1
        try:
            import psutil

            available = psutil.virtual_memory().available // 2**20
        except ImportError:  # psutil is in requirements.txt; fall back to free pages
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20
        by_memory = max(1, available // 2 // TASK_SLOT_MIB)
        return cls(
            cores=cores,
            available_mib=int(available),
            parallelism=max(2, min(2 * cores, by_memory)),
            api_workers=max(1, min(cores // 2, 4)),
        )

    def airflow_env(self) -> dict[str, str]:
        return {
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(self.parallelism),
            "AIRFLOW__API__WORKERS": str(self.api_workers),
        }


def airflow_env() -> dict[str, str]:
    """Environment for every Airflow command the project runs (CLI, tests, `make up`).

    Sized to the machine (see `Sizing`): Airflow's default parallelism of 32 starts 32
    LocalExecutor workers, 4.6 GB RSS idle on a 2-core box. The AIRFLOW__... variables win.
    """
    from include.pipeline.lineage.config import airflow_env as lineage_airflow_env
    from include.pipeline.transform.docs_site import airflow_env as dbt_docs_airflow_env

    airflow_home = Path(os.environ.get("AIRFLOW_HOME", LOCAL_DIR / "airflow"))
    api_port = os.environ.get("AIRFLOW_PORT", "8080")
    env = {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(airflow_home / "passwords.json"),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": api_port,
        # Tasks report to the API server's execution API: same host and port (not `localhost`,
        # which may resolve to ::1 while the server listens on 127.0.0.1 only).
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        # Cosmos watcher mode: keep the producer's per-node XCom backup in memory and write it to
        # a Variable only when the build fails (Cosmos's default rewrites the whole, growing
        # Variable after every XCom push: hundreds of API calls inside dbt's threads per build).
        "AIRFLOW__COSMOS__ENABLE_WATCHER_RELIABLE_RETRY": "False",
        "DO_NOT_TRACK": "1",
        "SCARF_ANALYTICS": "false",
        "AIRBYTE_OFFLINE_MODE": "1",
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p),
        **Sizing.of_this_machine().airflow_env(),
        **lineage_airflow_env(LOCAL_DIR, setting),  # OpenLineage: .local/lineage/ or LINEAGE_TRANSPORT
        **dbt_docs_airflow_env(LOCAL_DIR),  # the newest dbt docs in the web UI (Browse > dbt Docs)
    }
    # Values from the environment win, so CI or a user can point Airflow elsewhere.
    return {key: os.environ.get(key, value) if key != "PYTHONPATH" else value for key, value in env.items()}


def warehouse_env() -> dict[str, str]:
    """WAREHOUSE_* (the superuser and each stage's role) for setup commands (setup_env)."""
    wh = Warehouse.from_settings()
    return {
        "WAREHOUSE_HOST": wh.host,
        "WAREHOUSE_PORT": str(wh.port),
        "WAREHOUSE_USER": wh.user,
        "WAREHOUSE_PASSWORD": wh.password,
        "WAREHOUSE_DB": wh.database,
        # each stage's role (airflow_settings.yaml makes one Airflow connection of each)
        **{role_password_key(job): Warehouse.for_role(job).password for job in ROLES},
    }


def s3_env() -> dict[str, str]:
    """S3_ENDPOINT, the admin keys and every stage identity's keys, for setup commands (setup_env)."""
    env = S3.from_settings().env()
    for identity in S3_IDENTITIES:
        keys = S3.for_identity(identity)
        env.update(zip(s3_key_names(identity), (keys.access_key, keys.secret_key), strict=True))
    return env


def setup_env() -> dict[str, str]:
    """What setup commands get (migrations, `make settings`, `make airbyte-apply`, the demo's
    report): stack_env() plus every secret: the superuser's, each role's, each S3 identity's."""
    env = stack_env()
    for key, value in read_env_file().items():
        env.setdefault(key, value)
    env.update(warehouse_env())
    env.update(s3_env())
    env.update(metrics_env())
    return env


def stack_env() -> dict[str, str]:
    """os.environ + .env + Airflow's settings + where the services are: what Airflow's components
    (and so their tasks) and every other child process get. No secret of STAGE_SECRETS: a task
    reads its stage's password or keys from its Airflow connection when it runs (docs/security.md)."""
    env = dict(os.environ)
    for key, value in read_env_file().items():
        env.setdefault(key, value)
    env.update(airflow_env())
    wh = Warehouse.location()
    env.update({"WAREHOUSE_HOST": wh.host, "WAREHOUSE_PORT": str(wh.port), "WAREHOUSE_USER": wh.user,
                "WAREHOUSE_DB": wh.database})  # fmt: skip
    env["S3_ENDPOINT"] = S3.endpoint_from_settings()  # where the lake and the exports are (no key)
    env.update({k: v for k, v in metrics_env().items() if not k.endswith("_PASSWORD")})
    for key in STAGE_SECRETS:
        env.pop(key, None)
    # `airflow standalone` starts its components as `airflow ...`: the venv's bin must come first.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


# -- the ingest engine and the Airbyte server (read at run time; include/pipeline/ingest/engine.py) --
ENGINE_VARIABLE = "airbyte_engine"  # Airflow Variable that picks the engine (then AIRBYTE_ENGINE)
DEFAULT_ENGINE = "embedded"  # PyAirbyte inside the task, no Airbyte server


class EngineSettingError(ValueError):
    pass


def airbyte_conn_id() -> str:
    """The Airflow connection of the Airbyte server (AIRBYTE_CONN_ID, default airbyte_default)."""
    return os.environ.get("AIRBYTE_CONN_ID", "airbyte_default")


def airbyte_workspace() -> str | None:
    """The Airbyte workspace by name (AIRBYTE_WORKSPACE), or None: connections.yaml's, else the first."""
    return os.environ.get("AIRBYTE_WORKSPACE") or None


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise EngineSettingError(f"{name}={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise EngineSettingError(f"{name}={raw!r} must be positive")
    return value


@dataclass(frozen=True)
class PlatformSettings:
    """Knobs of the platform engine, from the environment at run time."""

    conn_id: str
    workspace: str | None
    deferrable: bool
    poll_seconds: float
    submit_tries: int

    @classmethod
    def from_env(cls) -> PlatformSettings:
        deferrable = os.environ.get("AIRBYTE_DEFERRABLE", "true").strip().lower()
        if deferrable not in ("true", "false", "1", "0", "yes", "no"):
            raise EngineSettingError(f"AIRBYTE_DEFERRABLE={deferrable!r}: use true or false")
        return cls(
            conn_id=airbyte_conn_id(),
            workspace=airbyte_workspace(),
            deferrable=deferrable in ("true", "1", "yes"),
            poll_seconds=_float("AIRBYTE_POLL_SECONDS", 30.0),
            submit_tries=int(_float("AIRBYTE_SUBMIT_TRIES", 4)),
        )
