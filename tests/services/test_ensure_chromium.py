"""`make test` on a fresh Debian machine (issue 10): the dashboard test's Chromium is installed
when missing and we are root, otherwise the run stops with the exact command (.ci/ensure-chromium)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.support import REPO_ROOT

SCRIPT = REPO_ROOT / ".ci" / "ensure-chromium"
INSTALL = "apt-get -o APT::Sandbox::User=root install -y --no-install-recommends chromium"


def run(env: dict[str, str], *, as_nobody: bool = False) -> subprocess.CompletedProcess:
    cmd = ["runuser", "-u", "nobody", "--", str(SCRIPT)] if as_nobody else [str(SCRIPT)]
    return subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)


def test_present_chromium_needs_nothing(tmp_path):
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    (tmp_path / "bash").symlink_to(shutil.which("bash"))
    done = run({"CHROMIUM": str(fake), "PATH": str(tmp_path)})  # bash only: no apt-get could be called
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_missing_chromium_without_root_stops_with_the_exact_command(tmp_path):
    done = run({"CHROMIUM": str(tmp_path / "missing")}, as_nobody=os.geteuid() == 0)
    assert done.returncode == 2
    assert f"sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive {INSTALL}" in done.stderr, done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="the install branch runs as root only (the test above covers the rest)")
def test_missing_chromium_as_root_is_installed_with_apt_get(tmp_path):
    """apt-get here is a stand-in on PATH that records its arguments and installs the file."""
    chromium = tmp_path / "chromium"
    calls = tmp_path / "calls"
    apt = tmp_path / "bin" / "apt-get"
    apt.parent.mkdir()
    apt.write_text(
        f'#!/bin/sh\necho "$@" >> {calls}\n'
        f'case "$*" in *" install "*) printf "#!/bin/sh\\n" > {chromium}; chmod +x {chromium};; esac\n'
    )
    apt.chmod(0o755)
    done = run({"CHROMIUM": str(chromium), "PATH": f"{apt.parent}:{os.environ['PATH']}"})
    assert done.returncode == 0, done.stderr
    assert calls.read_text().splitlines() == [
        "-o APT::Sandbox::User=root update -qq",
        f"{INSTALL.removeprefix('apt-get ')} -qq",
    ]
    assert os.access(chromium, os.X_OK)
