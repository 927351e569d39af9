"""The project's command line: `python -m include.pipeline.cli <command>` (the Makefile calls it).

setup-runtime   generate .env secrets, install the PyAirbyte runtime and connector venvs, dbt parse
services        start | stop | status the embedded services: Postgres, S3 (prints their URLs)
settings        load airflow_settings.yaml into Airflow
airflow ...     run any airflow command with the project's environment
demo            services + db migrate + settings + `airflow dags test` + a summary (--days N, --full-refresh)
up              services + Airflow (api-server, scheduler, dag-processor, triggerer) on 127.0.0.1
check-connections / catalogs   validate include/airbyte/connections.yaml / refresh stream snapshots
airbyte-plan / airbyte-apply   show / make the changes that bring an Airbyte server to connections.yaml
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from include.pipeline import settings
from include.pipeline.services import ServiceError
from include.pipeline.services.postgres import EmbeddedPostgres
from include.pipeline.services.s3 import EmbeddedS3

PY = sys.executable
DAG_ID = "ecommerce_daily"
EXPORTS_BUCKET = "shop-exports"  # the simulated shop's export files (connections.yaml: sources.shop)
# The demo's default last day: a week into the shop's life (it starts on the DAG's start_date,
# 2026-01-01, and grows by 20 customers a day), so `make demo` is quick and prints the same
# figures every time. Any later date works too: DATE=2026-11-20 is a shop of 7,460 customers.
DEMO_DATE = "2026-01-07"


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


# -- environment ------------------------------------------------------------------------------
def warehouse_env() -> dict[str, str]:
    wh = settings.Warehouse.from_settings()
    return {
        "WAREHOUSE_HOST": wh.host,
        "WAREHOUSE_PORT": str(wh.port),
        "WAREHOUSE_USER": wh.user,
        "WAREHOUSE_PASSWORD": wh.password,
        "WAREHOUSE_DB": wh.database,
        # each stage's role (airflow_settings.yaml makes one Airflow connection of each)
        **{settings.role_password_key(job): settings.Warehouse.for_role(job).password for job in settings.ROLES},
    }


def stack_env() -> dict[str, str]:
    """os.environ + .env + Airflow's settings + the warehouse: what every child process gets."""
    env = dict(os.environ)
    for key, value in settings.read_env_file().items():
        env.setdefault(key, value)
    env.update(settings.airflow_env())
    env.update(warehouse_env())
    env.update(settings.S3.from_settings().env())  # the shop's export files (S3_ENDPOINT, keys)
    from include.pipeline.observe.config import metrics_env  # the metrics DB (defaults to the warehouse)

    env.update(metrics_env())
    # `airflow standalone` starts its components as `airflow ...`: the venv's bin must come first.
    env["PATH"] = os.pathsep.join([str(Path(PY).parent), env.get("PATH", "")])
    return env


def run(cmd: list[str], *, env: dict[str, str] | None = None, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env or stack_env(), check=check, cwd=settings.REPO_ROOT, **kw)


def airflow_bin() -> str:
    return str(Path(PY).with_name("airflow"))


# -- setup ------------------------------------------------------------------------------------
def _sync_venv(venv: Path, lock: Path) -> None:
    """Create `venv` and install `lock` into it with uv; skipped when the lock is unchanged."""
    digest = hashlib.sha256(lock.read_bytes() + b"\n--compile-bytecode").hexdigest()  # install options count
    stamp = venv / ".lock-sha256"
    if stamp.exists() and stamp.read_text() == digest:
        say(f"{venv.name}: up to date with {lock.relative_to(settings.REPO_ROOT)}")
        return
    uv = shlex.split(os.environ.get("STACK_UV", "")) or [shutil.which("uv") or "uv"]
    say(f"{venv.name}: installing {lock.relative_to(settings.REPO_ROOT)}")
    if not (venv / "bin" / "python").exists():
        subprocess.run([*uv, "venv", "-q", "--python", "3.11", str(venv)], check=True)
    # --compile-bytecode: with PYTHONDONTWRITEBYTECODE set (as on CI boxes and in many images), a
    # venv without .pyc files recompiles every module at every start (`import airbyte`: ~17 s CPU).
    subprocess.run(
        [*uv, "pip", "sync", "-q", "--compile-bytecode", "--python", str(venv / "bin" / "python"), str(lock)],
        check=True,
    )
    stamp.write_text(digest)


