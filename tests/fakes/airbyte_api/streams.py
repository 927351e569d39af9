"""Streams: the catalog a source discovers (`GET /streams`) and a connection's stream
configurations stored and checked as the server does (cursor, primary key, sync mode)."""

from __future__ import annotations

import copy
import json
from typing import Any

from .constants import DEFAULT_CATALOGS, FILE_BASED_SOURCES, FILE_COLUMNS, FILE_CURSOR, SYNC_MODES
from .problems import _bad_request


class Streams:
    """Catalogs and stream configurations of the fake (mixed into FakeAirbyteApi)."""

    def set_source_catalog(self, source_id: str, streams: list[dict[str, Any]]) -> None:
        """What ``GET /streams?sourceId=`` returns (StreamProperties dicts; ``streamName``
        required). Connection create/patch then rejects stream names outside it."""
        with self._lock:
            self._catalogs[source_id] = [self._normalize_stream_properties(s) for s in streams]

    def _catalog_for(self, source: dict[str, Any]) -> list[dict[str, Any]]:
        if source["sourceId"] in self._catalogs:
            return self._catalogs[source["sourceId"]]
        if source["sourceType"] in FILE_BASED_SOURCES:
            return [
                self._normalize_stream_properties(
                    {
                        "streamName": s["name"],
                        "defaultCursorField": [FILE_CURSOR],
                        "sourceDefinedCursorField": True,
                        "propertyFields": self._file_stream_fields(s),
                    }
                )
                for s in source["configuration"].get("streams") or []
            ]
        return [self._normalize_stream_properties(s) for s in DEFAULT_CATALOGS.get(source["sourceType"], [])]

    @staticmethod
    def _file_stream_fields(stream: dict[str, Any]) -> list[list[str]]:
        """A file-based stream's fields as the server discovers them: the columns of its declared
        `input_schema` (a JSON string) and source-s3's own; none known when its schema is inferred
        from the files (no input_schema), which the fake cannot read."""
        try:
            columns = json.loads(stream.get("input_schema") or "null")
        except (TypeError, ValueError):
            columns = None
        if not isinstance(columns, dict):
            return []
        return [[name] for name in (*columns, *FILE_COLUMNS)]

    @staticmethod
    def _normalize_stream_properties(stream: dict[str, Any]) -> dict[str, Any]:
        if not stream.get("streamName"):
            raise ValueError("stream properties need a streamName")
        out = {
            "streamName": stream["streamName"],
            "syncModes": list(
                stream.get(
                    "syncModes",
                    [
                        "full_refresh_overwrite",
                        "full_refresh_append",
                        "incremental_append",
                        "incremental_deduped_history",
                    ],
                )
            ),
            "defaultCursorField": list(stream.get("defaultCursorField", [])),
            "sourceDefinedCursorField": bool(stream.get("sourceDefinedCursorField", False)),
            "sourceDefinedPrimaryKey": copy.deepcopy(stream.get("sourceDefinedPrimaryKey", [])),
            "propertyFields": copy.deepcopy(stream.get("propertyFields", [])),
        }
        if stream.get("streamnamespace") is not None:
            out["streamnamespace"] = stream["streamnamespace"]
        return out

    def _normalize_streams(self, streams: Any, source: dict[str, Any]) -> list[dict[str, Any]]:
        """Stream configurations as the server stores and returns them (airbyte-platform's public
        API, ``AirbyteCatalogHelper.validateStreamConfig`` and ``updateAirbyteStreamConfiguration``):
        a full-refresh stream gets the connector's default cursor and primary key whatever was
        sent; an incremental one keeps a sent cursor unless the source defines it, and the
        source-defined primary key wins over a sent one."""
        catalog = {s["streamName"]: s for s in self._catalog_for(source)}
        if streams is None:
            return [
                {
                    "name": name,
                    "syncMode": "full_refresh_overwrite",
                    "cursorField": list(props["defaultCursorField"]),
                    "primaryKey": copy.deepcopy(props["sourceDefinedPrimaryKey"]),
                    "selectedFields": [],
                    "mappers": [],
                }
                for name, props in catalog.items()
            ]
        if not isinstance(streams, list):
            raise _bad_request("configurations.streams must be a list")
        out = []
        seen = set()
        for stream in streams:
            if not isinstance(stream, dict) or not stream.get("name"):
                raise _bad_request("every stream configuration needs a name")
            name = stream["name"]
            if name in seen:
                raise _bad_request(f"Duplicate stream found in configuration for: {name}")
            seen.add(name)
            if catalog and name not in catalog:
                raise _bad_request(f"Invalid stream found. The list of valid streams include: {sorted(catalog)}.")
            props = catalog.get(name) or self._normalize_stream_properties({"streamName": name})
            sync_mode = stream.get("syncMode") or "full_refresh_overwrite"
            if sync_mode not in SYNC_MODES:
                raise _bad_request(f"Invalid sync mode {sync_mode!r} for stream {name}")
            if catalog and sync_mode not in props["syncModes"]:
                raise _bad_request(
                    f"Cannot set sync mode to {sync_mode} for stream {name}. Valid sync modes are: {props['syncModes']}"
                )
            sent_cursor = list(stream.get("cursorField") or [])
            sent_key = copy.deepcopy(stream.get("primaryKey") or [])
            self._validate_stream(name, sync_mode, sent_cursor, sent_key, props)
            default_cursor = list(props["defaultCursorField"])
            source_key = copy.deepcopy(props["sourceDefinedPrimaryKey"])
            norm = copy.deepcopy(stream)
            norm["syncMode"] = sync_mode
            if sync_mode.startswith("incremental"):
                # selectCursorField: the source's cursor if it defines one, else the sent one, else the default
                if props["sourceDefinedCursorField"] or not sent_cursor:
                    norm["cursorField"] = default_cursor
                else:
                    norm["cursorField"] = sent_cursor
            else:  # full refresh: the connector's default cursor, never what was sent
                norm["cursorField"] = default_cursor
            if sync_mode.startswith("incremental") or sync_mode == "full_refresh_overwrite_deduped":
                norm["primaryKey"] = source_key or sent_key  # selectPrimaryKey
            else:  # full refresh: the connector's primary key, never what was sent
                norm["primaryKey"] = source_key
            norm.setdefault("selectedFields", [])
            norm.setdefault("mappers", [])
            out.append(norm)
        return out

    @staticmethod
    def _validate_stream(
        name: str, sync_mode: str, cursor: list[str], key: list[list[str]], props: dict[str, Any]
    ) -> None:
        """The server's 400s for an incremental stream's cursor and a deduplicated stream's key."""
        if not sync_mode.startswith("incremental"):
            return
        default_cursor = props["defaultCursorField"]
        if props["sourceDefinedCursorField"]:
            if cursor and set(cursor) != set(default_cursor):
                raise _bad_request(
                    f"Cursor Field {cursor} is already defined by source for stream: {name}. "
                    "Do not include a cursor field configuration for this stream."
                )
        elif not cursor and not default_cursor:
            raise _bad_request(
                f"No default cursor field for stream: {name}. Please include a cursor field configuration for this stream."
            )
        fields = props["propertyFields"]  # checked when the stream's fields are known
        if cursor and not props["sourceDefinedCursorField"] and fields and cursor not in fields:
            raise _bad_request(
                f"Invalid cursor field for stream: {name}. The list of valid cursor fields include: {fields}."
            )
        if sync_mode != "incremental_deduped_history":
            return
        source_key = props["sourceDefinedPrimaryKey"]
        if source_key and key and source_key != key:
            raise _bad_request(
                f"Primary key for stream: {name} is already pre-defined. "
                f"Please remove the primaryKey or provide the value as {source_key}."
            )
        if not source_key and not key:
            raise _bad_request(
                f"No default primary key for stream: {name}. Please include a primary key configuration for this stream."
            )
        for column in key if fields else ():
            if column not in fields:  # the server's message says "cursor field" here too
                raise _bad_request(
                    f"Invalid cursor field for stream: {name}. The list of valid primary keys fields: {fields}."
                )

    def _h_get_streams(self, params, query, body):
        source_id = query.get("sourceId", [None])[-1]
        if not source_id:
            raise _bad_request("sourceId is required")
        source = self._actor_or_404("source", source_id)
        destination_id = query.get("destinationId", [None])[-1]
        if destination_id:
            self._actor_or_404("destination", destination_id)
        catalog = copy.deepcopy(self._catalog_for(source))
        return 200, lambda: catalog
