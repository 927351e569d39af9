"""`make test` / `.ci/run` on a fresh Debian: the compose tests' packages are installed when
missing and we are root, otherwise the run stops with the exact command (.ci/ensure-podman)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "ensure-podman"


def run(packages: str, *, as_nobody: bool = False) -> subprocess.CompletedProcess:
    cmd = ["runuser", "-u", "nobody", "--", str(SCRIPT)] if as_nobody else [str(SCRIPT)]
    env = {**os.environ, "STACK_PODMAN_PACKAGES": packages}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)


def test_installed_packages_need_nothing():
    done = run("bash coreutils")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_missing_package_without_root_stops_with_the_exact_command():
    done = run("bash stack-no-such-package", as_nobody=os.geteuid() == 0)
    assert done.returncode == 2
    install = "apt-get -o APT::Sandbox::User=root install -y --no-install-recommends stack-no-such-package"
    assert f"sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive {install}" in done.stderr, done.stderr
