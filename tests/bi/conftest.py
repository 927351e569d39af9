"""One real Superset (`make bi`'s entry point) over the session's end-to-end stack, for the module."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from include.pipeline.services import find_free_port
from include.pipeline.settings import read_env_file
from tests.support import REPO_ROOT


class Superset:
    def __init__(self, url: str, proc: subprocess.Popen, env: dict[str, str], stack):
        self.url, self.proc, self.env, self.stack = url, proc, env, stack
        self._token: str | None = None

    @property
    def password(self) -> str:
        return read_env_file(self.stack.root / ".env")["SUPERSET_ADMIN_PASSWORD"]

    def request(self, path: str, body: dict | None = None, anonymous: bool = False) -> tuple[int, dict]:
        headers = {} if body is None else {"Content-Type": "application/json"}
        if not anonymous:
            headers["Authorization"] = f"Bearer {self.token()}"
        req = urllib.request.Request(  # noqa: S310 - http://127.0.0.1
            self.url + path, data=None if body is None else json.dumps(body).encode(), headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=120) as response:  # noqa: S310 - http://127.0.0.1
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            text = exc.read()
            try:
                return exc.code, json.loads(text)
            except ValueError:
                return exc.code, {"body": text.decode(errors="replace")[:500]}

    def token(self) -> str:
        if self._token is None:
            status, body = self.request(
                "/api/v1/security/login",
                {"username": "admin", "password": self.password, "provider": "db", "refresh": False},
                anonymous=True,
            )
            assert status == 200, f"admin cannot log in with SUPERSET_ADMIN_PASSWORD from .env: {status} {body}"
            self._token = body["access_token"]
        return self._token


@pytest.fixture(scope="module")
def superset(stack):
    port = find_free_port()
    env = {**stack.env, "BI_PORT": str(port), "STACK_BI_NO_SERVICES": "1"}
    log = stack.root / f"superset-{port}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "include.bi.run"], cwd=REPO_ROOT, env=env,
        stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:  # noqa: S310
                    if response.read() == b"OK":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() - started > 300:
                raise AssertionError(f"`make bi` did not answer {url}/health:\n{log.read_text()[-4000:]}")
            time.sleep(0.5)
        print(f"superset: /health answered {time.monotonic() - started:.1f} s after the start")
        yield Superset(url, proc, env, stack)
    finally:
        if proc.poll() is None:
            proc.terminate()  # SIGTERM: what a process manager or `make` sends
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired as exc:
                proc.kill()
                raise AssertionError(
                    f"`make bi` did not stop within 30 s of SIGTERM:\n{log.read_text()[-3000:]}"
                ) from exc