def cmd_setup_runtime(args: argparse.Namespace) -> int:
    # --no-env: the container image build (Dockerfile) installs the runtime, but no secret goes in a layer
    added = [] if args.no_env else settings.ensure_env_file()
    if added:
        say(f"generated {', '.join(added)} into {settings.ENV_FILE} (keep it; never commit it)")
    from include.pipeline.ingest.connections import load_connections

    config = load_connections()
    req = settings.AIRBYTE_REQUIREMENTS_DIR
    _sync_venv(settings.REPO_ROOT / ".venv-airbyte", req / "pyairbyte.txt")
    from include.pipeline.ingest.connectors import prepare_offline

    for connector in sorted({s.connector for s in config.sources.values()}):
        # a lock is installed as pinned, without re-resolving: a connector with broken metadata
        # (source-s3, see its .overrides.txt) installs like any other
        _sync_venv(settings.REPO_ROOT / f".venv-{connector}", req / f"{connector}.txt")
        prepare_offline(settings.REPO_ROOT / f".venv-{connector}")  # nothing downloaded at run time
    say("dbt parse (writes the manifest Cosmos renders the DAG from)")
    env = {**os.environ, "DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    subprocess.run(
        [str(Path(PY).with_name("dbt")), "parse", "--quiet", "--profiles-dir", str(settings.DBT_PROJECT_DIR),
         "--project-dir", str(settings.DBT_PROJECT_DIR)],
        check=True, env=env,
    )  # fmt: skip
    return 0


# -- services ---------------------------------------------------------------------------------
def postgres() -> EmbeddedPostgres:
    password = settings.setting("WAREHOUSE_PASSWORD")
    if not password:
        raise ServiceError(f"WAREHOUSE_PASSWORD is not set: run `make setup` to generate {settings.ENV_FILE}")
    port = settings.setting("WAREHOUSE_PORT") or settings.services_state().get("postgres", {}).get("port")
    return EmbeddedPostgres(settings.LOCAL_DIR / "postgres", password=password, port=int(port) if port else None)


def s3() -> EmbeddedS3 | None:
    """The embedded S3 server, or None when S3_ENDPOINT points at another one."""
    if os.environ.get("S3_ENDPOINT"):
        return None
    keys = settings.S3.from_settings()
    ports = settings.services_state().get("s3", {}).get("ports", {})
    from include.pipeline.publish.lake import bucket as lake_bucket

    buckets = (EXPORTS_BUCKET, lake_bucket())
    return EmbeddedS3(settings.LOCAL_DIR / "s3", keys.access_key, keys.secret_key, dict(ports), buckets)


def services_lock():
    """One start or stop of the embedded services at a time (services/__init__.py `exclusive`)."""
    from include.pipeline.services import exclusive

    return exclusive(settings.LOCAL_DIR / "services.lock")


def start_services() -> None:
    with services_lock():
        _start_services()


def _start_services() -> None:
    settings.ensure_env_file()  # keys added since the first setup (S3_*) are generated too
    pg = postgres()
    port = pg.start()
    state = settings.services_state()
    state["postgres"] = {"port": port, "data_dir": str(pg.data_dir), "log": str(pg.log_file)}
    settings.LOCAL_DIR.mkdir(parents=True, exist_ok=True)
    settings.SERVICES_STATE.write_text(json.dumps(state, indent=2))
    server = s3()
    if server is not None:
        try:
            server.start()
        finally:  # ports are kept even when the start failed, so `make stop` finds the process
            state["s3"] = server.state() if server.ports else {}
            settings.SERVICES_STATE.write_text(json.dumps(state, indent=2))


