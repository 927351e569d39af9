"""Sample the environment (/proc/<pid>/environ) of every process of the machine while a run goes,
and record which of a stack's secrets each process held: the secrets are random per stack, so any
process that holds one got it from the stack, whoever started it.

`secrets` maps a setting name (WAREHOUSE_TRANSFORM_PASSWORD, S3_LAKE_WRITER_SECRET_KEY, ...) to
its value; a process is found holding a secret when the value is one of its variables' values.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import psutil

COMPONENTS = ("scheduler", "api-server", "api_server", "dag-processor", "dag_processor", "triggerer")


def kind(proc: psutil.Process, environ: dict[str, str]) -> str:
    """What a process is, by its name, command line and environment."""
    name = proc.name()
    if name.startswith("postgres") or name == "pg_ctl":
        return "postgres"
    if name == "weed":
        return "weed"
    if "AIRBYTE_PROJECT_DIR" in environ:  # the embedded sync: the PyAirbyte runner and its connector
        return "ingest sync"
    if any(key.startswith("COSMOS_CONN_") for key in environ):  # started by dbt inside Cosmos's profile env
        return "dbt (Cosmos)"
    cmdline = " ".join(proc.cmdline()[:4])
    if "include.pipeline.cli.triggerer" in cmdline:
        return "airflow triggerer"
    if "airflow" in cmdline:
        for word in COMPONENTS:
            if word in cmdline:  # a component, or a LocalExecutor worker / task forked from it
                return f"airflow {word.replace('_', '-')}"
        return "airflow (other)"
    if "dbt" in cmdline:
        return "dbt"
    return name


@dataclass
class Held:
    kind: str
    cmdline: str
    secrets: frozenset[str]


@dataclass
class EnvironSampler:
    secrets: dict[str, str]
    interval: float = 0.2
    samples: int = 0
    processes_seen: set[int] = field(default_factory=set)
    held: dict[tuple[int, frozenset[str]], Held] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> None:
        by_value = {v: k for k, v in self.secrets.items() if v}
        for proc in psutil.process_iter():
            try:
                environ = proc.environ()
                self.processes_seen.add(proc.pid)
                found = frozenset(by_value[v] for v in environ.values() if v in by_value)
                if found and (proc.pid, found) not in self.held:
                    self.held[(proc.pid, found)] = Held(kind(proc, environ), " ".join(proc.cmdline()[:4]), found)
            except (psutil.Error, OSError):  # gone, or not ours to read
                continue
        self.samples += 1

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.sample()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def __enter__(self) -> EnvironSampler:
        self._thread = threading.Thread(target=self._loop, name="environ-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
