"""What the connector's `read` is given: the config (checked against its spec), the configured catalog, the read groups.

Owned against the Airbyte protocol (a ConfiguredAirbyteCatalog's fields, a spec's
connectionSpecification as JSON Schema), built the way PyAirbyte built them, so that a connection
synced before reads on exactly as it did (tests/ingest/test_configured_catalog.py compares the
configured catalog with PyAirbyte's own).
"""

from __future__ import annotations

from typing import Any

# Sync mode -> (write strategy, force full refresh)
MODES = {
    "incremental_deduped_history": ("merge", False),
    "incremental_append": ("append", False),
    "full_refresh_append": ("append", True),
    "full_refresh_overwrite": ("replace", True),
}


def read_groups(spec: dict) -> list[tuple[str, bool, list[str]]]:
    """(write strategy, force full refresh, stream names) of each `read` the sync makes, in order:
    one write strategy per read, as PyAirbyte had it.

    A full refresh (a reset of the ingest) replaces every table, but reads each stream that has a
    cursor in incremental mode from no state (`forget_stored_state` deletes it first): the
    connector reads everything all the same, and ends with a real cursor, so the next day's sync
    reads that day's files only. In full_refresh mode source-s3 ends with a state that holds no
    cursor, and the day after a full refresh re-read every file (2,460 records instead of 80)."""
    groups: dict[tuple[str, bool], list[str]] = {}
    for stream in spec["streams"]:
        strategy, full = MODES[stream["sync_mode"]]
        if spec.get("full_refresh"):
            strategy = "replace"
        groups.setdefault((strategy, full), []).append(stream["name"])
    return [(strategy, full, names) for (strategy, full), names in groups.items()]


def configured_catalog(spec: dict, catalog: dict, names: list[str], full_refresh: bool) -> dict:
    """The configured catalog PyAirbyte sends with `read` (`Source.get_configured_catalog`, then
    `CatalogProvider`, dumped without None): the discovered streams that are selected, in the
    catalog's order, incremental unless a full refresh the stream supports, each with the declared
    primary key and cursor (`set_primary_key`/`set_cursor_key`) or else the connector's own."""
    declared = {s["name"].lower(): s for s in spec["streams"]}
    selected = set(names)
    streams = []
    for stream in catalog.get("streams", []):
        if stream.get("name") not in selected:
            continue
        own = declared.get(stream["name"].lower(), {})
        modes = stream.get("supported_sync_modes") or []
        entry: dict[str, Any] = {
            "stream": stream,
            "sync_mode": "full_refresh" if full_refresh and "full_refresh" in modes else "incremental",
            "destination_sync_mode": "overwrite",
            # set to 1 when unset by PyAirbyte's CatalogProvider.validate_catalog
            "generation_id": 1,
            "minimum_generation_id": 1,
            "sync_id": 1,
        }
        cursor = [own["cursor_field"]] if own.get("cursor_field") else stream.get("default_cursor_field")
        primary_key = [list(own["primary_key"])] if own.get("primary_key") else stream.get("source_defined_primary_key")
        if cursor is not None:
            entry["cursor_field"] = cursor
        if primary_key is not None:
            entry["primary_key"] = primary_key
        streams.append(entry)
    return {"streams": streams}


def check_config(spec: dict, connector_spec: dict) -> None:
    """Refuse a config its connector's spec (`connectionSpecification`, a JSON Schema) does not accept.

    The error names where and which rule, never the value (a config holds secrets)."""
    import jsonschema

    schema = connector_spec.get("connectionSpecification") or {}
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(spec["config"]))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "(the config itself)"
        rule = f"{error.validator}: {str(error.validator_value)[:120]}"
        raise ValueError(
            f"the config of {spec['connector']} is not valid against its spec: {where} fails {rule}. "
            "Fix it in connections.yaml (or the secret it reads)"
        )


def missing_streams(catalog: dict, names: list[str]) -> list[str]:
    """The declared streams the connector's catalog does not offer."""
    offered = {s.get("name") for s in catalog.get("streams", [])}
    return [n for n in names if n not in offered]
