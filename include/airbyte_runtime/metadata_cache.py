"""The connector's `spec` and `discover` answers: kept between syncs for a connector version and config.

Each start of a Python connector costs seconds of CPU before it sends a byte (source-s3 and
airbyte-cdk imports), and a sync needs the spec (to validate the config) and the catalog (to
configure the read). Both depend only on the connector version and its config, so the first sync
asks the connector for both at once (two processes side by side) and stores the answers; later
syncs start the connector once, for `read`. This is what the Airbyte platform does too: a
connection keeps the catalog it was configured with until its schema is refreshed; here a full
refresh (the DAG's `full_refresh` param) is the refresh, and a changed config is a new key.
"""

from __future__ import annotations

import json
import os

from include.airbyte_runtime.connector import ConnectorError, secret_file
from include.airbyte_runtime.messages import error_of, first_answer
from include.airbyte_runtime.report import log


def metadata_cache_path(spec: dict) -> str | None:
    """Where this connector's `spec` and `discover` answers for this config are kept, or None.

    The key covers what the answers depend on: the connector, its installed executable (path and
    modification time: a reinstall is a new version) and the whole config (so a changed stream,
    glob or schema is discovered again). Only a digest of the config is in the file name.
    """
    folder = spec.get("metadata_cache_dir")
    if not folder:
        return None
    try:
        installed = os.stat(spec["executable"]).st_mtime_ns
    except OSError:
        return None
    import hashlib

    key = json.dumps([spec["connector"], spec["executable"], installed, spec["config"]], sort_keys=True, default=str)
    return os.path.join(folder, f"{spec['connector']}-{hashlib.sha256(key.encode()).hexdigest()[:32]}.json")


def read_metadata_cache(spec: dict) -> dict | None:
    """The stored `spec` and `discover` answers for this connector and config, or None."""
    path = metadata_cache_path(spec)
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            cached = json.load(f)
    except (OSError, ValueError):
        return None  # no cache yet, or unreadable: ask the connector, then store
    return cached if isinstance(cached, dict) and {"spec", "catalog"} <= cached.keys() else None


def connector_answers(spec: dict, cached: dict | None) -> dict:
    """{"spec": ..., "catalog": ...} for this sync: from the cache, else asked of the connector (at once).

    Raises ConnectorError naming the command and what the connector said when an answer does not come."""
    import subprocess

    answers = dict(cached or {})
    if cached is not None and not spec.get("full_refresh"):
        log("connector spec and catalog from the cache (the connector starts once, for read)")
        return answers
    wanted = ["discover"] if cached is not None else ["spec", "discover"]
    log(
        f"asking the connector for {' and '.join(wanted)} (at once)"
        + (": a full refresh discovers again" if cached else "")
    )
    config = secret_file(spec["config"], spec.get("work_dir") or None, "config-")
    processes: dict = {}
    try:
        processes = {
            command: subprocess.Popen(
                [spec["executable"], command] + (["--config", config] if command == "discover" else []),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for command in wanted
        }
        for command, process in processes.items():
            output, errors = process.communicate()
            kind = {"spec": "SPEC", "discover": "CATALOG"}[command]
            answer = first_answer(output, kind) if process.returncode == 0 else None
            if answer is None:
                said = error_of(output) or "\n".join(errors.strip().splitlines()[-10:])
                raise ConnectorError(
                    f"{spec['connector']} {command} failed (exit {process.returncode}, no {kind} message): {said}"
                )
            answers["catalog" if command == "discover" else "spec"] = answer
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
        os.unlink(config)
    return answers


def remember(spec: dict, answers: dict) -> None:
    """Store the answers for the next sync (after a successful one); a reader never sees half a file."""
    path = metadata_cache_path(spec)
    if path is None:
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        json.dump(answers, f)
    os.replace(temporary, path)
