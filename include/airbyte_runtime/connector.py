"""The connector process and its output: started, its pipe widened, read ahead, killed with us.

Runs on both sides: in the runtime (.venv-airbyte) and from Airflow's side (the lake sync): only
the standard library. Why each part exists:
- `widen_pipe`: a Python connector (the CDK's `PrintBuffer`) writes its messages in bursts every
  0.1 s, larger than Linux's default 64 KiB pipe; through that pipe the connector and its reader
  took turns instead of working at once. A pipe that holds a whole burst lets both run;
- `ConnectorOutput`: a thread moves the connector's output into memory as it comes, so the
  connector never waits on its reader (an import, a burst of slow rows);
- `die_with_parent`: the runtime and its connector go when the Airflow task goes, SIGKILL included;
- `kill_group`: stop a process group (the runtime's, or a connector's), politely then not.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import threading
from typing import Any


class ConnectorError(RuntimeError):
    """The connector failed: the message names it, the command and what it said."""


def secret_file(content: Any, folder: str | None, prefix: str) -> str:
    """`content` as JSON in a new file only this user can read (a config holds secrets): its path."""
    import json
    import tempfile

    if folder:
        os.makedirs(folder, exist_ok=True)
    descriptor, path = tempfile.mkstemp(prefix=prefix, suffix=".json", dir=folder)
    with os.fdopen(descriptor, "w", encoding="utf-8") as f:  # mkstemp: mode 0600
        json.dump(content, f)
    return path


# The pipe the connector writes its messages into, grown from Linux's 64 KiB default to this many
# bytes (or to /proc/sys/fs/pipe-max-size, 1 MiB by default, when that is lower). See `widen_pipe`.
PIPE_BYTES = 8 << 20


def widen_pipe(stream: Any, wanted: int = PIPE_BYTES) -> int | None:
    """Grow the pipe under `stream` (the connector's stdout) to `wanted` bytes, capped by the system's
    limit: its new size, or None if the platform or the file does not allow it (left as it was).

    The Python CDK buffers its output and writes it every 0.1 s (`PrintBuffer`), often more at
    once than a 64 KiB pipe holds: that write blocks until this process has parsed nearly all of
    it, and meanwhile the connector produces nothing; then this process waits, idle, for the next
    write. The two took turns instead of running side by side (docs/benchmarks.md). A pipe that
    holds a whole write lets the connector go on producing while this process parses the previous one.
    """
    try:
        import fcntl

        with open("/proc/sys/fs/pipe-max-size", encoding="ascii") as f:
            limit = int(f.read())
    except (ImportError, OSError, ValueError):
        limit = 1 << 20
    try:
        return fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, min(wanted, limit))
    except (OSError, AttributeError, ValueError):
        return None


def start_connector(args: list[str]) -> Any:
    """The connector process for `read`: stdout a pipe widened (`widen_pipe`) and read ahead
    (`ConnectorOutput`); stderr drained by a thread that keeps its last lines (`stderr_tail()`),
    for a failure's message. It stays in this process's group, so it dies with the runtime."""
    import subprocess

    process = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
        encoding="utf-8", errors="replace",
    )  # fmt: skip
    widen_pipe(process.stdout)
    process.stdout = ConnectorOutput(process.stdout)
    tail: collections.deque[str] = collections.deque(maxlen=30)

    def drain(pipe: Any = process.stderr) -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in pipe:
                if line.strip():
                    tail.append(line.rstrip("\n"))

    threading.Thread(target=drain, name="connector-stderr", daemon=True).start()
    process.stderr_tail = lambda: list(tail)
    return process


def stop(process: Any) -> None:
    """Stop a connector that is still running (SIGTERM, then SIGKILL after 10 s) and close its output."""
    import subprocess

    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    with contextlib.suppress(OSError):
        process.stdout.close()


# The connector's output held in memory ahead of the runtime's reading, at most (see ConnectorOutput).
RELAY_BYTES = 128 << 20


class ConnectorOutput:
    """A `read` connector's stdout, read line by line (`readline`, `close`), read ahead by a thread.

    The thread moves the pipe's bytes into memory as they come (at most RELAY_BYTES held; then it
    waits), so the connector never waits on the runtime: not while a stream commits, not during a
    burst of slow rows. Lines are split at "\n" and decoded as UTF-8, as a text pipe does.
    """

    def __init__(self, pipe: Any, budget: int = RELAY_BYTES) -> None:
        self._pipe = pipe
        self._fd = os.dup(pipe.fileno())
        self._budget = budget
        self._chunks: collections.deque[bytes] = collections.deque()
        self._held = 0
        self._eof = False
        self._closed = False
        self._ready = threading.Condition()
        self._lines: list[str] = []
        self._next = 0
        self._rest = b""
        self._thread = threading.Thread(target=self._pump, name="connector-output", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        try:
            while True:
                try:
                    chunk = os.read(self._fd, 1 << 20)
                except OSError:
                    chunk = b""
                with self._ready:
                    while chunk and self._held >= self._budget and not self._closed:
                        self._ready.wait()
                    if self._closed:
                        return
                    if chunk:
                        self._chunks.append(chunk)
                        self._held += len(chunk)
                    else:
                        self._eof = True
                    self._ready.notify_all()
                if not chunk:
                    return
        finally:
            os.close(self._fd)  # its own copy of the descriptor: never one reused after close()

    def readline(self) -> str:
        index = self._next
        if index < len(self._lines):
            self._next = index + 1
            return self._lines[index]
        while True:
            with self._ready:
                while not self._chunks and not self._eof:
                    self._ready.wait()
                chunk = self._chunks.popleft() if self._chunks else b""
                self._held -= len(chunk)
                self._ready.notify_all()
            if not chunk:  # end of output
                rest, self._rest = self._rest, b""
                self._lines, self._next = [], 0
                return rest.decode("utf-8")
            data = self._rest + chunk if self._rest else chunk
            cut = data.rfind(b"\n") + 1
            self._rest = data[cut:]
            if cut:
                text = data[:cut].decode("utf-8")
                if "\u2028" in text or "\u2029" in text or "\x85" in text or "\r" in text:
                    lines = text.split("\n")  # splitlines would also split at these
                    lines.pop()
                    self._lines = [line + "\n" for line in lines]
                else:
                    self._lines = text.splitlines(keepends=True)
                self._next = 1
                return self._lines[0]

    def fileno(self) -> int:
        return self._pipe.fileno()

    def close(self) -> None:
        """Drop what is held and close the pipe: the thread ends after its current read, and the
        connector's next write fails (EPIPE), as with a plain pipe."""
        with self._ready:
            self._closed = True
            self._chunks.clear()
            self._held = 0
            self._ready.notify_all()
        self._pipe.close()


def die_with_parent() -> None:
    """Kill this runner's process group (it and its connector) as soon as the process that
    started it is gone, however it went (SIGKILL included).

    embedded.py keeps our stdin open for the whole sync; the kernel closes it when that process
    dies, and the read below returns end-of-file. A thread, not a signal: it acts whatever the
    main thread is blocked in (a connector's pipe, a COPY). A parent-death signal (prctl) would
    not do: it reaches this process only, and the connector would be orphaned.
    """

    def watch() -> None:
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        if os.getpgid(0) == os.getpid():  # we lead our own group (embedded.py starts a new session)
            os.killpg(0, signal.SIGKILL)
        os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def kill_group(process: Any) -> None:
    """Stop the process group `process` leads (it and the processes it started): SIGTERM, then
    SIGKILL after 10 s."""
    import subprocess

    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass
