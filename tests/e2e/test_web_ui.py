"""`make up`: Airflow's real components (scheduler, API server, dag processor, triggerer) on
127.0.0.1 with the generated login; a run triggered through the REST API (what the web UI does)
goes green under the scheduler, with every listener and plugin loaded as in production."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import psutil
import pytest

from include.pipeline import settings
from include.pipeline.private_files import write_private
from include.pipeline.services import find_free_port
from tests.support import REPO_ROOT
from tests.support.environ_sample import EnvironSampler
from tests.support.http import call
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e
RUN_DATE = "2026-01-04"
SHELL_SECRETS = ("WAREHOUSE_PASSWORD", "AIRFLOW_ADMIN_PASSWORD")  # Stack's, written into .env here


def trigger(base: str, stack: Stack, dag_id: str, logical_date: str) -> tuple[str, str, dict]:
    """Log in, wait for the DAG to be serialized, unpause it and trigger a run of `logical_date`
    (what the web UI does); return the token, the run's URL and the run."""
    token = call(f"{base}/auth/token", "POST", {"username": "admin", "password": stack.env["AIRFLOW_ADMIN_PASSWORD"]})[
        1
    ]["access_token"]
    dags = f"{base}/api/v2/dags/{dag_id}"
    deadline = time.monotonic() + 120
    while call(dags, token=token)[0] != 200:  # the dag processor has to serialize it first
        assert time.monotonic() < deadline, f"the DAG {dag_id} never appeared in the API"
        time.sleep(2)
    assert call(dags, "PATCH", {"is_paused": False}, token)[0] == 200
    status, run = call(f"{dags}/dagRuns", "POST", {"logical_date": f"{logical_date}T00:00:00Z", "conf": {}}, token)
    assert status == 200, run
    return token, f"{dags}/dagRuns/{urllib.parse.quote(run['dag_run_id'], safe='')}", run