def print_urls() -> None:
    wh = settings.Warehouse.from_settings()
    print(f"  warehouse Postgres : {wh.uri(hide_password=True)}")
    print(
        f'                       (password: WAREHOUSE_PASSWORD in {settings.ENV_FILE}; psql "$(make -s warehouse-url)")'
    )
    exports = settings.S3.from_settings()
    print(f"  shop exports S3    : {exports.endpoint or '(not started)'}  bucket s3://{EXPORTS_BUCKET}/")
    from include.pipeline.publish.lake import bucket as lake_bucket

    print(f"  lake (same S3)     : s3://{lake_bucket()}/marts/<mart>/ds=<ds>/, s3://{lake_bucket()}/artifacts/")
    print(f"                       (keys: S3_ACCESS_KEY, S3_SECRET_KEY in {settings.ENV_FILE})")


def cmd_services(args: argparse.Namespace) -> int:
    if args.action == "start":
        start_services()
        say("services are up")
        print_urls()
    elif args.action == "stop":
        with services_lock():
            stopped = postgres().stop()
            say("postgres stopped" if stopped else "postgres was not running")
            server = s3()
            if server is not None:
                say("s3 stopped" if server.stop() else "s3 was not running")
    elif args.action == "url":
        print(settings.Warehouse.from_settings().uri())
    else:
        running = postgres().running_pid_and_port()
        print(f"postgres: {f'running (pid {running[0]}, port {running[1]})' if running else 'stopped'}")
        server = s3()
        if server is not None:
            pid = server.running_pid()
            print(f"s3: {f'running (pid {pid}, {server.endpoint})' if pid and server.ports else 'stopped'}")
        if running:
            print_urls()
        return 0 if running else 3
    return 0


# -- airflow ----------------------------------------------------------------------------------
def migrate_and_load_settings() -> None:
    env = stack_env()
    from include.pipeline.private_files import private_dir, tighten

    home = private_dir(Path(env["AIRFLOW_HOME"]))  # metadata DB, airflow.cfg, passwords.json: owner only
    say("warehouse roles and grants (include/sql/warehouse)")
    run([PY, "-m", "include.pipeline.services.warehouse"], env=env)  # the superuser's one job
    say("airflow db migrate")
    run([airflow_bin(), "db", "migrate"], env=env, stdout=subprocess.DEVNULL)
    tighten(home / "airflow.db", warn=lambda _: None)  # Airflow creates it 0644 (inside the 0700 home)
    say(f"loading {settings.AIRFLOW_SETTINGS_FILE.name}")
    run([PY, "-m", "include.pipeline.airflow_settings", str(settings.AIRFLOW_SETTINGS_FILE)], env=env)
    say("metrics schema (include/sql/metrics)")
    run([PY, "-m", "include.pipeline.observe.schema"], env=env)  # only warns when the metrics DB is down


def cmd_settings(_: argparse.Namespace) -> int:
    migrate_and_load_settings()
    return 0


def cmd_airflow(args: argparse.Namespace) -> int:
    return run([airflow_bin(), *args.rest], check=False).returncode


def cmd_demo(args: argparse.Namespace) -> int:
    started = time.monotonic()
    date = args.date or DEMO_DATE
    try:
        dt.date.fromisoformat(date)
    except ValueError:
        print(f"error: DATE={date!r} is not a date; use YYYY-MM-DD, e.g. make demo DATE=2026-11-21", file=sys.stderr)
        return 2
    if args.days < 1:
        print(f"error: --days {args.days}: give 1 or more (DAYS=3 runs the 3 days ending at DATE)", file=sys.stderr)
        return 2
    start_services()
    migrate_and_load_settings()
    from include.pipeline.transform.summary import mart_rows, print_growth

    end = dt.date.fromisoformat(date)
    days = [(end - dt.timedelta(days=n)).isoformat() for n in reversed(range(args.days))]
    conf = ["--conf", json.dumps({"full_refresh": True})] if args.full_refresh else []
    growth: dict[str, dict[str, int | None]] = {}
    worst = 0
    for day in days:  # consecutive logical dates, ending at DATE: the shop grows and changes each day
        started = started if day == days[0] else time.monotonic()
        say(f"airflow dags test {DAG_ID} {day}" + (" (full refresh)" if conf else ""))
        dag_started = time.monotonic()
        test = run([airflow_bin(), "dags", "test", DAG_ID, day, *conf], check=False)
        dag_seconds = time.monotonic() - dag_started
        seconds = [f"{dag_seconds:.1f}", f"{time.monotonic() - started:.1f}"]
        code = run([PY, "-m", "include.pipeline.report", DAG_ID, day, *seconds], check=False).returncode
        worst = worst or test.returncode or code
        if len(days) > 1:
            growth[day] = mart_rows()
    if len(days) > 1:
        print_growth(growth)
    return worst


