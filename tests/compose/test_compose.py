"""docker-compose.yaml, really built and started (podman; stand-ins for the third-party images):
every service healthy, ecommerce_daily triggered through the api-server's REST API runs green
with the marts and metrics in the Postgres container, the same DAG on two Celery workers (profile
`celery`), no port on 0.0.0.0, nothing but the init steps as root, no start without .env, and
`down -v` leaves nothing behind."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.parse
from pathlib import Path

import psutil
import pytest

from include.pipeline.endpoints import Warehouse
from tests.compose.conftest import AIRFLOW_SERVICES, COMPOSE_FILE, ComposeStack
from tests.support.http import call

pytestmark = [pytest.mark.compose, pytest.mark.integration]

RUN_DATE = "2026-01-03"
INIT_STEPS = {"airflow-init", "minio-setup", "minio-volume"}
# .env's secrets no long-running Airflow container may hold (each task reads its stage's from its
# Airflow connection): the warehouse's, its roles', MinIO's root and every MinIO user's
STAGE_SECRETS = (
    "WAREHOUSE_PASSWORD", "WAREHOUSE_INGEST_PASSWORD", "WAREHOUSE_TRANSFORM_PASSWORD", "WAREHOUSE_METRICS_PASSWORD",
    "WAREHOUSE_READER_PASSWORD", "S3_SECRET_KEY", "S3_EXPORTS_WRITER_SECRET_KEY", "S3_EXPORTS_READER_SECRET_KEY",
    "S3_LAKE_WRITER_SECRET_KEY", "S3_LAKE_READER_SECRET_KEY",
)  # fmt: skip


def warehouse_rows(stack: ComposeStack, query: str) -> list[tuple]:
    conn = Warehouse("127.0.0.1", int(stack.env["POSTGRES_PORT"]), "postgres", stack.env["WAREHOUSE_PASSWORD"],
                     "warehouse").connect()  # fmt: skip
    try:
        with conn.cursor() as cur:
            cur.execute(query)
            return cur.fetchall()
    finally:
        conn.close()


def run_dag(stack: ComposeStack, logical_date: str, timeout: float = 1500) -> dict[str, dict]:
    """Trigger ecommerce_daily like the UI does; wait for the end; {task_id: task instance}."""
    base = f"http://127.0.0.1:{stack.env['AIRFLOW_PORT']}"
    status, body = call(
        f"{base}/auth/token", "POST", {"username": "admin", "password": stack.env["AIRFLOW_ADMIN_PASSWORD"]}
    )
    assert status in (200, 201), body
    token = body["access_token"]
    dags = f"{base}/api/v2/dags/ecommerce_daily"
    deadline = time.monotonic() + 300
    while call(dags, token=token)[0] != 200:  # the dag-processor has to serialize it first
        assert time.monotonic() < deadline, "the DAG never appeared in the API:\n" + stack.logs()
        time.sleep(3)
    assert call(dags, "PATCH", {"is_paused": False}, token)[0] == 200
    status, run = call(f"{dags}/dagRuns", "POST", {"logical_date": f"{logical_date}T00:00:00Z", "conf": {}}, token)
    assert status == 200, run
    run_url = f"{dags}/dagRuns/{urllib.parse.quote(run['dag_run_id'], safe='')}"
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = call(run_url, token=token)[1].get("state")
        if state in ("success", "failed"):
            break
        time.sleep(5)
    tis = call(f"{run_url}/taskInstances?limit=200", token=token)[1].get("task_instances", [])
    by_id = {ti["task_id"]: ti for ti in tis}
    states = {k: v["state"] for k, v in by_id.items()}
    assert state == "success", (state, states, stack.logs())
    assert states and set(states.values()) <= {"success", "skipped"}, states
    return by_id


def test_compose_refuses_to_start_without_env(tmp_path: Path):
    """No .env (and nothing in the environment): a clear message naming the variable and the fix."""
    env = {"PATH": os.environ["PATH"], "DOCKER_HOST": "unix:///nonexistent.sock"}
    result = subprocess.run(
        ["docker-compose", "--project-directory", str(tmp_path), "-f", str(COMPOSE_FILE), "up", "-d"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert "is not set; run make compose-env" in result.stderr, result.stderr
    # and no secret has a default anywhere in the file: every ${...PASSWORD|KEY|SECRET} is :?-required
    text = COMPOSE_FILE.read_text()
    assert "minioadmin" not in text and "airflow:airflow" not in text
    import re

    for ref in re.findall(r"\$\{((?:\w*(?:PASSWORD|SECRET|KEY))[^}]*)\}", text):
        assert ":-" not in ref, f"a secret with a default in docker-compose.yaml: ${{{ref}}}"


def test_every_service_healthy_and_ports_on_localhost_only(compose_stack: ComposeStack):
    containers = compose_stack.containers()
    assert containers
    published = []
    for c in containers:
        for port in c.get("Ports") or []:
            published.append((c["Labels"]["com.docker.compose.service"], port.get("host_ip"), port.get("host_port")))
    assert published, containers
    assert {ip for _, ip, _ in published} == {"127.0.0.1"}, published
    assert {s for s, _, _ in published} == {"postgres", "minio", "airflow-apiserver"}, published
    # and on the host, nothing of the project's listens on a wildcard address
    ports = {int(p) for _, _, p in published}
    wild = [
        c
        for c in psutil.net_connections("tcp")
        if c.status == "LISTEN" and c.laddr.port in ports and c.laddr.ip in ("0.0.0.0", "::")  # noqa: S104 - looked for, not bound
    ]
    assert not wild, wild


def test_no_container_but_the_init_steps_runs_as_root(compose_stack: ComposeStack):
    checked = {}
    for c in compose_stack.containers():
        service = c["Labels"]["com.docker.compose.service"]
        if service in INIT_STEPS:
            continue
        pid = int(compose_stack.podman("inspect", "--format", "{{.State.Pid}}", c["Id"]).stdout.strip())
        root = psutil.Process(pid)
        uids = {p.uids().real for p in [root, *root.children(recursive=True)]}
        checked[service] = uids
        assert 0 not in uids, f"{service} runs a process as root: {uids}"
    assert {"postgres", "minio", "airflow-apiserver", "airflow-scheduler"} <= set(checked), checked
    # the init steps ran and finished cleanly
    states = compose_stack.service_states()
    assert all(states.get(s, "").startswith("Exited (0)") for s in INIT_STEPS), states


def test_least_privilege_in_the_running_stack(compose_stack: ComposeStack):
    """No stage secret in a long-running Airflow container's environment; the warehouse's roles
    cannot connect to Airflow's database; each MinIO user does its stage's part and no more, and
    anonymous requests are refused."""
    import io

    import psycopg2
    from minio import Minio
    from minio.error import S3Error

    for c in compose_stack.containers():
        service = c["Labels"]["com.docker.compose.service"]
        if not service.startswith("airflow-"):
            continue
        env = compose_stack.podman("exec", c["Id"], "env").stdout
        held = [key for key in STAGE_SECRETS if compose_stack.env[key] in env]
        assert not held, f"{service} holds {held}"
        # the code, the DAGs and the dbt models: read-only to the runtime user (the image's)
        writable = compose_stack.podman(
            "exec", c["Id"], "python", "-c",
            "import os; from pathlib import Path; print([str(p) for d in ('include', 'dags', 'plugins')"
            " for p in [Path(d), *Path(d).rglob('*')] if os.access(p, os.W_OK)][:5])",
        ).stdout.strip()  # fmt: skip
        assert writable == "[]", f"{service} may write {writable}"
    port = int(compose_stack.env["POSTGRES_PORT"])
    with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
        Warehouse("127.0.0.1", port, "warehouse_reader", compose_stack.env["WAREHOUSE_READER_PASSWORD"],
                  "airflow").connect()  # fmt: skip

    def s3(stage: str) -> Minio:
        env = compose_stack.env
        return Minio(f"127.0.0.1:{env['MINIO_PORT']}", env[f"S3_{stage}_ACCESS_KEY"], env[f"S3_{stage}_SECRET_KEY"],
                     secure=False)  # fmt: skip

    def refused(call) -> bool:
        try:
            call()
        except S3Error as exc:
            return exc.code == "AccessDenied"
        return False

    s3("LAKE_WRITER").put_object("lake", "probe/least-privilege.txt", io.BytesIO(b"x"), 1)
    assert s3("LAKE_READER").get_object("lake", "probe/least-privilege.txt").read() == b"x"
    assert refused(lambda: s3("LAKE_READER").put_object("lake", "probe/no.txt", io.BytesIO(b"x"), 1))
    assert refused(lambda: list(s3("LAKE_WRITER").list_objects("shop-exports")))
    assert refused(lambda: s3("EXPORTS_READER").put_object("shop-exports", "no.txt", io.BytesIO(b"x"), 1))
    assert refused(lambda: list(s3("EXPORTS_WRITER").list_objects("lake")))
    s3("LAKE_WRITER").remove_object("lake", "probe/least-privilege.txt")
    status, _ = call(f"http://127.0.0.1:{compose_stack.env['MINIO_PORT']}/lake?list-type=2")
    assert status == 403, status  # anonymous


def test_ecommerce_daily_runs_green_in_containers(compose_stack: ComposeStack):
    started = time.monotonic()
    tis = run_dag(compose_stack, RUN_DATE)
    compose_stack.timings["dag run"] = time.monotonic() - started
    assert tis["transform.dbt_producer_watcher"]["state"] == "success"
    # the marts are in the Postgres container, for this day
    (orders,) = warehouse_rows(compose_stack, "select count(*) from marts.orders")[0]
    (customers,) = warehouse_rows(compose_stack, "select count(*) from marts.customers")[0]
    assert orders > 0 and customers > 0, (orders, customers)
    # and the listener wrote metrics rows for this run and its tasks
    runs = warehouse_rows(
        compose_stack, "select state, tasks_total from metrics.dag_runs where dag_id = 'ecommerce_daily'"
    )
    assert ("success", len(tis)) in runs or any(state == "success" for state, _ in runs), runs
    (task_rows,) = warehouse_rows(
        compose_stack, "select count(*) from metrics.task_runs where dag_id = 'ecommerce_daily'"
    )[0]
    assert task_rows >= len([t for t in tis.values() if t["state"] == "success"]), task_rows
    # the lake got this day's marts (MinIO, bucket made by airflow-init)
    from minio import Minio

    s3 = Minio(f"127.0.0.1:{compose_stack.env['MINIO_PORT']}", compose_stack.env["S3_ACCESS_KEY"],
               compose_stack.env["S3_SECRET_KEY"], secure=False)  # fmt: skip
    keys = [o.object_name for o in s3.list_objects("lake", prefix="marts/", recursive=True)]
    assert any(f"ds={RUN_DATE}" in k for k in keys), keys[:20]


def test_celery_profile_runs_the_dag_on_two_workers(compose_stack: ComposeStack):
    """The same project, same images: the `celery` profile (Redis + 2 workers), CeleryExecutor."""
    # One task slot per worker: a worker then holds one task at a time (Airflow's Celery settings:
    # prefetch multiplier 1, late acks), so two tasks queued together run on two workers. With
    # two slots each, one worker could take every task of the run (1 run in 4 did, measured).
    with compose_stack.env_file.open("a") as fh:
        fh.write("AIRFLOW_EXECUTOR=CeleryExecutor\nAIRFLOW_CELERY_CONCURRENCY=1\n")
    started = time.monotonic()
    compose_stack.compose("up", "-d", "--scale", "airflow-worker=2", profiles=("celery",))
    compose_stack.wait_healthy(AIRFLOW_SERVICES | {"redis", "airflow-worker"})
    compose_stack.timings["celery up"] = time.monotonic() - started
    workers = [c for c in compose_stack.containers() if c["Labels"]["com.docker.compose.service"] == "airflow-worker"]
    assert len(workers) == 2, workers
    # each worker by every name Airflow may record for it (socket.getfqdn(): the container's
    # hostname, or a name the network's DNS answers with, with or without a domain)
    names: dict[str, str] = {}
    for c in workers:
        info = json.loads(compose_stack.podman("inspect", c["Id"]).stdout)[0]
        names |= {info["Config"]["Hostname"]: c["Id"], info["Name"].lstrip("/"): c["Id"]}

    def worker_of(hostname: str) -> str | None:
        return names.get(hostname) or names.get(hostname.split(".")[0])

    scheduler = compose_stack.podman("exec", f"{compose_stack.project}_airflow-scheduler_1", "env").stdout
    assert "AIRFLOW__CORE__EXECUTOR=CeleryExecutor" in scheduler.splitlines()
    started = time.monotonic()
    tis = run_dag(compose_stack, "2026-01-04")
    compose_stack.timings["celery dag run"] = time.monotonic() - started
    ran = [ti for ti in tis.values() if ti["state"] == "success"]
    # Measured: Cosmos's watcher sensors (one per dbt node, done when the producer's dbt build
    # reports the node) and the EmptyOperator finish without a worker and keep an empty hostname;
    # every other task (ingest, the dbt producer, publish, ...) ran on one of the two workers.
    without_worker = {ti["operator"] for ti in ran if not ti["hostname"]}
    assert without_worker <= {"RunSensor", "TestSensor", "SnapshotSensor", "SeedSensor", "EmptyOperator"}, [
        (ti["task_id"], ti["operator"]) for ti in ran if not ti["hostname"]
    ]
    by_host: dict[str, list[str]] = {}
    for ti in ran:
        if ti["hostname"]:
            by_host.setdefault(ti["hostname"], []).append(ti["task_id"])
    assert {worker_of(h) for h in by_host} == {c["Id"] for c in workers}, (by_host, names)
    assert worker_of(tis["transform.dbt_producer_watcher"]["hostname"]), (by_host, names)
    # the artifacts of the producer's dbt build and of dbt_docs were published through the lake,
    # whichever workers ran those tasks and publish_artifacts
    from minio import Minio

    lake = Minio(f"127.0.0.1:{compose_stack.env['MINIO_PORT']}", compose_stack.env["S3_LAKE_READER_ACCESS_KEY"],
                 compose_stack.env["S3_LAKE_READER_SECRET_KEY"], secure=False)  # fmt: skip
    run_id = tis["publish_artifacts"]["dag_run_id"]
    from include.pipeline.publish.artifacts import final_prefix

    prefix = final_prefix("ecommerce_daily", run_id)
    keys = {o.object_name for o in lake.list_objects("lake", prefix=prefix, recursive=True)}
    assert {prefix + "dbt_build/run_results.json", prefix + "dbt_docs/index.html"} <= keys, (prefix, keys)
    hosts = {t: tis[t]["hostname"] for t in ("transform.dbt_producer_watcher", "dbt_docs", "publish_artifacts")}
    print(f"celery: artifacts made and published on {hosts}")


def test_down_v_leaves_nothing_behind(compose_stack: ComposeStack):
    """Last in the module: `down -v` removes every container, volume and network of the project."""
    label = f"label=com.docker.compose.project={compose_stack.project}"
    assert compose_stack.podman("volume", "ls", "-q", "--filter", label).stdout.split()
    compose_stack.compose("down", "-v", "--remove-orphans", "--timeout", "20", profiles=("celery", "grafana"))
    assert compose_stack.podman("ps", "-aq", "--filter", label).stdout.split() == []
    assert compose_stack.podman("volume", "ls", "-q", "--filter", label).stdout.split() == []
    nets = compose_stack.podman("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert not [n for n in nets if n.startswith(compose_stack.project)], nets


def test_compose_env_generates_every_secret(tmp_path: Path):
    """`make compose-env`: every ${VAR:?} of docker-compose.yaml gets a value; a Fernet key is valid;
    a second run keeps the values (the Postgres volume was initialised with them)."""
    import re

    from cryptography.fernet import Fernet

    from include.pipeline.services.containers import ensure_compose_env
    from include.pipeline.settings import read_env_file

    path = tmp_path / ".env"
    ensure_compose_env(path)
    first = read_env_file(path)
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE_FILE.read_text()))
    assert required and required <= set(first), required - set(first)
    Fernet(first["AIRFLOW_FERNET_KEY"].encode())  # raises on a malformed key
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    ensure_compose_env(path)
    assert read_env_file(path) == first
