"""Embedded services for a laptop or CI box with no Docker: started and stopped by the CLI."""

from __future__ import annotations

import socket

import psutil


class ServiceError(RuntimeError):
    """A service could not start or stop; the message says what to do."""


def find_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_owner(port: int) -> str | None:
    """None when 127.0.0.1:`port` is free, else a description of who holds it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
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
