"""One compose stack for the module: the project image and the stand-ins built (or found in the
cache), docker-compose.yaml started under podman, everything removed at the end, pass or fail."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.compose import engine

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
PROFILES = ("celery", "grafana")  # down removes the services of every profile


def ensure_tools() -> None:
    """Install podman & co. as root (.ci/ensure-podman), or fail with the command to run."""
    result = subprocess.run([str(REPO / ".ci" / "ensure-podman")], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f".ci/ensure-podman failed:\n{result.stdout}{result.stderr}", pytrace=False)


def free_port() -> int:
    """A free 127.0.0.1 port for a published container port, BELOW the kernel's ephemeral range.

    podman (netavark) forwards a published port with a DNAT rule on 127.0.0.1:<port>, and a
    container that dies without its network cleanup leaves that rule behind. A port from the
    ephemeral range (what `bind(0)` hands every other test's server) could then be taken later
    by, say, the fake Airbyte API: the kernel lets it listen, but every connection to it is
    sent to the dead container and refused. Ports below the range are never handed out by
    `bind(0)`, so a leftover rule can only ever shadow another compose stack's choice."""
    import random
    import socket

    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for port in random.sample(range(max(1024, low - 12000), low), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port on 127.0.0.1 below the ephemeral range ({low})")


def image_key() -> str:
    """The project image's tag: the hash of its build context (what .dockerignore lets in)."""
    files = ["Dockerfile", ".dockerignore", "requirements.txt", "airflow_settings.yaml", "compose/healthcheck.py"]
    parts = [(REPO / f).read_bytes() for f in files]
    for folder in ("include", "dags", "plugins"):
        for path in sorted((REPO / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and not {"target", "logs"} & set(path.parts):
                parts.append(str(path.relative_to(REPO)).encode() + path.read_bytes())
    return engine._digest(*parts)


@dataclass
class ComposeStack:
    podman: engine.Podman
    project: str
    env_file: Path
    docker_host: str
    env: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)

    def compose(self, *args: str, profiles: tuple[str, ...] = (), timeout: float = 900, check: bool = True):
        cmd = ["docker-compose", "-p", self.project, "-f", str(COMPOSE_FILE), "--env-file", str(self.env_file)]
        for profile in profiles:
            cmd += ["--profile", profile]
        result = subprocess.run(
            [*cmd, *args], cwd=REPO, env={**os.environ, "DOCKER_HOST": self.docker_host},
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise AssertionError(
                f"docker-compose {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-4000:]}"
            )
        return result

    def containers(self, all_: bool = False) -> list[dict]:
        args = ["ps", "--format", "json", "--filter", f"label=com.docker.compose.project={self.project}"]
        out = self.podman(*args, *(["--all"] if all_ else [])).stdout
        return json.loads(out or "[]")

    def service_states(self) -> dict[str, str]:
        """{service: status} of the project's containers (status as `podman ps` prints it; the
        least healthy one when a service has several containers)."""
        states: dict[str, str] = {}
        for c in self.containers(all_=True):
            service, status = c["Labels"]["com.docker.compose.service"], c.get("Status", "")
            if "(healthy)" not in status or service not in states:
                states[service] = status
        return states

    def wait_healthy(self, services: set[str], timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while True:
            states = self.service_states()
            if all("(healthy)" in states.get(s, "") for s in services):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"not healthy after {timeout:.0f} s: {states}\n{self.logs()}")
            time.sleep(3)

    def logs(self, tail: int = 40) -> str:
        return self.compose("logs", "--no-color", f"--tail={tail}", check=False, profiles=PROFILES).stdout[-12000:]

    def down(self) -> None:
        """compose down -v, then remove whatever is left with the project's label (a failed start)."""
        self.compose("down", "-v", "--remove-orphans", "--timeout", "20", profiles=PROFILES, check=False)
        label = f"label=com.docker.compose.project={self.project}"
        ids = self.podman("ps", "-aq", "--filter", label, check=False).stdout.split()
        if ids:
            self.podman("rm", "-f", "-v", *ids, check=False)
        vols = self.podman("volume", "ls", "-q", "--filter", label, check=False).stdout.split()
        if vols:
            self.podman("volume", "rm", "-f", *vols, check=False)
        nets = self.podman("network", "ls", "-q", "--filter", label, check=False).stdout.split()
        if nets:
            self.podman("network", "rm", "-f", *nets, check=False)


AIRFLOW_SERVICES = {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"}
CORE_SERVICES = {"postgres", "minio", *AIRFLOW_SERVICES}


@pytest.fixture(scope="module")
def podman() -> engine.Podman:
    ensure_tools()
    return engine.Podman()


@pytest.fixture(scope="module")
def compose_stack(podman: engine.Podman, tmp_path_factory) -> ComposeStack:
    """docker-compose.yaml up (default profile), every service healthy; down -v at the end."""
    from include.pipeline.services.containers import ensure_compose_env

    timings: dict[str, float] = {}
    started = time.monotonic()
    built = engine.standin_images(podman)
    timings["standins"] = time.monotonic() - started
    timings.update({f"standin {k}": v for k, v in built.items()})
    image = f"localhost/airflow-data-stack:{image_key()}"
    started = time.monotonic()
    if not podman.image_exists(image):
        engine.build_project_image(podman, REPO, image)
        engine.drop_stale_project_images(podman, keep=image)
    timings["image"] = time.monotonic() - started

    tmp = tmp_path_factory.mktemp("compose")
    env_file = tmp / ".env"
    ensure_compose_env(env_file)
    ports = {"AIRFLOW_PORT": free_port(), "POSTGRES_PORT": free_port(), "MINIO_PORT": free_port()}
    with env_file.open("a") as fh:
        fh.write(
            f"AIRFLOW_IMAGE={image}\nAIRFLOW_USE_JOB_SCHEDULE=False\n" + "".join(f"{k}={v}\n" for k, v in ports.items())
        )
    from include.pipeline.settings import read_env_file

    project = f"stacktest{os.getpid()}"
    socket = Path("/tmp") / f"{project}.sock"  # a unix socket path must stay under 108 bytes
    service = podman.serve(socket)
    ticker = engine.HealthTicker(podman, project)
    ticker.start()
    stack = ComposeStack(podman, project, env_file, f"unix://{socket}", read_env_file(env_file), timings)
    try:
        started = time.monotonic()
        try:
            stack.compose("up", "-d")
        except AssertionError as exc:  # say why: the failed containers' last lines
            raise AssertionError(f"{exc}\n--- logs ---\n{stack.logs()}") from None
        stack.wait_healthy(CORE_SERVICES)
        timings["up"] = time.monotonic() - started
        yield stack
    finally:
        stack.down()
        ticker.stop()
        service.terminate()
        service.wait(timeout=30)
        socket.unlink(missing_ok=True)
        print("\ncompose timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
