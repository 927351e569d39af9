"""Embedded services for a laptop or CI box with no Docker: started and stopped by the CLI."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import psutil


class ServiceError(RuntimeError):
    """A service could not start or stop; the message says what to do."""


def find_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_owner(port: int) -> str | None:
    """None when 127.0.0.1:`port` is free, else a description of who holds it.

    The probe binds with SO_REUSEADDR, as every server does: the sockets of a server stopped a
    moment ago linger in TIME_WAIT for a minute and do not stop a new server from listening, so
    they must not make the port look taken. A listening socket still makes the bind fail.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            return None
        except OSError:
            pass
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                proc = psutil.Process(conn.pid)
                return f"pid {conn.pid}, {proc.name()}"
    except (psutil.Error, PermissionError):
        pass
    return "by another process"


@contextlib.contextmanager
def exclusive(lock_file: Path, what: str = "the embedded services") -> Iterator[None]:
    """Hold an exclusive lock on `lock_file` (fcntl.flock): one start or stop of the services at
    a time, so two `make services` at once cannot both run initdb or pg_ctl. The kernel drops the
    lock when the process ends, however it ends: no stale lock to clean up."""
    import fcntl

    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another start or stop of {what} to finish ({lock_file})", flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