def stop_like_ctrl_c() -> None:
    """SIGTERM (a process manager, `kill`, make passing its own SIGTERM on) and SIGHUP (a closed
    terminal) stop `up` the way Ctrl-C does: KeyboardInterrupt, so `supervise` stops Airflow."""
    import signal

    def interrupt(signum: int, frame) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is not signal.SIG_IGN:  # `nohup make up` keeps ignoring SIGHUP
            signal.signal(sig, interrupt)


def stop_with_make() -> None:
    """Under `make up`, stop when make does. GNU make passes a SIGTERM on to the recipe it runs,
    but not a SIGHUP sent to make alone, and a SIGKILLed make passes nothing: it dies and leaves
    us running. So ask the kernel for a SIGTERM when our parent make exits (prctl
    PR_SET_PDEATHSIG; Linux), which `stop_like_ctrl_c` turns into Ctrl-C. Only under make: a
    shell that started `cli up &` may exit and leave it running on purpose."""
    import ctypes
    import signal

    import psutil

    try:
        parent = psutil.Process(os.getppid())
        if parent.name() != "make":
            return
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        if os.getppid() != parent.pid:  # make died before the request took effect
            os.kill(os.getpid(), signal.SIGTERM)
    except (OSError, AttributeError, psutil.Error):
        pass


def cmd_up(_: argparse.Namespace) -> int:
    from include.pipeline.services import port_owner

    stop_like_ctrl_c()
    stop_with_make()
    settings.ensure_env_file()  # secrets added since this .env was made (S3_*) before anything reads them
    env = stack_env()
    owner = port_owner(int(env["AIRFLOW__API__PORT"]))
    if owner:
        raise ServiceError(
            f"port {env['AIRFLOW__API__PORT']} on 127.0.0.1 is in use ({owner}): stop it, "
            "or choose another port: AIRFLOW_PORT=8081 make up"
        )
    start_services()
    migrate_and_load_settings()
    env = stack_env()
    home = Path(env["AIRFLOW_HOME"])
    password = settings.setting("AIRFLOW_ADMIN_PASSWORD")
    from include.pipeline.private_files import write_private

    write_private(home / "passwords.json", json.dumps({"admin": password}))  # 0600 from creation
    say(
        f"Airflow on http://127.0.0.1:{env['AIRFLOW__API__PORT']}  user: admin  "
        f"password: AIRFLOW_ADMIN_PASSWORD in {settings.ENV_FILE} (`make password` prints it)"
    )
    say("Ctrl-C stops Airflow; `make stop` stops the embedded services")
    say_sizing(env)
    return supervise(env)


def say_sizing(env: dict[str, str]) -> None:
    """Print how many processes Airflow was sized to here, and where each figure came from."""
    machine = settings.Sizing.of_this_machine()
    chosen = machine.airflow_env()
    figures = ", ".join(
        f"{key.removeprefix('AIRFLOW__').lower().replace('__', '.')}={env[key]}"
        + ("" if env[key] == chosen[key] else " (from the environment)")
        for key in chosen
    )
    say(
        f"sizing: {machine.cores} cores, {machine.available_mib / 1024:.1f} GiB available -> {figures}"
        " (core.parallelism is also the LocalExecutor's worker count; set AIRFLOW__... to override)"
    )


