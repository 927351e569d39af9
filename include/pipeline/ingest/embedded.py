"""The embedded ingestion engine: a declared connection run by the embedded Airbyte runtime, no server.

Airflow calls `sync_connection` from a task. The runtime (include/airbyte_runtime/) runs in its own interpreter
(.venv-airbyte), started as a child process rather than `@task.external_python` so that its
progress streams into the task log line by line and the child is killed with the task (timeout,
mark-failed), leaving no sync running.

The child runs in its own process group (with the connector it starts), so stopping it never
signals the task itself. How it dies with the task, whatever ends the task:
- a timeout or Ctrl-C raises in the task: the `finally` below stops the group;
- SIGTERM (Airflow's supervisor on mark-failed, kill, heartbeat loss): a handler installed while
  the child runs stops the group, then hands the signal on to Airflow's own handler (on_kill);
- SIGKILL (the supervisor's escalation), or any other death of the task process: the child's
  stdin stays open for the whole sync and the runner kills its group when it reads end-of-file
  there (include/airbyte_runtime/connector.py `die_with_parent`), which the kernel delivers when the task's
  process is gone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from include.airbyte_runtime.connector import kill_group
from include.pipeline import settings
from include.pipeline.endpoints import Warehouse
from include.pipeline.ingest.declaration import Connection

# The runtime's entry point, run by its path in .venv-airbyte (include/airbyte_runtime/__main__.py)
RUNTIME = Path(__file__).resolve().parents[2] / "airbyte_runtime" / "__main__.py"


class EmbeddedSyncError(RuntimeError):
    """The runtime's sync failed; the message carries the tail of its output, and `problems` the
    schema changes and bad files the runner met before it stopped (schema_changes.py, bad_files.py)."""

    def __init__(self, message: str, problems: dict | None = None) -> None:
        super().__init__(message)
        self.problems = problems or {}


# What a connector or runtime child inherits from the task's environment: the basics of a
# process (paths, locale, temp dir, CA bundles, proxies), nothing else. The Airflow task's
# environment holds AIRFLOW_ADMIN_PASSWORD, METRICS_PASSWORD, AIRFLOW_CONN_* and the like; a
# connector (third-party code reading untrusted data) needs none of them. Its own settings come
# in the spec on stdin (the resolved config) and the few variables set by `child_env`.
INHERITED_ENV = (
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    "PYTHONDONTWRITEBYTECODE", "DO_NOT_TRACK", "AIRBYTE_OFFLINE_MODE", "CI",
    # libpq's TLS settings for the warehouse (a mode and a CA file path, no secret): the runner's
    # connections must verify a server of your own as the task's do (docs/your-services.md)
    "PGSSLMODE", "PGSSLROOTCERT",
    # PyAirbyte's own settings (airbyte/constants.py): folders and logging, no secrets
    "AIRBYTE_INSTALL_DIR", "AIRBYTE_CACHE_ROOT", "AIRBYTE_TEMP_DIR", "AIRBYTE_TEMP_FILE_CLEANUP",
    "AIRBYTE_PRINT_FULL_ERROR_LOGS", "AIRBYTE_NO_UV",
)  # fmt: skip


def child_env(extra: dict[str, str] | None = None, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a connector or runtime child: INHERITED_ENV from `environ`, plus `extra`."""
    environ = os.environ if environ is None else environ
    env = {key: environ[key] for key in INHERITED_ENV if key in environ}
    env.update({"AIRBYTE_OFFLINE_MODE": "1", "DO_NOT_TRACK": "1"})
    env.update(extra or {})
    return env


def secret_redactor(connector: str, config: dict, extra: list[str]) -> Callable[[str], str]:
    """A function that masks every secret of `config` (secret_fields, from the connector's spec)
    and `extra` in a line of the child's output: a connector that prints its config on an error
    must not put a key into the task log, the error text or the metrics row that copies it.
    The values are also registered with Airflow's log masker when running inside a task."""
    from include.pipeline.ingest.secret_fields import MASK, secret_values

    values = {str(v) for _, v, _ in secret_values(connector, config) if v not in (None, "")}
    values |= {v for v in extra if v}
    values = {v for v in values if len(v) >= 4}  # a 1-3 character "secret" would mask ordinary text
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # not inside Airflow (a benchmark, a test)
        mask_secret = None
    for value in values if mask_secret else ():
        mask_secret(value)
    ordered = sorted(values, key=len, reverse=True)

    def redact(line: str) -> str:
        for value in ordered:
            if value in line:
                line = line.replace(value, MASK)
        return line

    return redact


