"""Workspaces: created by the fake at start (and by tests), listed and read through the API."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from .problems import _not_found


class Workspaces:
    """Workspaces of the fake (mixed into FakeAirbyteApi)."""

    def create_workspace(self, name: str) -> dict[str, Any]:
        with self._lock:
            ws = {"workspaceId": str(uuid.uuid4()), "name": name, "dataResidency": "auto", "notifications": {}}
            self._workspaces[ws["workspaceId"]] = ws
            return copy.deepcopy(ws)

    def workspaces(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._workspaces.values()))

    def _workspace_or_404(self, workspace_id: Any) -> dict[str, Any]:
        ws = self._workspaces.get(str(workspace_id))
        if ws is None:
            raise _not_found(workspace_id)
        return ws

    def _h_list_workspaces(self, params, query, body):
        ids = set(self._list_param(query, "workspaceIds"))
        items = [copy.deepcopy(w) for w in self._workspaces.values() if not ids or w["workspaceId"] in ids]
        return 200, lambda: self._paged(items, query, "/workspaces", ["workspaceIds", "includeDeleted"])

    def _h_get_workspace(self, params, query, body):
        ws = self._workspace_or_404(params["workspaceId"])
        return 200, lambda: copy.deepcopy(ws)
