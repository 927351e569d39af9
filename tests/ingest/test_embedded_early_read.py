"""The embedded runner's early read: the connector's `read` started before PyAirbyte loads.

The runner foresees the command PyAirbyte will run (config, configured catalog, state) and starts
it first; PyAirbyte's own command is then compared with it, and the early process is used only if
they are the same (see EarlyRead in include/airbyte_runtime/early.py). These run in the
embedded runtime's own interpreter (.venv-airbyte), against PyAirbyte's real catalog code, so an
upgrade that changes what PyAirbyte sends fails here instead of silently starting every read twice.
The adoption in real syncs (fresh, with state, full refresh) is in test_connector_metadata_cache.py.
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
from include.airbyte_runtime import early as runner
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


ADOPT = (
    LOAD_RUNNER
    + r"""
tmp = tempfile.mkdtemp()
connector = os.path.join(tmp, "source-test")
with open(connector, "w") as f:
    f.write("#!/bin/sh\nexec sleep 60\n")
os.chmod(connector, 0o755)
catalog = json.loads(sys.stdin.read())
spec = {"connector": "source-test", "executable": connector, "config": {"bucket": "b", "key": "s3cr3t"},
        "streams": [{"name": "users", "sync_mode": "incremental_deduped_history", "primary_key": ["id"]}],
        "full_refresh": True, "work_dir": tmp}
cached = {"spec": {}, "catalog": catalog}

def pyairbyte_args(catalog_change=None, config=None):
    paths = []
    _, full, names = runner.read_groups(spec)[0]  # what the runner asks PyAirbyte to read
    expected = runner.configured_catalog(spec, catalog, names, full)
    if catalog_change:
        expected["streams"][0].update(catalog_change)
    for content in (config or spec["config"], expected, []):
        descriptor, path = tempfile.mkstemp(prefix="pyairbyte-", suffix=".json", dir=tmp)
        with os.fdopen(descriptor, "w") as f:
            json.dump(content, f)
        paths.append(path)
    return [connector, "read", "--config", paths[0], "--catalog", paths[1], "--state", paths[2]]

pipes = {"stdin": None, "stdout": subprocess.PIPE, "stderr": subprocess.DEVNULL,
         "universal_newlines": True, "encoding": "utf-8"}
out = {}
for case, args, kwargs in (
    ("same", pyairbyte_args(), pipes),
    ("other catalog", pyairbyte_args({"sync_mode": "full_refresh"}), pipes),
    ("other config", pyairbyte_args(config={"bucket": "other", "key": "s3cr3t"}), pipes),
    ("other pipes", pyairbyte_args(), {**pipes, "stderr": None}),
    ("other command", [connector, "check", "--config", "x"], pipes),
):
    early = runner.EarlyRead(spec, cached)
    started = early.process
    files = list(early._files)
    pipe = fcntl.fcntl(started.stdout.fileno(), fcntl.F_GETPIPE_SZ)
    adopted = early.adopt(args, kwargs)
    out[case] = {"adopted": adopted is started, "none": adopted is None, "running": started.poll() is None}
    out[case]["pipe"] = pipe
    early.close()
    out[case]["files_left"] = [p for p in files if os.path.exists(p)]
    started.kill()
    started.wait()
# a connector PyAirbyte starts itself, through the hook: its stdout pipe widened too
runner.hook_connector_start(None)
from airbyte._executors import base
process = base.subprocess.Popen([connector], **pipes)
out["pyairbyte_pipe"] = fcntl.fcntl(process.stdout.fileno(), fcntl.F_GETPIPE_SZ)
process.kill()
process.wait()
print(json.dumps(out))
"""
)


def test_an_early_read_is_used_only_for_the_very_command_pyairbyte_runs():
    proc = run_in_runtime(ADOPT, CATALOG)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    with open("/proc/sys/fs/pipe-max-size", encoding="ascii") as f:
        wide = min(8 << 20, int(f.read()))  # connector.PIPE_BYTES, capped by the system
    assert wide > 64 * 1024 and out.pop("pyairbyte_pipe") == wide
    assert {out[case].pop("pipe") for case in out} == {wide}
    assert out["same"] == {"adopted": True, "none": False, "running": True, "files_left": []}
    for case in ("other catalog", "other config", "other pipes", "other command"):
        # not handed over, and stopped at once: PyAirbyte starts its own, nothing reads twice
        assert out[case] == {"adopted": False, "none": True, "running": False, "files_left": []}, case
    log = proc.stdout
    assert "another catalog at streams[0].sync_mode" in log
    assert "another config" in log and "s3cr3t" not in log  # where a config differs, not its values
    assert "other pipes" in log and "another command: " in log