@pytest.fixture(scope="module")
def airflow_up(tmp_path_factory):
    # A stack of its own: the runs made here must not change the data other tests read.
    stack = Stack(tmp_path_factory.mktemp("ui_stack"))
    port = find_free_port()
    # The secrets in .env, as `make setup` leaves them, not in `up`'s environment: as from a shell
    # that exported none, so every secret a process holds came from the stack (test_secrets_...).
    write_private(stack.root / ".env", "".join(f"{k}={stack.env[k]}\n" for k in SHELL_SECRETS))
    # The daily DAG and the secret masker's probe (secret_probe_dag.py) in a DAG folder of its own.
    dags = stack.root / "dags"
    dags.mkdir()
    for dag_file in (*(REPO_ROOT / "dags").glob("*.py"), Path(__file__).with_name("secret_probe_dag.py")):
        (dags / dag_file.name).symlink_to(dag_file)
    # No scheduled runs: unpausing would otherwise start today's run before (and beside) ours.
    env = {k: v for k, v in stack.env.items() if k not in SHELL_SECRETS}
    env.update(AIRFLOW_PORT=str(port), AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
               AIRFLOW__CORE__DAGS_FOLDER=str(dags))  # fmt: skip
    log = open(stack.root / "up.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "include.pipeline.cli", "up"], cwd=REPO_ROOT, env=env,
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        status, health = call(f"{base}/api/v2/monitor/health")
        if status == 200 and all(v.get("status") == "healthy" for v in health.values()):
            break
        assert proc.poll() is None, (stack.root / "up.log").read_text()[-5000:]
        time.sleep(2)
    else:
        pytest.fail("Airflow did not become healthy in 240 s:\n" + (stack.root / "up.log").read_text()[-5000:])
    yield base, proc, stack
    if proc.poll() is None:  # the last test stops it with SIGTERM; here if it did not run
        # SIGTERM, not SIGINT: a process started in the background (`cmd &`) ignores SIGINT
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    log.close()
    stack.cli("services", "stop", check=False)


def test_only_loopback_listeners_and_the_generated_login(airflow_up):
    base, proc, stack = airflow_up
    tree = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    listening = [c.laddr for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN and c.pid in tree]
    assert listening, "the API server listens"
    assert all(addr.ip == "127.0.0.1" for addr in listening), listening
    assert call(f"{base}/auth/token", "POST", {"username": "admin", "password": "admin"})[0] == 401
    status, token = call(
        f"{base}/auth/token", "POST", {"username": "admin", "password": stack.env["AIRFLOW_ADMIN_PASSWORD"]}
    )
    assert status in (200, 201) and token["access_token"]


def test_airflow_is_sized_to_the_machine_and_says_so(airflow_up):
    from include.pipeline.sizing import Sizing

    base, proc, stack = airflow_up
    machine = Sizing.of_this_machine()
    assert machine.parallelism <= 2 * machine.cores
    said = [line for line in (stack.root / "up.log").read_text().splitlines() if "sizing:" in line]
    assert said and f"core.parallelism={machine.parallelism}," in said[0], said
    assert f"api.workers={machine.api_workers}" in said[0]
    # the LocalExecutor forks `parallelism` workers: not Airflow's default of 32
    tree = [proc, *psutil.Process(proc.pid).children(recursive=True)]
    assert len(tree) <= machine.parallelism + 8, [p.cmdline()[:3] for p in tree]


def test_a_run_triggered_like_the_ui_succeeds_under_the_scheduler(airflow_up):
    base, proc, stack = airflow_up
    token, run_url, run = trigger(base, stack, "ecommerce_daily", RUN_DATE)
    deadline = time.monotonic() + 1200  # a 2-core box shared with other work can take this long
    state = None
    # every process's environment, every 0.2 s, while the run goes (test_each_process_holds_...)
    with EnvironSampler(stack_secrets(stack)) as sampler:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "an Airflow component died:\n" + (stack.root / "up.log").read_text()[-6000:]
            state = call(run_url, token=token)[1].get("state")
            if state in ("success", "failed"):
                break
            time.sleep(3)
    SAMPLED.append(sampler)
    tis = call(f"{run_url}/taskInstances", token=token)[1].get("task_instances", [])
    states = {ti["task_id"]: ti["state"] for ti in tis}
    assert state == "success", (state, states, (stack.root / "up.log").read_text()[-6000:])
    assert states and set(states.values()) == {"success"}, states
    # watcher mode: one dbt build, and every model still has its own task that ended green
    assert states["transform.dbt_producer_watcher"] == "success"
    assert {"transform.orders.run", "transform.orders.test", "transform.customers_snapshot.snapshot"} <= set(states)


def stack_secrets(stack: Stack) -> dict[str, str]:
    values = settings.read_env_file(stack.root / ".env")
    assert set(settings.GENERATED_SECRETS) <= set(values), "every generated secret is sampled"
    return {key: values[key] for key in settings.GENERATED_SECRETS}


SAMPLED: list[EnvironSampler] = []  # the sampler of the run above
ROLE_PASSWORDS = frozenset(settings.role_password_key(job) for job in settings.ROLES)
S3_SECRETS = frozenset(key for i in settings.S3_IDENTITIES for key in settings.s3_key_names(i))
SETUP_ONLY = frozenset(("WAREHOUSE_PASSWORD", "S3_ACCESS_KEY", "S3_SECRET_KEY", "AIRFLOW_ADMIN_PASSWORD"))
# What a process of the stack may hold in its environment, by kind (tests/support/environ_sample.py);
# any other kind holds none. The servers keep what they were started with (their own secrets).
MAY_HOLD = {
    # the warehouse's sync also writes the lake's part of a shared read (shared_read.py): the lake
    # writer's keys reach its runtime on stdin (never its environment), allowed here all the same
    "ingest sync": {"WAREHOUSE_INGEST_PASSWORD", *settings.s3_key_names("lake_writer")},
    "dbt (Cosmos)": {"WAREHOUSE_TRANSFORM_PASSWORD"},  # a child of dbt's (multiprocessing's resource tracker)
    "postgres": None,
    "weed": None,
}


def test_each_process_holds_only_its_stages_secret_during_the_run(airflow_up):
    """Issue 24: sampled every 0.2 s during the run above, under the scheduler: no process holds
    the superuser's password or the S3 admin key (Postgres and SeaweedFS aside), Airflow's
    components hold no role password and no S3 key, no process holds two roles' passwords, and
    each stage's secret is only where its stage runs (the tasks read theirs from their
    connections; the PyAirbyte runner gets the ingest role's password from its task)."""
    assert SAMPLED, "the triggered run above was sampled"
    sampler = SAMPLED[0]
    problems = []
    for (pid, _), held in sampler.held.items():
        where = f"pid {pid} ({held.kind}: {held.cmdline})"
        if MAY_HOLD.get(held.kind, set()) is None:
            continue
        if held.secrets & SETUP_ONLY:
            problems.append(f"{where} holds a setup secret: {sorted(held.secrets & SETUP_ONLY)}")
        if held.kind.startswith("airflow") and held.secrets & (ROLE_PASSWORDS | S3_SECRETS):
            problems.append(f"{where}, an Airflow component, holds {sorted(held.secrets)}")
        if len(held.secrets & ROLE_PASSWORDS) > 1:
            problems.append(f"{where} holds two roles' passwords: {sorted(held.secrets & ROLE_PASSWORDS)}")
        if extra := held.secrets - MAY_HOLD.get(held.kind, set()):
            problems.append(f"{where} holds what its stage does not need: {sorted(extra)}")
    kinds = sorted({h.kind for h in sampler.held.values()})
    print(f"sampled {sampler.samples} times, {len(sampler.processes_seen)} processes; holding a secret: {kinds}")
    assert problems == [], "\n".join(problems)
    assert sampler.samples >= 20, "sampled through the run"
    # the sampler sees a secret where one is: the sync's runner holds its role's password
    assert any(h.kind == "ingest sync" and h.secrets == {"WAREHOUSE_INGEST_PASSWORD"} for h in sampler.held.values())


def test_a_task_that_prints_its_connections_password_shows_stars_in_its_log(airflow_up):
    """Airflow's secret masker, exercised: a task (secret_probe_dag.py) prints and logs its
    connection's password; its real task log under the scheduler shows `***`, never the value."""
    base, proc, stack = airflow_up
    token, run_url, run = trigger(base, stack, "secret_probe", RUN_DATE)
    deadline = time.monotonic() + 300
    while call(run_url, token=token)[1].get("state") not in ("success", "failed"):
        assert time.monotonic() < deadline, "the probe run did not end in 300 s"
        time.sleep(2)
    assert call(run_url, token=token)[1]["state"] == "success"
    logs = list((stack.root / ".local" / "airflow" / "logs").glob(
        f"dag_id=secret_probe/run_id={run['dag_run_id']}/task_id=print_the_password/*.log"))  # fmt: skip
    assert logs, "the task wrote its log under Airflow's log folder"
    text = "".join(path.read_text() for path in logs)
    password = settings.read_env_file(stack.root / ".env")["WAREHOUSE_READER_PASSWORD"]
    assert "printed password: ***" in text and "logged password: ***" in text, text[-3000:]
    assert password not in text


def _sync_processes(stack: Stack) -> list[psutil.Process]:
    """The embedded sync's processes of this stack: the runtime and the connectors it
    starts (their environment names the stack's work folder, whoever their parent is now)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("AIRBYTE_PROJECT_DIR", "").startswith(str(stack.root)):
                found.append(proc)
        except psutil.Error:
            pass
    return found


def pad_the_days_read(stack: Stack, records: int = 400_000) -> str:
    """Put one large users file (an existing one's records repeated) in the exports bucket, so the
    next sync reads for many seconds: the demo's day alone is read in about a second, less than it
    takes to mark the task failed (the stack is this module's own). Returns the object's key."""
    import gzip
    import io
    import json

    from minio import Minio

    port = json.loads((stack.root / ".local" / "services.json").read_text())["s3"]["port"]
    keys = settings.read_env_file(stack.root / ".env")  # the admin key `make upload` uses
    client = Minio(f"127.0.0.1:{port}", keys["S3_ACCESS_KEY"], keys["S3_SECRET_KEY"], secure=False)
    bucket = "shop-exports"
    source = max(
        (o for o in client.list_objects(bucket, prefix="users/", recursive=True) if o.object_name.endswith(".gz")),
        key=lambda o: o.size,
    )
    response = client.get_object(bucket, source.object_name)
    try:
        lines = gzip.decompress(response.read()).splitlines(keepends=True)
    finally:
        response.close()
        response.release_conn()
    body = gzip.compress(b"".join(lines * (records // len(lines) + 1)), compresslevel=1)
    key = source.object_name.rsplit("/", 1)[0] + "/zz-padding-for-a-long-read.jsonl.gz"
    client.put_object(bucket, key, io.BytesIO(body), len(body))
    return key


def test_an_ingest_task_marked_failed_mid_sync_leaves_no_sync_running(airflow_up):
    """Issue 10 through the real path: the scheduler runs the DAG, the ingest task is marked failed
    through the REST API while its connector reads; Airflow's supervisor SIGTERMs (then SIGKILLs)
    the task runner's group, and the embedded runtime and the connector, in a group of their own,
    must be gone within 15 s too. A large file makes the read long enough to be cut."""
    base, proc, stack = airflow_up
    pad_the_days_read(stack)
    token, run_url, run = trigger(base, stack, "ecommerce_daily", "2026-01-03")

    deadline = time.monotonic() + 900
    reading: list[psutil.Process] = []
    while time.monotonic() < deadline and not reading:  # the connector (source-s3) is running: mid-sync
        assert proc.poll() is None, (stack.root / "up.log").read_text()[-4000:]
        sync = _sync_processes(stack)
        reading = sync if any("source-s3" in " ".join(p.cmdline()) for p in sync if p.is_running()) else []
        time.sleep(0.2)
    assert reading, "the ingest sync never started: " + str(call(f"{run_url}/taskInstances", token=token)[1])

    marked = time.monotonic()
    status, body = call(f"{run_url}/taskInstances/ingest.shop_to_warehouse", "PATCH", {"new_state": "failed"}, token)
    assert status == 200, body
    _, alive = psutil.wait_procs(reading, timeout=15)
    left = [p for p in _sync_processes(stack) if p.is_running()]
    print(f"marked failed mid-sync: {len(reading)} sync processes gone in {time.monotonic() - marked:.1f} s")
    assert alive == [] and left == [], [p.cmdline()[:3] for p in alive + left]
    ti = call(f"{run_url}/taskInstances/ingest.shop_to_warehouse", token=token)[1]
    assert ti.get("state") == "failed", ti
    # and the sync was really cut, not finished on its own: the task log says it was stopped
    logs = stack.root / ".local" / "airflow" / "logs"
    said = ""
    while "stopping the sync" not in said and time.monotonic() - marked < 30:
        said = "".join(
            f.read_text() for f in logs.glob(f"**/run_id={run['dag_run_id']}/**/*ingest.shop_to_warehouse*/*.log")
        )
        time.sleep(1)
    assert "embedded engine: SIGTERM: stopping the sync of 'shop_to_warehouse'" in said, said[-3000:]


def test_sigterm_to_up_stops_every_airflow_process_and_frees_the_port(airflow_up):
    """Last in this module: it stops the stack. A process manager or `kill` sends SIGTERM to the
    `up` process alone; every Airflow process it started (API server, scheduler and its workers,
    dag processor, triggerer) must be gone, and the port free, within 60 s."""
    from include.pipeline.services import port_owner

    base, proc, stack = airflow_up
    port = int(base.rsplit(":", 1)[1])
    # Airflow's components (the triggerer through include/pipeline/cli/triggerer.py) and everything
    # under them; the embedded services (weed) stay up until `make stop`
    components = [p for p in psutil.Process(proc.pid).children()
                  if re.search(r"\bairflow\b|include\.pipeline\.cli\.triggerer", " ".join(p.cmdline()[:3]))]  # fmt: skip
    tree = components + [c for p in components for c in p.children(recursive=True)]
    assert len(components) == 4 and port_owner(port), [p.cmdline()[:3] for p in tree]
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(tree, timeout=60)
    assert alive == [], [p.cmdline()[:4] for p in alive]
    while port_owner(port) and time.monotonic() - started < 60:
        time.sleep(0.5)
    assert port_owner(port) is None, f"port {port} still taken {time.monotonic() - started:.0f} s after SIGTERM"
    assert proc.wait(timeout=10) == 0
    print(f"up stopped by SIGTERM: {len(tree)} processes gone in {time.monotonic() - started:.1f} s")
    assert "Airflow stopped" in (stack.root / "up.log").read_text()
