"""Connections: create (body checked against the spec), read, list, patch and delete
(deprecated), with their schedule and streams as the server stores them."""

from __future__ import annotations

import copy
import time
import uuid
from typing import Any

from .problems import _bad_request, _not_found, _unprocessable
from .spec import check_against_spec


class Connections:
    """Connections of the fake (mixed into FakeAirbyteApi)."""

    def create_connection(self, source_id: str, destination_id: str, **fields: Any) -> dict[str, Any]:
        """Create a connection directly; ``fields`` use the API's camelCase names
        (``name``, ``configurations``, ``schedule``, ``status``, ``prefix``, ...)."""
        body = {"sourceId": source_id, "destinationId": destination_id, **fields}
        with self._lock:
            return self._connection_view(self._create_connection(body))

    def seed_connection(
        self, name: str = "faker_to_postgres", streams: list[dict[str, Any]] | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Source (faker) + destination (postgres) + a manual connection; returns the connection
        as the API shows it. ``streams`` defaults to every stream of the faker catalog."""
        src = self.create_source(f"{name}-source", {"sourceType": "faker", "count": 100, "seed": 1})
        dst = self.create_destination(
            f"{name}-destination",
            {
                "destinationType": "postgres",
                "host": "localhost",
                "port": 5432,
                "database": "warehouse",
                "schema": "raw",
                "username": "airbyte",
                "password": "not-a-real-password",
            },
        )
        if streams is not None:
            fields.setdefault("configurations", {"streams": streams})
        return self.create_connection(src["sourceId"], dst["destinationId"], name=name, **fields)

    def connections(self, include_deleted: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            return [
                self._connection_view(c)
                for c in self._connections.values()
                if include_deleted or c["status"] != "deprecated"
            ]

    def connection(self, connection_id: str) -> dict[str, Any]:
        with self._lock:
            return self._connection_view(self._connections[connection_id])

    # ---------------------------------------------------------------- internals (lock held)
    @staticmethod
    def _normalize_schedule(schedule: Any) -> dict[str, Any]:
        if schedule is None:
            return {"scheduleType": "manual"}
        if not isinstance(schedule, dict) or schedule.get("scheduleType") not in ("manual", "cron"):
            raise _bad_request("schedule.scheduleType must be 'manual' or 'cron'")
        if schedule["scheduleType"] == "cron":
            if not schedule.get("cronExpression"):
                raise _unprocessable("cronExpression is required for a cron schedule")
            return {"scheduleType": "cron", "cronExpression": schedule["cronExpression"]}
        return {"scheduleType": "manual"}

    def _create_connection(self, body: dict[str, Any]) -> dict[str, Any]:
        for key in ("sourceId", "destinationId"):
            if not body.get(key):
                raise _bad_request(f"{key} is required")
        check_against_spec("ConnectionCreateRequest", body)
        source = self._actor_or_404("source", body["sourceId"])
        destination = self._actor_or_404("destination", body["destinationId"])
        if source["workspaceId"] != destination["workspaceId"]:
            raise _unprocessable("source and destination must be in the same workspace")
        status = body.get("status") or "active"
        if status not in ("active", "inactive"):
            raise _bad_request(f"invalid connection status {status!r}")
        conn = {
            "connectionId": str(uuid.uuid4()),
            "name": body.get("name") or f"{source['name']} → {destination['name']}",
            "sourceId": source["sourceId"],
            "destinationId": destination["destinationId"],
            "workspaceId": source["workspaceId"],
            "status": status,
            "schedule": self._normalize_schedule(body.get("schedule")),
            "configurations": {
                "streams": self._normalize_streams((body.get("configurations") or {}).get("streams"), source)
            },
            "namespaceDefinition": body.get("namespaceDefinition") or "destination",
            "namespaceFormat": body.get("namespaceFormat"),
            "prefix": body.get("prefix") if body.get("prefix") is not None else "",
            "nonBreakingSchemaUpdatesBehavior": body.get("nonBreakingSchemaUpdatesBehavior") or "ignore",
            "createdAt": int(time.time()),
            "tags": copy.deepcopy(body.get("tags") or []),
        }
        if conn["namespaceDefinition"] not in ("source", "destination", "custom_format"):
            raise _bad_request(f"invalid namespaceDefinition {conn['namespaceDefinition']!r}")
        self._connections[conn["connectionId"]] = conn
        return conn

    def _connection_or_404(self, connection_id: str) -> dict[str, Any]:
        conn = self._connections.get(connection_id)
        if conn is None:
            raise _not_found(connection_id)
        return conn

    def _connection_view(self, conn: dict[str, Any]) -> dict[str, Any]:
        view = copy.deepcopy(conn)
        if view.get("namespaceFormat") is None:
            view.pop("namespaceFormat", None)
        return view

    def _patch_connection(self, connection_id: str, body: dict[str, Any]) -> dict[str, Any]:
        check_against_spec("ConnectionPatchRequest", body)
        conn = self._connection_or_404(connection_id)
        if conn["status"] == "deprecated":
            raise _not_found(connection_id)
        source = self._actor_or_404("source", conn["sourceId"])
        for key in ("sourceId", "destinationId"):
            if key in body and body[key] != conn[key]:
                raise _unprocessable(f"{key} cannot be changed; create a new connection")
        if body.get("name") is not None:
            conn["name"] = body["name"]
        if body.get("schedule") is not None:
            conn["schedule"] = self._normalize_schedule(body["schedule"])
        if body.get("status") is not None:
            if body["status"] not in ("active", "inactive"):
                raise _bad_request(f"invalid connection status {body['status']!r}")
            conn["status"] = body["status"]
        if body.get("configurations") is not None and "streams" in body["configurations"]:
            conn["configurations"] = {"streams": self._normalize_streams(body["configurations"]["streams"], source)}
        for key in ("namespaceDefinition", "namespaceFormat", "prefix", "nonBreakingSchemaUpdatesBehavior"):
            if body.get(key) is not None:
                conn[key] = body[key]
        if body.get("tags") is not None:
            conn["tags"] = copy.deepcopy(body["tags"])
        return conn

    def _h_list_connections(self, params, query, body):
        ids = set(self._list_param(query, "workspaceIds"))
        include_deleted = self._bool_param(query, "includeDeleted")
        conns = [
            c
            for c in self._connections.values()
            if (not ids or c["workspaceId"] in ids) and (include_deleted or c["status"] != "deprecated")
        ]
        return 200, lambda: self._paged(
            [self._connection_view(c) for c in conns], query, "/connections", ["workspaceIds", "includeDeleted"]
        )

    def _h_create_connection(self, params, query, body):
        conn = self._create_connection(self._require_object(body))
        return 200, lambda: self._connection_view(conn)

    def _h_get_connection(self, params, query, body):
        conn = self._connection_or_404(params["connectionId"])
        return 200, lambda: self._connection_view(conn)

    def _h_patch_connection(self, params, query, body):
        conn = self._patch_connection(params["connectionId"], self._require_object(body))
        return 200, lambda: self._connection_view(conn)

    def _h_delete_connection(self, params, query, body):
        conn = self._connection_or_404(params["connectionId"])
        conn["status"] = "deprecated"
        return 204, None