def runtime_python() -> Path:
    return Path(os.environ.get("AIRBYTE_RUNTIME_PYTHON", settings.REPO_ROOT / ".venv-airbyte" / "bin" / "python"))


def connector_executable(connector: str) -> Path:
    """The connector's entry point in its venv; a name that could leave the repo is refused."""
    from include.pipeline.ingest.declaration import valid_connector

    if not valid_connector(connector):
        raise ValueError(f"connector name {connector!r} is not `source-<lowercase words>`: refused as a path")
    return settings.REPO_ROOT / f".venv-{connector}" / "bin" / connector


def build_spec(
    connection: Connection, warehouse: Warehouse, *, full_refresh: bool = False, environ: dict[str, str] | None = None
) -> dict:
    """The JSON handed to the runtime (include/airbyte_runtime/main.py) (no password in it; the source's config holds its
    secrets, resolved from `environ`: ingest/stage_keys.py)."""
    return {
        "connection": connection.name,
        "connector": connection.source.connector,
        "executable": str(connector_executable(connection.source.connector)),
        "config": connection.source.resolved_config(environ),
        "schema": connection.destination.schema,
        "warehouse": {
            "host": warehouse.host,
            "port": warehouse.port,
            "user": warehouse.user,
            "database": warehouse.database,
        },
        "streams": [
            {
                "name": s.name,
                "sync_mode": s.sync_mode,
                "cursor_field": s.cursor_field,
                "primary_key": list(s.primary_key),
            }
            for s in connection.streams
        ],
        "full_refresh": full_refresh,
        # what the runner does with a new column or a bad file (connections.yaml)
        "schema_change_policy": connection.non_breaking_schema_updates_behavior,
        "on_bad_file": connection.on_bad_file,
        "work_dir": str(settings.LOCAL_DIR / "airbyte" / connection.name),
        # the connector's spec and discovered catalog, kept between syncs (include/airbyte_runtime/metadata_cache.py)
        "metadata_cache_dir": str(settings.LOCAL_DIR / "airbyte" / "connector-metadata"),
    }


