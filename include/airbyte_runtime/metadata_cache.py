"""The connector's `spec` and `discover` answers, kept between syncs for a connector version and config.

Each start of a Python connector costs seconds of CPU before it sends a byte, and PyAirbyte asks
for `spec` and `discover` before every read; both answers depend only on the connector version
and its config, so they are stored once and reused (a full refresh discovers again).
"""

from __future__ import annotations

import json
import os
from typing import Any

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


def use_metadata_cache(source: Any, spec: dict, cached: dict | None, early: Any) -> Any:
    """Start the connector once per sync (for `read`) instead of three times (spec, discover, read).

    Each start of a Python connector costs seconds of CPU before it sends a byte (source-s3 and
    airbyte-cdk imports), and PyAirbyte asks for `spec` (to validate the config) and `discover`
    (for the catalog) before every read. Both answers depend only on the connector version and
    the config, so the first sync stores them (see `metadata_cache_path`) and later syncs reuse
    them. The config is still validated against the spec, from the cache. What the cache cannot
    answer comes from `early` (asked while PyAirbyte was loading), or else from PyAirbyte itself.

    The cached catalog is what the Airbyte platform does too: a connection keeps the catalog it
    was configured with until its schema is refreshed. Here a full refresh (the DAG's
    `full_refresh` param) is the refresh: it discovers again and stores the new answer, so a new
    column in a source that infers its schema arrives with the next full refresh, or at once
    when the config changes. Returns the function that stores the answers once they are known
    (call it after a successful read).
    """
    path = metadata_cache_path(spec)
    if path is None:
        return lambda: None
    from airbyte_protocol.models import AirbyteCatalog, ConnectorSpecification

    if cached is not None:
        source._spec = ConnectorSpecification.model_validate(cached["spec"])  # noqa: SLF001
        if not spec.get("full_refresh"):
            source._discovered_catalog = AirbyteCatalog.model_validate(cached["catalog"])  # noqa: SLF001
            log("connector spec and catalog from the cache (the connector starts once, for read)")
            return lambda: None
        log("full refresh: discovering the catalog again")
    for command, attribute, model in (
        ("spec", "_spec", ConnectorSpecification),
        ("discover", "_discovered_catalog", AirbyteCatalog),
    ):
        answer = early.answer(command)
        if answer is not None and getattr(source, attribute) is None:
            try:
                setattr(source, attribute, model.model_validate(answer))
            except ValueError:
                pass  # PyAirbyte asks again

    def remember() -> None:
        if source._spec is None or source._discovered_catalog is None:  # noqa: SLF001
            return
        answers = {
            "spec": source._spec.model_dump(mode="json", exclude_none=True),  # noqa: SLF001
            "catalog": source._discovered_catalog.model_dump(mode="json", exclude_none=True),  # noqa: SLF001
        }
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump(answers, f)
        os.replace(temporary, path)  # a reader never sees half a file

    return remember
