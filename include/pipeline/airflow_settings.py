"""Load airflow_settings.yaml (Astro CLI format) into Airflow's metadata database.

`${VAR}` placeholders are filled from the given environment; an unset one is an error naming
the file, the line and the variable. Connections and variables are upserted, so loading twice
changes nothing. Run inside Airflow's environment: `python -m include.pipeline.airflow_settings`.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import yaml

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class SettingsError(ValueError):
    pass


def render(path: Path, environ: dict[str, str]) -> dict:
    """The settings with every ${VAR} filled in."""
    lines = path.read_text().splitlines()
    missing = []
    for number, line in enumerate(lines, start=1):
        if line.lstrip().startswith("#"):
            continue
        missing += [
            f"{path}:{number}: ${{{name}}} is not set" for name in _PLACEHOLDER.findall(line) if name not in environ
        ]
    if missing:
        raise SettingsError(
            "\n".join(missing) + "\nFix: export these variables (or run `make services` for the embedded ones)"
        )
    text = "\n".join(
        line if line.lstrip().startswith("#") else _PLACEHOLDER.sub(lambda m: json.dumps(environ[m.group(1)]), line)
        for line in lines
    )
    doc = yaml.safe_load(text) or {}
    return doc.get("airflow", {}) or {}


def load(path: Path, environ: dict[str, str]) -> dict[str, int]:
    """Upsert connections, variables and pools; return how many of each."""
    # The metadata database's own models: this runs as a CLI, not inside a task.
    from airflow.models import Connection, Pool, Variable
    from airflow.utils.session import create_session

    doc = render(path, environ)
    counts = {"connections": 0, "variables": 0, "pools": 0, "retired connections": 0}
    with create_session() as session:
        # connections an older version of this file made and this one must not leave behind
        # (e.g. `warehouse`, the superuser's, before each stage had its own role)
        for conn_id in doc.get("retired_connections") or []:
            counts["retired connections"] += (
                session.query(Connection).filter(Connection.conn_id == conn_id).delete(synchronize_session=False)
            )
        for c in doc.get("connections") or []:
            extra = c.get("conn_extra")
            new = Connection(
                conn_id=c["conn_id"],
                conn_type=c["conn_type"],
                host=c.get("conn_host"),
                port=int(c["conn_port"]) if c.get("conn_port") not in (None, "") else None,
                login=c.get("conn_login"),
                password=c.get("conn_password"),
                schema=c.get("conn_schema"),
                extra=json.dumps(extra) if isinstance(extra, dict) else extra,
                description=c.get("conn_description"),
            )
            old = session.query(Connection).filter(Connection.conn_id == new.conn_id).one_or_none()
            if old is not None:
                session.delete(old)
                session.flush()
            session.add(new)
            counts["connections"] += 1
        for p in doc.get("pools") or []:
            Pool.create_or_update_pool(
                name=p["pool_name"], slots=int(p["pool_slot"]), description=p.get("pool_description", ""),
                include_deferred=False, session=session,
            )  # fmt: skip
            counts["pools"] += 1
    for v in doc.get("variables") or []:
        Variable.set(v["variable_name"], v["variable_value"])
        counts["variables"] += 1
    return counts


if __name__ == "__main__":
    settings_path = Path(sys.argv[1])
    try:
        result = load(settings_path, dict(os.environ))
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
    print(f"loaded {settings_path.name}: " + ", ".join(f"{n} {k}" for k, n in result.items()))
