"""The source-s3 venv reaches nothing at run time: no nltk download, no telemetry.

Every HTTP(S) client the connector uses honours HTTP(S)_PROXY, so the connector runs with a
proxy that is a local socket recording who knocks: any call out would show up there instead of
failing quietly against the missing internet. Without `make setup`'s offline preparation
(include/pipeline/ingest/connectors.py) this test sees nltk's three downloads and unstructured's
telemetry request."""

from __future__ import annotations

import os
import socket
import subprocess
import threading

from include.pipeline import settings
from include.pipeline.ingest.connectors import NLTK_PLACEHOLDERS, OFFLINE_ENV, PTH_NAME
from include.pipeline.ingest.embedded import connector_executable


class KnockRecorder:
    """A TCP listener on 127.0.0.1 that records the first bytes of every connection."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.knocks: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    self.knocks.append(conn.recv(200))
                except OSError:
                    self.knocks.append(b"?")

    def close(self):
        self.sock.close()


def test_the_source_s3_venv_is_prepared_for_offline_runs():
    venv = settings.REPO_ROOT / ".venv-source-s3"
    assert all((venv / "nltk_data" / name).exists() for name in NLTK_PLACEHOLDERS)
    [pth] = venv.glob(f"lib/python*/site-packages/{PTH_NAME}")
    assert all(key in pth.read_text() for key in OFFLINE_ENV)


def test_source_s3_starts_without_calling_out():
    recorder = KnockRecorder()
    proxy = f"http://127.0.0.1:{recorder.port}"
    env = {
        k: v for k, v in os.environ.items() if k not in ("DO_NOT_TRACK", "SCARF_NO_ANALYTICS", "NO_PROXY", "no_proxy")
    }
    env.update(HTTP_PROXY=proxy, HTTPS_PROXY=proxy, http_proxy=proxy, https_proxy=proxy)
    try:
        spec = subprocess.run(
            [str(connector_executable("source-s3")), "spec"], capture_output=True, text=True, env=env, timeout=300
        )
    finally:
        recorder.close()
    assert spec.returncode == 0 and '"connectionSpecification"' in spec.stdout, spec.stderr[-2000:]
    assert recorder.knocks == [], f"the connector called out through the proxy: {recorder.knocks}"
    assert "nltk_data" not in spec.stderr, spec.stderr[-2000:]
