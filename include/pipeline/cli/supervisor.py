"""The process supervisor of `up`: run Airflow's components, relay their output, stop them all together."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from include.pipeline import settings
from include.pipeline.cli._common import PY, airflow_bin, say


def stop_like_ctrl_c() -> None:
    """SIGTERM (a process manager, `kill`, make passing its own SIGTERM on) and SIGHUP (a closed
    terminal) stop `up` the way Ctrl-C does: KeyboardInterrupt, so `supervise` stops Airflow."""
    import signal

    def interrupt(signum: int, frame) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is not signal.SIG_IGN:  # `nohup make up` keeps ignoring SIGHUP
            signal.signal(sig, interrupt)


def stop_with_make() -> None:
    """Under `make up`, stop when make does. GNU make passes a SIGTERM on to the recipe it runs,
    but not a SIGHUP sent to make alone, and a SIGKILLed make passes nothing: it dies and leaves
    us running. So ask the kernel for a SIGTERM when our parent make exits (prctl
    PR_SET_PDEATHSIG; Linux), which `stop_like_ctrl_c` turns into Ctrl-C. Only under make: a
    shell that started `cli up &` may exit and leave it running on purpose."""
    import ctypes
    import signal

    import psutil

    try:
        parent = psutil.Process(os.getppid())
        if parent.name() != "make":
            return
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        if os.getppid() != parent.pid:  # make died before the request took effect
            os.kill(os.getpid(), signal.SIGTERM)
    except (OSError, AttributeError, psutil.Error):
        pass


# Airflow's components, as `airflow standalone` runs them, but with no log server: standalone's
# log servers listen on every interface (0.0.0.0:8793/8794), and on one machine the API server
# reads task logs from the local files anyway. Everything here stays on 127.0.0.1. Each value is
# `airflow`'s arguments; the triggerer's go to cli/triggerer.py, which builds its execution API
# before it runs `airflow triggerer` with them.
COMPONENTS = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}


def component_command(args: list[str]) -> list[str]:
    """The command that runs `airflow ARGS`, the triggerer through cli/triggerer.py."""
    if args[:1] == ["triggerer"]:
        return [PY, "-m", "include.pipeline.cli.triggerer", *args[1:]]
    return [airflow_bin(), *args]


def supervise(env: dict[str, str], components: dict[str, list[str]] | None = None, title: str = "Airflow") -> int:
    """Run every component, prefix its output, stop them all when one exits or on Ctrl-C
    (SIGTERM and SIGHUP too: see `stop_like_ctrl_c`)."""
    import selectors

    procs = {
        name: subprocess.Popen(
            component_command(args) if components is None else args,
            env=env,
            cwd=settings.REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        for name, args in (COMPONENTS if components is None else components).items()
    }
    selector = selectors.DefaultSelector()
    for name, proc in procs.items():
        selector.register(proc.stdout, selectors.EVENT_READ, name)
    width = max(map(len, procs))

    def relay(timeout: float) -> None:
        """Print the lines the components wrote within `timeout` seconds, prefixed by their name."""
        for key, _ in selector.select(timeout=timeout):
            line = key.fileobj.readline()
            if line:
                print(f"{key.data:<{width}} | {line}", end="", flush=True)
            else:  # end of file: the component closed its output
                selector.unregister(key.fileobj)

    code = 0
    try:
        while all(p.poll() is None for p in procs.values()):
            relay(1)
        code = next(p.returncode for p in procs.values() if p.returncode is not None)
        failed = [n for n, p in procs.items() if p.returncode is not None]
        print(f"error: {title} component {', '.join(failed)} exited ({code}); stopping the others", file=sys.stderr)
    except KeyboardInterrupt:
        code = 0
    finally:
        stop_components(list(procs.values()), relay)
        say(f"{title} stopped")
    return code or 0


def stop_components(procs: list[subprocess.Popen], relay=None, grace: float = 30) -> None:
    """SIGTERM every component's process group, SIGKILL what is left after `grace` seconds.

    Processes that left their component's group (a task supervisor puts its task runner in a
    group of its own) are found as descendants first and stopped too. Their output is still
    relayed meanwhile (`relay`): a component blocked writing to a full pipe could not shut down
    gracefully. Signals are ignored meanwhile: a second Ctrl-C or SIGTERM must not cut the
    stopping short and orphan the rest.
    """
    import signal

    import psutil

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    tree: list[psutil.Process] = []
    for proc in procs:
        try:
            tree += psutil.Process(proc.pid).children(recursive=True)
        except psutil.Error:
            pass

    def signal_all(sig: int) -> None:
        for proc in procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
        for child in tree:
            try:
                child.send_signal(sig)
            except psutil.Error:
                pass

    signal_all(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        if relay is not None:
            relay(0.2)
        else:
            time.sleep(0.2)
    psutil.wait_procs(tree, timeout=max(0.1, deadline - time.monotonic()))
    signal_all(signal.SIGKILL)
    for proc in procs:
        proc.wait()
    psutil.wait_procs(tree, timeout=10)
