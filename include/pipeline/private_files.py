"""Files that hold secrets (.env, Airflow's passwords.json, its metadata DB): owner-only from the
first byte.

Writing a file and then chmod-ing it leaves a window in which it is readable by everyone (under
the usual umask 022), and a crash in that window leaves it so. Here the content goes to a temp
file created with O_CREAT|O_EXCL and mode 0600 in the same folder, then is renamed over the
target: readers see the old file or the new one, never a readable half-written secret.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text`, atomically, mode 0600 from creation (never world-readable)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # a leftover of a crashed write by a process with our pid
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def tighten(path: Path, mode: int = PRIVATE_FILE, warn: Callable[[str], None] = _warn) -> bool:
    """If `path` exists with group/other permissions, set `mode` and warn; True when it changed."""
    path = Path(path)
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return False
    if not current & 0o077:
        return False
    path.chmod(mode)
    warn(f"{path} was readable by others (mode {current:o}); set to {mode:o}: it holds secrets")
    return True


def private_dir(path: Path, warn: Callable[[str], None] = _warn) -> Path:
    """Create `path` (and parents) with mode 0700, or tighten an existing one (e.g. Airflow's home,
    which holds the metadata DB with every connection and the generated passwords)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=PRIVATE_DIR)
    except FileExistsError:
        tighten(path, PRIVATE_DIR, warn)
    return path
