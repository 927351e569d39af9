"""Podman, set up the way it works on these machines, and the stand-in images the compose tests use.

Measured facts (issue 13): as root, Debian's podman 4.3 runs containers with runc (crun fails on
this host's hybrid cgroups), cgroupfs, file events logging, default ulimits nofile 20000 and nproc
32768 (higher ones fail with "setrlimit ... operation not permitted"), overlay storage. No registry
is reachable, so the third-party images are local stand-ins (tests/compose/standins) tagged with the
official names. Debian's docker-compose drives `podman system service` (podman-compose ignores
`condition: service_healthy` below podman 4.6). Without systemd, podman schedules no healthcheck,
so `HealthTicker` runs them, as systemd's timers would.

Everything lives in a cache directory outside the repo (STACK_CONTAINER_CACHE, default
~/.cache/airflow-data-stack/containers): the debootstrap tarball and the images, keyed by the hash
of what they are built from, so a second run on the same machine builds nothing it has.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STANDINS = HERE / "standins"
CACHE = Path(os.environ.get("STACK_CONTAINER_CACHE", Path.home() / ".cache" / "airflow-data-stack" / "containers"))
DEBIAN_MIRROR = os.environ.get("STACK_DEBIAN_MIRROR", "http://deb.debian.org/debian")
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")

# The official names docker-compose.yaml uses, and the stand-in that answers to each.
OFFICIAL = {
    "python": "docker.io/library/python:3.11-slim-bookworm",
    "postgres": "docker.io/library/postgres:15-bookworm",
    "minio": "docker.io/minio/minio:RELEASE.2025-04-22T22-12-26Z",
    "redis": "docker.io/library/redis:7.2-bookworm",
}

CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
# Debian puts netavark and aardvark-dns here; a CONTAINERS_CONF replaces the distribution's file
helper_binaries_dir = ["/usr/lib/podman", "/usr/libexec/podman", "/usr/local/lib/podman"]
[network]
network_backend = "netavark"
"""

REGISTRIES_CONF = """\
unqualified-search-registries = ["docker.io"]
short-name-mode = "permissive"
"""


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def _tree_bytes(folder: Path) -> bytes:
    """Every file under `folder` (name, mode and content) as one byte string, for hashing."""
    out = b""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        out += str(path.relative_to(folder)).encode() + oct(path.stat().st_mode & 0o777).encode() + path.read_bytes()
    return out


class Podman:
    """`podman` with this project's configuration files, storage in the cache directory."""

    def __init__(self, cache: Path = CACHE) -> None:
        self.cache = cache
        self.conf = cache / "conf"
        self.conf.mkdir(parents=True, exist_ok=True)
        graphroot = cache / "storage"
        # runroot holds sockets and locks: short, on local disk, one per graphroot
        runroot = Path("/tmp") / f"stack-podman-{_digest(str(graphroot).encode())[:8]}"
        storage = f'[storage]\ndriver = "overlay"\ngraphroot = "{graphroot}"\nrunroot = "{runroot}"\n'
        for name, text in (
            ("containers.conf", CONTAINERS_CONF),
            ("storage.conf", storage),
            ("registries.conf", REGISTRIES_CONF),
        ):
            path = self.conf / name
            if not path.exists() or path.read_text() != text:
                path.write_text(text)
        self.env = {
            **os.environ,
            "CONTAINERS_CONF": str(self.conf / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(self.conf / "storage.conf"),
            "CONTAINERS_REGISTRIES_CONF": str(self.conf / "registries.conf"),
        }

    def __call__(self, *args: str, check: bool = True, capture: bool = True, **kw) -> subprocess.CompletedProcess:
        result = subprocess.run(
            ["podman", *args], env=self.env, text=True, capture_output=capture, check=False, **kw
        )  # fmt: skip
        if check and result.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args)} failed ({result.returncode}):\n{result.stderr or ''}")
        return result

    def image_exists(self, ref: str) -> bool:
        return self("image", "exists", ref, check=False).returncode == 0

    def build(
        self,
        context: Path,
        tag: str,
        *,
        file: Path | None = None,
        args: dict[str, str] | None = None,
        volumes: dict[Path, str] | None = None,
        no_cache: bool = False,
    ) -> float:
        """Build `context` as `tag` (never pulling), with `volumes` ({host dir: path in the build})
        mounted in every RUN; return the seconds it took."""
        started = time.monotonic()
        cmd = ["build", "--pull=never", "--layers", "-t", tag]
        if no_cache:
            cmd.append("--no-cache")
        if file is not None:
            cmd += ["-f", str(file)]
        for key, value in (args or {}).items():
            cmd += ["--build-arg", f"{key}={value}"]
        for host, inside in (volumes or {}).items():
            cmd += ["-v", f"{host}:{inside}"]
        result = self(*cmd, str(context), check=False)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
            raise RuntimeError(f"podman build of {context} failed ({result.returncode}):\n{tail}")
        return time.monotonic() - started

    def serve(self, socket: Path) -> subprocess.Popen:
        """`podman system service` on a unix socket: the Docker API that docker-compose drives."""
        socket.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{socket}"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not socket.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"podman system service did not open {socket}")
            time.sleep(0.1)
        return proc


def host_uv_cache() -> Path | None:
    """The host's uv cache (`make setup` fills it with every wheel the image installs), or None."""
    found = subprocess.run(["uv", "cache", "dir"], capture_output=True, text=True, check=False)
    path = Path(found.stdout.strip()) if found.returncode == 0 and found.stdout.strip() else None
    return path if path is not None and path.is_dir() else None


