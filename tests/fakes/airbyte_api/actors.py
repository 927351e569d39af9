"""Sources and destinations (Airbyte's actors, one code path keyed by kind): create, read, list,
patch, replace and delete, secrets masked in responses and kept when sent back masked, and the
configuration checks of source-s3 and destination-s3."""

from __future__ import annotations

import copy
import time
import uuid
from typing import Any

from .constants import DESTINATION_DEFINITIONS, FILE_BASED_SOURCES, SECRET_MASK, SOURCE_DEFINITIONS
from .problems import _bad_request, _not_found, _unprocessable


def _deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class Actors:
    """Sources and destinations of the fake (mixed into FakeAirbyteApi)."""

    def create_source(
        self,
        name: str,
        configuration: dict[str, Any],
        workspace_id: str | None = None,
        definition_id: str | None = None,
    ) -> dict[str, Any]:
        """Create a source directly (not counted as a request). Returns the raw stored dict."""
        body = {"name": name, "configuration": configuration, "workspaceId": workspace_id or self.workspace_id}
        if definition_id:
            body["definitionId"] = definition_id
        with self._lock:
            return copy.deepcopy(self._create_actor("source", body))

    def create_destination(
        self,
        name: str,
        configuration: dict[str, Any],
        workspace_id: str | None = None,
        definition_id: str | None = None,
    ) -> dict[str, Any]:
        body = {"name": name, "configuration": configuration, "workspaceId": workspace_id or self.workspace_id}
        if definition_id:
            body["definitionId"] = definition_id
        with self._lock:
            return copy.deepcopy(self._create_actor("destination", body))

    def sources(self, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Raw stored sources (secrets unmasked)."""
        with self._lock:
            return [copy.deepcopy(s) for s in self._sources.values() if include_deleted or not s["_deleted"]]

    def destinations(self, include_deleted: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(d) for d in self._destinations.values() if include_deleted or not d["_deleted"]]

    def source(self, source_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._sources[source_id])

    def destination(self, destination_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._destinations[destination_id])

    def _masked(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: (SECRET_MASK if k in self.secret_fields and isinstance(v, str) else self._masked(v))
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._masked(v) for v in value]
        return value

    # -- sources / destinations -------------------------------------------------------
    def _actor_store(self, kind: str) -> dict[str, dict[str, Any]]:
        return self._sources if kind == "source" else self._destinations

    def _create_actor(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        for key in ("name", "workspaceId", "configuration"):
            if body.get(key) in (None, ""):
                raise _bad_request(f"{key} is required")
        if not isinstance(body["configuration"], dict):
            raise _bad_request("configuration must be an object")
        self._workspace_or_404(body["workspaceId"])
        type_key = f"{kind}Type"
        definitions = SOURCE_DEFINITIONS if kind == "source" else DESTINATION_DEFINITIONS
        actor_type = body["configuration"].get(type_key)
        definition_id = body.get("definitionId")
        if definition_id:
            by_id = {v: k for k, v in definitions.items()}
            actor_type = actor_type or by_id.get(definition_id, f"custom-{definition_id[:8]}")
        elif actor_type:
            definition_id = definitions.get(actor_type) or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}:{actor_type}"))
        else:
            raise _unprocessable(f"{type_key} or definitionId is required to know which {kind} to create")
        self._check_config(kind, actor_type, body["configuration"])
        actor = {
            f"{kind}Id": str(uuid.uuid4()),
            "name": body["name"],
            f"{kind}Type": actor_type,
            "definitionId": definition_id,
            "workspaceId": str(body["workspaceId"]),
            "configuration": copy.deepcopy(body["configuration"]),
            "createdAt": int(time.time()),
            "_deleted": False,
        }
        if body.get("resourceAllocation") is not None:
            actor["resourceAllocation"] = copy.deepcopy(body["resourceAllocation"])
        self._actor_store(kind)[actor[f"{kind}Id"]] = actor
        return actor

    def _check_config(self, kind: str, actor_type: str, config: dict[str, Any]) -> None:
        """The checks the server makes of a source-s3 or a destination-s3 configuration."""
        if kind == "source" and actor_type in FILE_BASED_SOURCES:
            self._check_file_based_config(config)
        elif kind == "destination" and actor_type == "s3":
            self._check_s3_destination_config(config)

    @staticmethod
    def _check_s3_destination_config(config: dict[str, Any]) -> None:
        """What Airbyte's destination-s3 spec requires (api_sdk.yaml: bucket name, path, region and
        an output format with its format_type)."""
        for key in ("s3_bucket_name", "s3_bucket_path", "s3_bucket_region", "format"):
            if key not in config or (key != "s3_bucket_region" and not config[key]):
                raise _bad_request(f"configuration.{key} is required")
        fmt = config["format"]
        if not isinstance(fmt, dict) or fmt.get("format_type") not in ("CSV", "JSONL", "Avro", "Parquet"):
            raise _bad_request("configuration.format.format_type must be one of CSV, JSONL, Avro, Parquet")

    @staticmethod
    def _check_file_based_config(config: dict[str, Any]) -> None:
        """What Airbyte's source-s3 spec requires (api_sdk.yaml: bucket, streams; each stream a name
        and a format with a filetype; an input_schema, when given, a string)."""
        for key in ("bucket", "streams"):
            if not config.get(key):
                raise _bad_request(f"configuration.{key} is required")
        if not isinstance(config["streams"], list):
            raise _bad_request("configuration.streams must be a list")
        for i, stream in enumerate(config["streams"]):
            if not isinstance(stream, dict) or not stream.get("name"):
                raise _bad_request(f"configuration.streams[{i}].name is required")
            if not isinstance(stream.get("format"), dict) or not stream["format"].get("filetype"):
                raise _bad_request(f"configuration.streams[{i}].format.filetype is required")
            if "input_schema" in stream and not isinstance(stream["input_schema"], str):
                raise _bad_request(f"configuration.streams[{i}].input_schema must be a string")

    def _actor_or_404(self, kind: str, actor_id: str) -> dict[str, Any]:
        actor = self._actor_store(kind).get(actor_id)
        if actor is None or actor["_deleted"]:
            raise _not_found(actor_id)
        return actor

    def _actor_view(self, actor: dict[str, Any]) -> dict[str, Any]:
        view = {k: copy.deepcopy(v) for k, v in actor.items() if not k.startswith("_")}
        view["configuration"] = self._masked(view["configuration"])
        return view

    def _update_actor(self, kind: str, actor_id: str, body: dict[str, Any], replace: bool) -> dict[str, Any]:
        actor = self._actor_or_404(kind, actor_id)
        if replace:
            for key in ("name", "configuration"):
                if body.get(key) in (None, ""):
                    raise _bad_request(f"{key} is required")
        if "name" in body and body["name"] is not None:
            actor["name"] = body["name"]
        if body.get("configuration") is not None:
            cfg = body["configuration"]
            if not isinstance(cfg, dict):
                raise _bad_request("configuration must be an object")
            # a masked secret sent back unchanged keeps the stored secret (as Airbyte does)
            cfg = self._unmask(cfg, actor["configuration"])
            merged = copy.deepcopy(cfg) if replace else _deep_merge(actor["configuration"], cfg)
            self._check_config(kind, actor[f"{kind}Type"], merged)
            actor["configuration"] = merged
        if body.get("resourceAllocation") is not None:
            actor["resourceAllocation"] = copy.deepcopy(body["resourceAllocation"])
        return actor

    def _unmask(self, new: Any, old: Any) -> Any:
        if isinstance(new, dict):
            old = old if isinstance(old, dict) else {}
            return {
                k: (old.get(k) if v == SECRET_MASK and k in old else self._unmask(v, old.get(k)))
                for k, v in new.items()
            }
        return new

    def _delete_actor(self, kind: str, actor_id: str) -> None:
        actor = self._actor_or_404(kind, actor_id)
        actor["_deleted"] = True
        for conn in self._connections.values():
            if conn[f"{kind}Id"] == actor_id:
                conn["status"] = "deprecated"

    def _list_actors(self, kind: str, query: dict[str, list[str]]):
        ids = set(self._list_param(query, "workspaceIds"))
        include_deleted = self._bool_param(query, "includeDeleted")
        actors = [
            a
            for a in self._actor_store(kind).values()
            if (not ids or a["workspaceId"] in ids) and (include_deleted or not a["_deleted"])
        ]
        return 200, lambda: self._paged(
            [self._actor_view(a) for a in actors], query, f"/{kind}s", ["workspaceIds", "includeDeleted"]
        )

    def _h_list_sources(self, params, query, body):
        return self._list_actors("source", query)

    def _h_list_destinations(self, params, query, body):
        return self._list_actors("destination", query)

    def _h_create_source(self, params, query, body):
        actor = self._create_actor("source", self._require_object(body))
        return 200, lambda: self._actor_view(actor)

    def _h_create_destination(self, params, query, body):
        actor = self._create_actor("destination", self._require_object(body))
        return 200, lambda: self._actor_view(actor)

    def _h_get_source(self, params, query, body):
        actor = self._actor_or_404("source", params["sourceId"])
        return 200, lambda: self._actor_view(actor)

    def _h_get_destination(self, params, query, body):
        actor = self._actor_or_404("destination", params["destinationId"])
        return 200, lambda: self._actor_view(actor)

    def _h_patch_source(self, params, query, body):
        actor = self._update_actor("source", params["sourceId"], self._require_object(body), replace=False)
        return 200, lambda: self._actor_view(actor)

    def _h_put_source(self, params, query, body):
        actor = self._update_actor("source", params["sourceId"], self._require_object(body), replace=True)
        return 200, lambda: self._actor_view(actor)

    def _h_patch_destination(self, params, query, body):
        actor = self._update_actor("destination", params["destinationId"], self._require_object(body), replace=False)
        return 200, lambda: self._actor_view(actor)

    def _h_put_destination(self, params, query, body):
        actor = self._update_actor("destination", params["destinationId"], self._require_object(body), replace=True)
        return 200, lambda: self._actor_view(actor)

    def _h_delete_source(self, params, query, body):
        self._delete_actor("source", params["sourceId"])
        return 204, None

    def _h_delete_destination(self, params, query, body):
        self._delete_actor("destination", params["destinationId"])
        return 204, None
