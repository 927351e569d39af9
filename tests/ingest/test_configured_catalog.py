"""The configured catalog the runtime gives a connector's `read`, and how it starts that read.

Connections synced before the runtime drove connectors itself were read with PyAirbyte's configured
catalog; the runtime builds the same one (include/airbyte_runtime/catalog.py), so the connector
reads those connections on exactly as before. Compared here with PyAirbyte's own catalog code (still
installed in .venv-airbyte), in the runtime's interpreter. The read's process (connector.py) gets a
widened stdout pipe and keeps its stderr's last lines for a failure's message.
"""

from __future__ import annotations

import json
import os
import subprocess

from include.pipeline.ingest import embedded
from tests.support import REPO_ROOT

LOAD_RUNNER = r"""
import fcntl, importlib.util, json, subprocess, sys, tempfile, os
import sys
# the repository after the venv's own paths: no folder of ours shadows a library
sys.path.append(".")
from include.airbyte_runtime import catalog as runner
"""

STREAM = {
    "json_schema": {"type": "object", "properties": {"id": {"type": "integer"}, "updated_at": {"type": "string"}}},
    "supported_sync_modes": ["full_refresh", "incremental"],
    "source_defined_cursor": True,
    "default_cursor_field": ["_ab_source_file_last_modified"],
}
CATALOG = {
    "streams": [
        {"name": "users", **STREAM},
        {"name": "products", **STREAM, "source_defined_primary_key": [["id"]]},
        {"name": "events", **STREAM, "supported_sync_modes": ["incremental"]},
    ]
}

COMPARE_CATALOGS = (
    LOAD_RUNNER
    + r"""
import airbyte as ab
from airbyte.shared.catalog_providers import CatalogProvider
from airbyte_protocol.models import AirbyteCatalog

catalog, cases = json.loads(sys.stdin.read())
out = []
for streams, full in cases:
    source = ab.get_source("source-test", config={}, local_executable=sys.executable, install_if_missing=False)
    source._discovered_catalog = AirbyteCatalog.model_validate(catalog)
    source.select_streams([s["name"] for s in streams])
    for s in streams:
        if s.get("cursor_field"):
            source.set_cursor_key(s["name"], s["cursor_field"])
        if s.get("primary_key"):
            source.set_primary_key(s["name"], list(s["primary_key"]))
    theirs = CatalogProvider(source.get_configured_catalog(force_full_refresh=full)).configured_catalog
    theirs = json.loads(theirs.model_dump_json(exclude_none=True))
    ours = runner.configured_catalog({"streams": streams}, catalog, [s["name"] for s in streams], full)
    out.append([ours, theirs])
print(json.dumps(out))
"""
)


def run_in_runtime(code: str, payload) -> subprocess.CompletedProcess:  # noqa: ANN001
    return subprocess.run(
        [str(embedded.runtime_python()), "-P", "-c", code],
        cwd=REPO_ROOT, input=json.dumps(payload), capture_output=True, text=True, timeout=180,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        | {"PYTHONWARNINGS": "ignore", "AIRBYTE_OFFLINE_MODE": "1", "DO_NOT_TRACK": "1"},
    )  # fmt: skip


def test_the_foreseen_catalog_is_the_one_pyairbyte_builds():
    cases = [
        # declared keys and cursors, every stream (in another order than the catalog's)
        (
            [
                {"name": "products", "primary_key": ["id"], "cursor_field": "updated_at"},
                {"name": "users", "primary_key": ["id"], "cursor_field": "updated_at"},
            ],
            False,
        ),  # fmt: skip
        # nothing declared: the connector's own cursor and key; a subset of the streams
        ([{"name": "products"}, {"name": "events"}], False),
        # a full refresh: full_refresh where the stream supports it, else incremental
        ([{"name": "users", "primary_key": ["id", "updated_at"]}, {"name": "events"}], True),
    ]
    proc = run_in_runtime(COMPARE_CATALOGS, [CATALOG, cases])
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout)
    assert len(results) == len(cases)
    for (streams, full), (ours, theirs) in zip(cases, results, strict=True):
        assert ours == theirs, (streams, full)
    # the cases do differ: a catalog that compared equal whatever the input would prove nothing
    assert [len(ours["streams"]) for ours, _ in results] == [2, 2, 2]
    assert results[2][0]["streams"][1]["sync_mode"] == "incremental"  # events: no full_refresh
    assert results[2][0]["streams"][0]["sync_mode"] == "full_refresh"


START = (
    LOAD_RUNNER
    + r"""
from include.airbyte_runtime import connector
tmp = tempfile.mkdtemp()
script = os.path.join(tmp, "source-test")
with open(script, "w") as f:
    f.write("#!/bin/sh\necho '{\"type\":\"LOG\"}'\necho 'failing on purpose' >&2\nexit 3\n")
os.chmod(script, 0o755)
process = connector.start_connector([script, "read"])
pipe = fcntl.fcntl(process.stdout.fileno(), fcntl.F_GETPIPE_SZ)
lines = list(iter(process.stdout.readline, ""))
code = process.wait()
import time
time.sleep(0.2)  # the stderr thread's last line
print(json.dumps({"pipe": pipe, "lines": lines, "code": code, "stderr": process.stderr_tail()}))
"""
)


def test_the_read_s_pipe_is_widened_and_its_stderr_kept_for_a_failure():
    proc = run_in_runtime(START, None)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    with open("/proc/sys/fs/pipe-max-size", encoding="ascii") as f:
        wide = min(8 << 20, int(f.read()))  # connector.PIPE_BYTES, capped by the system
    assert wide > 64 * 1024 and out["pipe"] == wide
    assert out == {"pipe": wide, "lines": ['{"type":"LOG"}\n'], "code": 3, "stderr": ["failing on purpose"]}
