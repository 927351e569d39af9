"""Snapshot of the streams a connector offers (`discover`), kept in include/airbyte/catalogs.

Validation of connections.yaml reads the snapshot, so an unknown stream or cursor is caught
without starting the connector; `make catalogs` refreshes it from the installed connector.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from include.pipeline.ingest.declaration import CATALOG_DIR, Source
from include.pipeline.ingest.embedded import child_env, connector_executable
from include.pipeline.private_files import write_private


def discover(source: Source) -> dict:
    """Run the connector's `discover` and return the normalised catalog snapshot."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.json"
        write_private(config, json.dumps(source.resolved_config()))  # it holds the source's secrets
        out = subprocess.run(
            [str(connector_executable(source.connector)), "discover", "--config", str(config)],
            capture_output=True, text=True, check=True, timeout=300, env=child_env(),
        )  # fmt: skip
    for line in out.stdout.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if message.get("type") == "CATALOG":
            streams = []
            for s in sorted(message["catalog"]["streams"], key=lambda s: s["name"]):
                cursor = s.get("default_cursor_field") or []
                streams.append({
                    "name": s["name"],
                    "supported_sync_modes": s.get("supported_sync_modes", []),
                    "default_cursor_field": cursor[0] if cursor else None,
                    "source_defined_primary_key": s.get("source_defined_primary_key", []),
                    "json_schema": s["json_schema"],
                })  # fmt: skip
            return {"connector": source.connector, "streams": streams}
    raise RuntimeError(f"{source.connector} discover printed no catalog:\n{out.stderr[-2000:]}")


def write_snapshot(source: Source) -> Path:
    path = CATALOG_DIR / f"{source.connector}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(discover(source), indent=2, sort_keys=True) + "\n")
    return path
