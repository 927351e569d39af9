"""The embedded runner reads a connector's output ahead of its own reading (ConnectorOutput).

A thread moves the connector's stdout into memory as it comes, so the connector never waits on the
runner (while a stream commits, or during slow rows), and the runner reads it line by line as
from a text pipe. These run in the embedded runtime's interpreter (.venv-airbyte) against a
real pipe; the whole path in real syncs is in test_connector_metadata_cache.py and the write path tests.
"""

from __future__ import annotations

import json
import os
import subprocess

from include.pipeline.ingest import embedded
from tests.support import REPO_ROOT

RUN = r"""
import importlib.util, io, json, os, sys, threading, time
sys.path.append(".")  # the repository after the venv's own paths
from include.airbyte_runtime import connector as runner
case = sys.argv[1]
out = {}
if case == "lines":
    # what a text pipe reads, cut in awkward places: inside a line, inside a multibyte character
    lines = ['{"type":"RECORD","record":{"data":{"name":"é 漢字 🎉"}}}\n', "\n", "a log line\n",
             '{"type":"LOG","log":{"message":"line\u2028separator and \u0085 next-line inside"}}\n',
             "x" * 70000 + "\n", "the last line, without a newline"]
    data = "".join(lines).encode("utf-8")
    read_end, write_end = os.pipe()
    def write():
        with os.fdopen(write_end, "wb", buffering=0) as w:
            for i in range(0, len(data), 7):
                w.write(data[i:i + 7])
    threading.Thread(target=write).start()
    output = runner.ConnectorOutput(os.fdopen(read_end, "rb"), budget=64)  # holds little: the thread waits
    got = []
    while line := output.readline():
        got.append(line)
    output.close()
    expected = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8").readlines()
    out = {"same": got == expected, "got": got[:4], "count": len(got), "expected_count": len(expected)}
elif case == "ahead":
    # the connector writes 8 MiB while nobody reads a line yet: it must not wait (a pipe holds <= 1 MiB)
    read_end, write_end = os.pipe()
    output = runner.ConnectorOutput(os.fdopen(read_end, "rb"))
    done = threading.Event()
    line = b"y" * 1023 + b"\n"
    def write():
        with os.fdopen(write_end, "wb") as w:
            for _ in range(8192):
                w.write(line)
        done.set()
    threading.Thread(target=write, daemon=True).start()
    out["writer_done_before_any_readline"] = done.wait(30)
    count = 0
    while output.readline():
        count += 1
    out["lines"] = count
    output.close()
elif case == "close":
    # closed early (PyAirbyte stops reading), the thread waiting with a full budget: nothing hangs
    read_end, write_end = os.pipe()
    output = runner.ConnectorOutput(os.fdopen(read_end, "rb"), budget=1024)
    done = threading.Event()
    def write():
        try:
            with os.fdopen(write_end, "wb") as w:
                for _ in range(64):
                    w.write(b"z" * (1 << 16))
        except BrokenPipeError:
            out["writer_saw"] = "broken pipe"
        done.set()
    threading.Thread(target=write, daemon=True).start()
    time.sleep(0.5)
    output.close()
    out["writer_done"] = done.wait(30)
    time.sleep(0.5)
    out["reader_threads"] = [t.name for t in threading.enumerate() if t.name == "connector-output"]
print(json.dumps(out))
"""


def run_case(case: str) -> dict:
    done = subprocess.run(
        [str(embedded.runtime_python()), "-P", "-c", RUN, case], cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=120, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONWARNINGS": "ignore"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_lines_are_read_as_from_a_text_pipe_whatever_the_chunks():
    out = run_case("lines")
    assert out["count"] == out["expected_count"] == 6, out
    assert out["same"], out["got"]


def test_the_connector_never_waits_for_the_runner_to_read():
    out = run_case("ahead")
    assert out["writer_done_before_any_readline"], "the connector blocked on a full pipe"
    assert out["lines"] == 8192


def test_closing_early_leaves_neither_the_connector_nor_the_thread_waiting():
    out = run_case("close")
    assert out["writer_done"], "the connector blocked on a pipe nobody reads"
    assert out["writer_saw"] == "broken pipe"  # as when PyAirbyte closes its own pipe
    assert out["reader_threads"] == []