def sync_connection(
    connection: Connection,
    warehouse: Warehouse,
    *,
    full_refresh: bool = False,
    log: Callable[[str], None] = print,
    config_overrides: dict | None = None,
    environ: dict[str, str] | None = None,
    lake: dict | None = None,
) -> dict:
    """Run one connection to completion; return {'connection', 'streams': {name: figures}, 'seconds'}.
    `environ`: what the source's `${VAR}`s resolve from (default os.environ). `lake`: the lake
    connection this read also feeds when it can (shared_read.py `lake_part`; its keys go to the
    runtime on stdin, like the source's config); the result's `lake` then says what it got."""
    for path, what in (
        (runtime_python(), "the embedded Airbyte runtime"),
        (connector_executable(connection.source.connector), f"the connector {connection.source.connector}"),
    ):
        if not path.exists():
            raise EmbeddedSyncError(f"{what} is not installed ({path} is missing): run `make setup`")

    spec = build_spec(connection, warehouse, full_refresh=full_refresh, environ=environ)
    spec["config"].update(config_overrides or {})
    lake_keys = []
    if lake:
        spec["lake"] = lake
        lake_keys = [lake["s3"]["access_key_id"], lake["s3"]["secret_access_key"]]
    redact = secret_redactor(connection.source.connector, spec["config"], [warehouse.password, *lake_keys])
    Path(spec["work_dir"]).mkdir(parents=True, exist_ok=True)
    logs_dir = settings.LOCAL_DIR / "logs" / "airbyte"
    logs_dir.mkdir(parents=True, exist_ok=True)
    # No PYTHONPATH (Airflow's packages must not leak into the runtime's interpreter) and no other
    # secret of the task: only what child_env lets through, and the warehouse password it needs.
    env = child_env({
        "WAREHOUSE_PASSWORD": warehouse.password,
        "NO_LIVE_PROGRESS": "1",
        "AIRBYTE_LOGGING_ROOT": str(logs_dir),
        "AIRBYTE_PROJECT_DIR": spec["work_dir"],
        "PYTHONUNBUFFERED": "1",
        # libraries of .venv-airbyte warn about Python 3.11's end of life
        "PYTHONWARNINGS": "ignore::FutureWarning",
    })  # fmt: skip

    log(
        f"embedded engine: syncing connection '{connection.name}' with {connection.source.connector} "
        f"({len(connection.streams)} streams) into {warehouse.host}:{warehouse.port}/{warehouse.database}.{connection.destination.schema}"
    )
    started = time.monotonic()
    proc = subprocess.Popen(
        # -P: do not put the runtime's folder on sys.path; __main__.py appends the repository
        # after the venv's paths, so no folder of ours can shadow a library module
        [str(runtime_python()), "-P", str(RUNTIME)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,  # its own process group, so the connector dies with it
    )
    result: dict | None = None
    problems: dict = {}
    failure: str | None = None
    tail: list[str] = []
    restore = _stop_on_sigterm(proc, connection.name, log)
    try:
        assert proc.stdin and proc.stdout
        # One line, and stdin stays open: its end-of-file tells the runner that this process died.
        proc.stdin.write(json.dumps(spec) + "\n")
        proc.stdin.flush()
        for line in proc.stdout:
            line = line.rstrip()
            if line.startswith("RESULT "):
                result = json.loads(line[len("RESULT ") :])
                continue
            if line.startswith("PROBLEMS "):
                problems = json.loads(redact(line[len("PROBLEMS ") :]))
                continue
            if line.startswith("FAILURE "):
                failure = redact(line[len("FAILURE ") :])
            if line.strip():
                line = redact(line)
                log(line)
                tail = (tail + [line])[-30:]
        code = proc.wait()
    finally:
        restore()
        if proc.poll() is None:  # the task was killed or timed out: stop the sync, leave nothing running
            log(f"embedded engine: stopping the sync of '{connection.name}' (pid {proc.pid})")
            kill_group(proc)
        _close(proc.stdin)
    if code != 0 or result is None:
        why = f"stopped by signal {_signal_name(-code)}" if code < 0 else f"failed (exit {code})"
        if failure:  # the runner stopped on purpose (a bad file, disable_connection): say why first
            why = f"failed: {failure}"
        raise EmbeddedSyncError(
            f"sync of connection '{connection.name}' {why}. Last output:\n" + "\n".join(tail), problems
        )
    result["seconds"] = round(time.monotonic() - started, 3)
    result["engine"] = "embedded"
    total = sum(s["records"] for s in result["streams"].values())
    log(
        f"embedded engine: '{connection.name}' done in {result['seconds']} s, {total} records: "
        + ", ".join(f"{n}={s['records']}" for n, s in result["streams"].items())
    )
    return result


def _close(stream) -> None:
    try:
        if stream is not None:
            stream.close()
    except OSError:  # the runner is gone: a broken pipe on the last flush
        pass


def _stop_on_sigterm(proc: subprocess.Popen, name: str, log: Callable[[str], None]) -> Callable[[], None]:
    """While the sync runs, make SIGTERM stop the runner's process group first, then do what
    SIGTERM did before (Airflow's task runner calls the operator's on_kill; Python's default ends
    the process). Airflow's handler only calls on_kill and returns, then SIGKILLs 5 s later, so
    without this the runner (in its own group, out of the supervisor's reach) kept writing.
    Returns the function that puts the previous handler back."""
    if threading.current_thread() is not threading.main_thread():  # handlers belong to the main thread
        return lambda: None
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame) -> None:
        if proc.poll() is None:
            log(f"embedded engine: SIGTERM: stopping the sync of '{name}' (pid {proc.pid})")
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        if callable(previous):
            previous(signum, frame)
        elif previous in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_term)
    return lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)
