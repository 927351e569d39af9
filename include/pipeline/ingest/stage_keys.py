"""The S3 keys a declared connection names (`${S3_<IDENTITY>_ACCESS_KEY}` / `_SECRET_KEY`), read
from the Airflow connection of that identity when the ingest task runs.

Airflow's components and tasks hold no S3 key in their environment (environments.stack_env); the
ingest task resolves connections.yaml's placeholders with a mapping of its own: the process's
environment, plus, for each S3 identity of settings.S3_IDENTITIES that the connection names and
the environment does not set, the login / password of its Airflow connection (the exports
reader's is `shop_exports`, the lake writer's `lake`). Nothing is written into os.environ, so the
connector and the PyAirbyte runner see the keys only in their config file. Outside Airflow (setup
commands, tests) the same names come from the environment or `.env` (environments.setup_env).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

from include.pipeline import settings

_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


def names(value: Any) -> set[str]:
    """Every `${NAME}` (a whole string) in `value`, at any depth."""
    if isinstance(value, dict):
        return set().union(*(names(v) for v in value.values()))
    if isinstance(value, list | tuple):
        return set().union(*(names(v) for v in value))
    if isinstance(value, str) and (match := _REF.match(value)):
        return {match.group(1)}
    return set()


def connection_names(connection) -> set[str]:
    """The `${NAME}`s of a declared connection: its source's config and an s3 destination's settings."""
    found = names(dict(connection.source.config))
    s3 = getattr(connection.destination, "s3", None)
    if s3 is not None:
        found |= names(dict(vars(s3)))
    return found


def run_environ(
    referenced: Iterable[str], environ: dict[str, str] | None = None, get_connection=None
) -> dict[str, str]:
    """`environ` (default os.environ, copied) plus the keys of every S3 identity `referenced`
    names and `environ` lacks, from that identity's Airflow connection (through the Task SDK
    inside a task: `get_connection`, default BaseHook.get_connection). S3_ENDPOINT, when
    referenced and unset, is the connection's extra `endpoint_url`."""
    out = dict(os.environ if environ is None else environ)
    referenced = set(referenced)
    for identity, (conn_id, _bucket, _actions) in settings.S3_IDENTITIES.items():
        keys = settings.s3_key_names(identity)
        if not referenced & set(keys) or all(k in out for k in keys):
            continue
        if get_connection is None:
            from airflow.sdk import BaseHook

            get_connection = BaseHook.get_connection
        try:
            conn = get_connection(conn_id)
        except Exception as exc:  # noqa: BLE001 - named below, with the fix
            raise RuntimeError(
                f"connections.yaml names {' / '.join(sorted(referenced & set(keys)))}: they are read from the "
                f"Airflow connection {conn_id!r}, which could not be read ({type(exc).__name__}: {exc}). "
                "Fix: `make settings` loads it from airflow_settings.yaml"
            ) from exc
        out[keys[0]], out[keys[1]] = conn.login or "", conn.password or ""
        endpoint = (conn.extra_dejson or {}).get("endpoint_url")
        if "S3_ENDPOINT" in referenced and endpoint:
            out.setdefault("S3_ENDPOINT", endpoint)
    return out