# Airflow's components, as `airflow standalone` runs them, but with no log server: standalone's
# log servers listen on every interface (0.0.0.0:8793/8794), and on one machine the API server
# reads task logs from the local files anyway. Everything here stays on 127.0.0.1.
COMPONENTS = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}


def supervise(env: dict[str, str], components: dict[str, list[str]] | None = None) -> int:
    """Run every component, prefix its output, stop them all when one exits or on Ctrl-C
    (SIGTERM and SIGHUP too: see `stop_like_ctrl_c`)."""
    import selectors

    procs = {
        name: subprocess.Popen(
            [airflow_bin(), *args] if components is None else args,
            env=env,
            cwd=settings.REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        for name, args in (COMPONENTS if components is None else components).items()
    }
    selector = selectors.DefaultSelector()
    for name, proc in procs.items():
        selector.register(proc.stdout, selectors.EVENT_READ, name)
    width = max(map(len, procs))

    def relay(timeout: float) -> None:
        """Print the lines the components wrote within `timeout` seconds, prefixed by their name."""
        for key, _ in selector.select(timeout=timeout):
            line = key.fileobj.readline()
            if line:
                print(f"{key.data:<{width}} | {line}", end="", flush=True)
            else:  # end of file: the component closed its output
                selector.unregister(key.fileobj)

    code = 0
    try:
        while all(p.poll() is None for p in procs.values()):
            relay(1)
        code = next(p.returncode for p in procs.values() if p.returncode is not None)
        failed = [n for n, p in procs.items() if p.returncode is not None]
        print(f"error: Airflow component {', '.join(failed)} exited ({code}); stopping the others", file=sys.stderr)
    except KeyboardInterrupt:
        code = 0
    finally:
        stop_components(list(procs.values()), relay)
        say("Airflow stopped")
    return code or 0


def stop_components(procs: list[subprocess.Popen], relay=None, grace: float = 30) -> None:
    """SIGTERM every component's process group, SIGKILL what is left after `grace` seconds.

    Processes that left their component's group (a task supervisor puts its task runner in a
    group of its own) are found as descendants first and stopped too. Their output is still
    relayed meanwhile (`relay`): a component blocked writing to a full pipe could not shut down
    gracefully. Signals are ignored meanwhile: a second Ctrl-C or SIGTERM must not cut the
    stopping short and orphan the rest.
    """
    import signal

    import psutil

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    tree: list[psutil.Process] = []
    for proc in procs:
        try:
            tree += psutil.Process(proc.pid).children(recursive=True)
        except psutil.Error:
            pass

    def signal_all(sig: int) -> None:
        for proc in procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
        for child in tree:
            try:
                child.send_signal(sig)
            except psutil.Error:
                pass

    signal_all(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        if relay is not None:
            relay(0.2)
        else:
            time.sleep(0.2)
    psutil.wait_procs(tree, timeout=max(0.1, deadline - time.monotonic()))
    signal_all(signal.SIGKILL)
    for proc in procs:
        proc.wait()
    psutil.wait_procs(tree, timeout=10)


# -- connections ------------------------------------------------------------------------------
def cmd_check_connections(args: argparse.Namespace) -> int:
    from include.pipeline.ingest.connections import ConnectionsConfigError, load_connections

    try:
        config = load_connections(args.file)
    except ConnectionsConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    for c in config.connections:
        streams = ", ".join(
            f"{s.name} ({s.sync_mode}, cursor {s.cursor_field}, pk {list(s.primary_key)})" for s in c.streams
        )
        print(
            f"{c.name}: {c.source.name} [{c.source.connector}] -> {c.destination.name}.{c.destination.schema}: {streams}"
        )
    print(f"{config.path}: {len(config.connections)} connection(s), valid")
    return 0


def cmd_catalogs(_: argparse.Namespace) -> int:
    from include.pipeline.ingest.catalog import write_snapshot
    from include.pipeline.ingest.connections import load_connections

    for source in load_connections().sources.values():
        if isinstance(source.config.get("streams"), list):
            say(f"{source.connector}: streams declared in connections.yaml (source '{source.name}'); no snapshot")
            continue
        say(f"{source.connector}: discover -> {write_snapshot(source)}")
    return 0


def settings_connections_env(env: dict[str, str]) -> dict[str, str]:
    """AIRFLOW_CONN_<ID> (JSON) for every connection of airflow_settings.yaml that `env` does not
    define already: the values `make settings` would load into Airflow, read from the same file
    and .env, so a command that needs a connection works before Airflow's database is set up."""
    from include.pipeline.airflow_settings import render

    found = {}
    for c in render(settings.AIRFLOW_SETTINGS_FILE, env).get("connections") or []:
        key = f"AIRFLOW_CONN_{c['conn_id'].upper()}"
        port = c.get("conn_port")
        fields = {
            "conn_type": c["conn_type"],
            "host": c.get("conn_host"),
            "port": int(port) if port not in (None, "") else None,
            "login": c.get("conn_login"),
            "password": c.get("conn_password"),
            "schema": c.get("conn_schema"),
            "extra": c.get("conn_extra"),
        }
        if key not in env:
            found[key] = json.dumps({k: v for k, v in fields.items() if v not in (None, "")})
    return found


def cmd_airbyte(args: argparse.Namespace) -> int:
    """plan / apply on the Airbyte server of the Airflow connection airbyte_default (AIRBYTE_CONN_ID).

    The destination comes from the Airflow connection `warehouse`: taken from airflow_settings.yaml
    (as `make settings` loads it) when the environment does not define it, so `make setup` +
    `make services` are enough; the embedded warehouse must have been started once for its port."""
    from include.pipeline.airflow_settings import SettingsError

    embedded = not (settings.setting("WAREHOUSE_HOST") or settings.setting("WAREHOUSE_PORT"))
    if embedded and not settings.services_state().get("postgres", {}).get("port"):
        raise ServiceError(
            "the Airbyte destination is the warehouse, and the embedded one has never been started here "
            "(its port is unknown): run `make services` first, or set WAREHOUSE_HOST / WAREHOUSE_PORT / "
            "WAREHOUSE_USER / WAREHOUSE_DB for a warehouse of your own"
        )
    try:
        env = stack_env()
        env.update(settings_connections_env(env))
    except (RuntimeError, SettingsError) as exc:  # no .env yet, or a ${VAR} of airflow_settings.yaml unset
        raise ServiceError(str(exc)) from None
    extra = ["--file", args.file] if args.file else []
    module = "include.pipeline.ingest.platform.apply"
    return run([PY, "-m", module, args.command.removeprefix("airbyte-"), *extra], env=env, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="stack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("setup-runtime")
    p.add_argument("--no-env", action="store_true", help="do not generate .env (a container image build)")
    p.set_defaults(func=cmd_setup_runtime)
    p = sub.add_parser("services")
    p.add_argument("action", choices=["start", "stop", "status", "url"])
    p.set_defaults(func=cmd_services)
    sub.add_parser("settings").set_defaults(func=cmd_settings)
    p = sub.add_parser("airflow")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_airflow)
    p = sub.add_parser("demo")
    p.add_argument("--date", help=f"last logical date YYYY-MM-DD (default: {DEMO_DATE})")
    p.add_argument("--days", type=int, default=1, help="run N consecutive days ending at --date (default 1)")
    p.add_argument("--full-refresh", action="store_true", help="trigger with the DAG param full_refresh=true")
    p.set_defaults(func=cmd_demo)
    sub.add_parser("up").set_defaults(func=cmd_up)
    p = sub.add_parser("check-connections")
    p.add_argument("--file", default=None)
    p.set_defaults(func=cmd_check_connections)
    sub.add_parser("catalogs").set_defaults(func=cmd_catalogs)
    for name in ("airbyte-plan", "airbyte-apply"):
        p = sub.add_parser(name)
        p.add_argument("--file", default=None)
        p.set_defaults(func=cmd_airbyte)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as exc:
        print(f"error: `{' '.join(map(str, exc.cmd))}` failed with exit {exc.returncode}", file=sys.stderr)
        return exc.returncode or 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
