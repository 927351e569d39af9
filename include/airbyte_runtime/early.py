"""The connector's spec, discover and read, started beside PyAirbyte's import rather than after it.

Importing PyAirbyte takes seconds of one core and a connector's start seconds of the other; asked
one after the other, as PyAirbyte does, a sync waits for both. What can be foreseen (the metadata
cache's answers, the configured catalog, the stored state) is started first; PyAirbyte's own
command is compared with it, and any difference costs time, never data.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import types
from typing import Any

import orjson  # a PyAirbyte dependency, in .venv-airbyte

from include.airbyte_runtime.catalog import configured_catalog, first_difference, read_groups, same_state, stored_state
from include.airbyte_runtime.connector import ConnectorOutput, start_connector, widen_pipe
from include.airbyte_runtime.metadata_cache import metadata_cache_path
from include.airbyte_runtime.report import log


def hook_connector_start(early: EarlyRead | None) -> None:
    """Route PyAirbyte's connector starts through `early` (a `read` it started already) and `widen_pipe`.

    PyAirbyte starts every connector command in `airbyte._executors.base._stream_from_subprocess`
    with that module's `subprocess.Popen`; the module gets a copy of `subprocess` whose Popen first
    offers the command to `early` (which hands over its process only if the command reads exactly
    what it started), else starts it as before, then widens its stdout pipe; a `read`'s stdout is
    read ahead by `ConnectorOutput`. Reading line by line, errors, exit
    codes and termination stay PyAirbyte's.
    """
    import subprocess

    from airbyte._executors import base

    def popen(args, **kwargs):  # noqa: ANN001, ANN202
        process = early.adopt(args, kwargs) if early is not None else None
        if process is None:
            process = subprocess.Popen(args, **kwargs)
            if kwargs.get("stdout") == subprocess.PIPE:
                widen_pipe(process.stdout)
                if len(args) > 1 and args[1] == "read":
                    process.stdout = ConnectorOutput(process.stdout)
        return process

    names = {name: getattr(subprocess, name) for name in dir(subprocess) if not name.startswith("__")}
    base.subprocess = types.SimpleNamespace(**{**names, "Popen": popen})


class EarlyRead:
    """The connector's `read`, started before `import airbyte` when PyAirbyte's command can be foreseen.

    Importing PyAirbyte takes seconds of one core, and source-s3 needs seconds from its start to its
    first record: one after the other, a sync waited for both before its first record. When the
    connector's catalog is known (the metadata cache) and the stored state is readable, this starts
    `read` with the config, configured catalog and state PyAirbyte will send, so the connector
    starts on the other core while PyAirbyte loads; its output waits in the pipe (docs/benchmarks.md).

    PyAirbyte still builds and writes its own command. `adopt` compares it with the one started
    here: the same executable and arguments, the same config, the same catalog, the same state
    (in any order, nulls aside) and the same pipes. Only then is the early process handed over;
    on any difference it is stopped and PyAirbyte starts the connector as usual, so a wrong guess
    costs time, never data. Only the first read of a sync is started early.
    """

    def __init__(self, spec: dict, cached: dict | None) -> None:
        self.process: Any = None
        self._files: list[str] = []
        self._expected: dict[str, Any] = {}
        if cached is None or not spec.get("streams"):
            return
        _, full, names = read_groups(spec)[0]
        # a full refresh reads from no state: forget_stored_state deletes it before PyAirbyte reads it
        state = [] if full or spec.get("full_refresh") else stored_state(spec)
        if state is None:
            return
        self._expected = {
            "config": spec["config"],
            "catalog": configured_catalog(spec, cached["catalog"], names, full),
            "state": state,
        }
        import tempfile

        folder = spec.get("work_dir") or None
        if folder:
            os.makedirs(folder, exist_ok=True)
        atexit.register(self.close)
        for kind in ("config", "catalog", "state"):
            descriptor, path = tempfile.mkstemp(prefix=f"early-{kind}-", suffix=".json", dir=folder)
            self._files.append(path)
            with os.fdopen(descriptor, "w", encoding="utf-8") as f:  # mode 0600: the config holds secrets
                json.dump(self._expected[kind], f)
        config, catalog, state_file = self._files
        args = [spec["executable"], "read", "--config", config, "--catalog", catalog, "--state", state_file]
        try:
            self.process = start_connector(args)
        except OSError:
            return  # PyAirbyte starts it again and names what is wrong
        self._args = args
        log("connector read started early, beside PyAirbyte's import")

    def adopt(self, args: list[str], kwargs: dict) -> Any:
        """The early process if `args`/`kwargs` (PyAirbyte's Popen call) start exactly that read, else None."""
        process, self.process = self.process, None
        if process is None:
            return None
        why = self._difference(args, kwargs)
        if why is None:
            log("PyAirbyte's read is the one started early: using it")
            return process
        log(f"the read started early is not the one PyAirbyte asks for ({why}): stopping it")
        self._stop(process)
        return None

    def _difference(self, args: list[str], kwargs: dict) -> str | None:
        import subprocess

        words = [0, 1, 2, 4, 6]  # the executable, `read` and the options; the files' paths differ
        if len(args) != len(self._args) or [args[i] for i in words] != [self._args[i] for i in words]:
            return f"another command: {' '.join(args[:2])}"
        wanted = {"stdin": None, "stdout": subprocess.PIPE, "stderr": subprocess.DEVNULL,
                  "universal_newlines": True, "encoding": "utf-8"}  # fmt: skip
        if kwargs != wanted:
            return "other pipes"
        try:
            theirs = {}
            for kind, path in zip(("config", "catalog", "state"), args[3:8:2], strict=True):
                with open(path, encoding="utf-8") as f:
                    theirs[kind] = json.load(f)
        except (OSError, ValueError):
            return "its files are unreadable"
        for kind in ("config", "catalog"):
            if theirs[kind] != self._expected[kind]:
                where = first_difference(self._expected[kind], theirs[kind]) if kind == "catalog" else ""
                return f"another {kind}{where}"  # a config's values are not shown: they hold secrets
        if not same_state(self._expected["state"], theirs["state"]):
            return "another state"
        return None

    @staticmethod
    def _stop(process: Any) -> None:
        import subprocess

        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout:
            process.stdout.close()

    def close(self) -> None:
        """Stop a read never handed over; remove the files (the config holds secrets)."""
        process, self.process = self.process, None
        if process is not None:
            self._stop(process)
        for path in self._files:
            with contextlib.suppress(OSError):
                os.unlink(path)
        self._files = []


class EarlyAnswers:
    """The connector's `spec` and `discover`, started before `import airbyte` so that they run beside it.

    Importing PyAirbyte takes seconds of one core, and a connector's start seconds of the other: asked
    one after the other, as PyAirbyte does, a sync that must ask them (the first one, a full
    refresh, a changed config) waits for both. Only what the cache cannot answer is started, with
    the same config PyAirbyte would send; nothing else changes. An answer that does not come (the
    connector failed, or sent no SPEC/CATALOG) is left to PyAirbyte, which asks again and reports
    the failure its usual way.
    """

    def __init__(self, spec: dict, cached: dict | None) -> None:
        import subprocess
        import tempfile

        self._processes: dict[str, Any] = {}
        self._config_file: str | None = None
        wanted = []
        if metadata_cache_path(spec) is not None:
            if cached is None:
                wanted = ["spec", "discover"]
            elif spec.get("full_refresh"):
                wanted = ["discover"]
        for command in wanted:
            args = [spec["executable"], command]
            if command == "discover":
                folder = spec.get("work_dir") or None
                if folder:
                    os.makedirs(folder, exist_ok=True)
                descriptor, self._config_file = tempfile.mkstemp(prefix="config-", suffix=".json", dir=folder)
                atexit.register(self._forget_config)  # if the sync fails before the answer is read
                with os.fdopen(descriptor, "w", encoding="utf-8") as f:  # mode 0600: it holds secrets
                    json.dump(spec["config"], f)
                args += ["--config", self._config_file]
            try:
                self._processes[command] = subprocess.Popen(
                    args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
                )
            except OSError:
                pass  # PyAirbyte starts it again and names what is wrong
        if wanted:
            log(f"asking the connector for {' and '.join(wanted)} while PyAirbyte loads")

    def _forget_config(self) -> None:
        if self._config_file:
            with contextlib.suppress(OSError):
                os.unlink(self._config_file)
            self._config_file = None

    def answer(self, command: str) -> dict | None:
        """The SPEC (spec) or CATALOG (discover) message's content, or None if it did not come."""
        process = self._processes.pop(command, None)
        if process is None:
            return None
        kind, field = {"spec": ("SPEC", "spec"), "discover": ("CATALOG", "catalog")}[command]
        try:
            output, _ = process.communicate()
        finally:
            if command == "discover":
                self._forget_config()
        if process.returncode != 0:
            return None
        for line in output.splitlines():
            if line.startswith(b"{") and kind.encode() in line[:40]:
                try:
                    message = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if message.get("type") == kind and isinstance(message.get(field), dict):
                    return message[field]
        return None