# Where the host's uv cache appears inside a project-image build (the Dockerfile's UV_CACHE_DIR arg)
UV_CACHE_IN_BUILD = "/host-uv-cache"


def build_project_image(podman: Podman, context: Path, tag: str, *, no_cache: bool = False) -> float:
    """Build the project's Dockerfile as `tag`, installing from the host's uv cache when there is
    one (read and filled in place: local wheels instead of ~300 s of downloads, and a cold build
    adds what it fetched for the next one). The Dockerfile is the one users build; only a build
    arg and a mount differ, and neither stays in the image."""
    cache = host_uv_cache()
    args = {"UV_CACHE_DIR": UV_CACHE_IN_BUILD} if cache else {}
    volumes = {cache: UV_CACHE_IN_BUILD} if cache else {}
    return podman.build(context, tag, args=args, volumes=volumes, no_cache=no_cache)


def drop_stale_project_images(podman: Podman, keep: str) -> list[str]:
    """Remove the project images tagged with an older build-context hash than `keep` (each is
    ~2.9 GB: without this the cache grows by one image at every change under include/)."""
    repo, _, current = keep.rpartition(":")
    listed = podman("images", "--format", "{{.Repository}}:{{.Tag}}", repo, check=False).stdout.split()
    stale = [
        ref
        for ref in listed
        if ref.startswith(f"{repo}:") and ref != keep and re.fullmatch(r"[0-9a-f]{16}", ref.rpartition(":")[2])
    ]
    if stale:
        podman("rmi", *stale, check=False)
    return stale


def base_image(podman: Podman) -> str:
    """The stand-in base: debootstrap minbase bookworm + the host's CA certificates, imported."""
    cas = sorted(HOST_CA_DIR.glob("*.crt"))
    key = _digest(b"minbase bookworm ca-certificates 1", DEBIAN_MIRROR.encode(), *(p.read_bytes() for p in cas))
    tag = f"localhost/stack-standin-base:{key}"
    if podman.image_exists(tag):
        return tag
    tarball = podman.cache / f"base-{key}.tar"
    if not tarball.exists():
        root = podman.cache / f"rootfs-{key}"
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=ca-certificates", "bookworm", str(root), DEBIAN_MIRROR],
            check=True, capture_output=True,
        )  # fmt: skip
        for ca in cas:  # the proxy's CA: HTTPS from inside builds (pip, uv) goes through it
            shutil.copy(ca, root / "usr/local/share/ca-certificates" / ca.name)
        subprocess.run(["chroot", str(root), "update-ca-certificates"], check=True, capture_output=True)
        shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
        shutil.rmtree(root / "var/lib/apt/lists", ignore_errors=True)
        (root / "var/lib/apt/lists/partial").mkdir(parents=True)
        partial = tarball.with_suffix(".partial")
        with tarfile.open(partial, "w") as tar:
            tar.add(root, arcname=".")
        partial.rename(tarball)
        shutil.rmtree(root)
    bundle = "/etc/ssl/certs/ca-certificates.crt"
    podman(
        "import",
        *("--change", 'CMD ["/bin/bash"]'),
        *("--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        # Python tools read these rather than the system store (pip's certifi, uv's own roots)
        *("--change", f"ENV SSL_CERT_FILE={bundle} PIP_CERT={bundle} REQUESTS_CA_BUNDLE={bundle}"),
        str(tarball),
        tag,
    )
    return tag


def standin_images(
    podman: Podman, names: tuple[str, ...] = ("python", "postgres", "minio", "redis")
) -> dict[str, float]:
    """Build (or find cached) every stand-in and tag it with its official name; {name: seconds built}."""
    base = base_image(podman)
    built: dict[str, float] = {}
    tags: dict[str, str] = {}
    order = ["python", *[n for n in names if n != "python"]]  # minio builds on the python stand-in
    for name in order:
        folder = STANDINS / name
        parent = tags["python"] if name == "minio" else base
        tag = f"localhost/stack-standin-{name}:{_digest(parent.encode(), _tree_bytes(folder))}"
        if not podman.image_exists(tag):
            built[name] = podman.build(
                folder, tag, file=folder / "Containerfile", args={"BASE": base, "PYTHON": parent}
            )
        podman("tag", tag, OFFICIAL[name])
        tags[name] = tag
    return built


class HealthTicker(threading.Thread):
    """Run the healthchecks of a compose project's containers every `interval` seconds (podman
    schedules them with systemd timers, and there is no systemd here)."""

    def __init__(self, podman: Podman, project: str, interval: float = 3) -> None:
        super().__init__(daemon=True, name=f"health-{project}")
        self.podman, self.project, self.interval = podman, project, interval
        self.stopping = threading.Event()

    def run(self) -> None:
        last: dict[str, float] = {}
        while not self.stopping.wait(self.interval):
            listed = self.podman(
                "ps", "--filter", f"label=com.docker.compose.project={self.project}", "--format", "{{.ID}} {{.Status}}",
                check=False,
            )  # fmt: skip
            for line in listed.stdout.splitlines():
                cid, _, status = line.partition(" ")
                if "(" not in status:  # "Up 3 seconds (starting)": has a healthcheck
                    continue
                # until healthy at every tick, then every 10 ticks (Airflow's checks cost a Python start)
                period = self.interval * (10 if "(healthy)" in status else 1)
                if time.monotonic() - last.get(cid, 0) >= period:
                    last[cid] = time.monotonic()
                    self.podman("healthcheck", "run", cid, check=False)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)
