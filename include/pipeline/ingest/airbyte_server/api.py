"""A small client of the Airbyte public API (`/api/public/v1`), used by plan/apply and run-time look-ups.

Plain `requests` rather than the airbyte-api SDK, for two reasons seen on this stack:
- the SDK types every connector configuration as a union of generated models, while the
  declaration is a plain mapping (any connector, `${ENV}` values); a plain JSON body keeps it generic;
- the SDK asks for its token form-encoded, which Airbyte OSS servers before ~1.6 answer with 401;
  JSON is accepted by every version (old OSS, current OSS, Cloud).
Syncs themselves go through the provider's hook and operator (operators.py), as the design says.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import requests

ACTIVE_JOB_STATUSES = ("pending", "running", "incomplete")


class AirbyteApiError(RuntimeError):
    """A call to the Airbyte API failed; carries the HTTP status (None: no answer)."""

    def __init__(self, message: str, status: int | None = None, body: Any = None):
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass
class AirbyteApi:
    """`server_url` ends with /api/public/v1; `token_url` is relative to it (v1/applications/token)."""

    server_url: str
    client_id: str | None = None
    client_secret: str | None = None
    token_url: str = "v1/applications/token"  # noqa: S105 (a path, not a secret)
    timeout: float = 30.0
    retries: int = 3  # for idempotent reads only (GET); writes are never retried blindly
    _session: requests.Session = field(default_factory=requests.Session, repr=False)
    _token: str | None = field(default=None, repr=False)
    _token_expires: float = field(default=0.0, repr=False)

    @classmethod
    def from_airflow_connection(cls, conn: Any) -> AirbyteApi:
        """From an Airflow connection of type airbyte (host = server URL, login/password = client id/secret)."""
        if not conn.host:
            raise AirbyteApiError(
                f"Airflow connection {conn.conn_id!r} has no host: set it to the server URL ending in "
                "/api/public/v1, e.g. http://localhost:8000/api/public/v1"
            )
        extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else {}
        return cls(
            server_url=conn.host,
            client_id=conn.login or None,
            client_secret=conn.password or None,
            token_url=conn.schema or "v1/applications/token",
            timeout=float(extra.get("timeout") or 30.0),
        )

    # -- auth ---------------------------------------------------------------------------------
    @property
    def token_endpoint(self) -> str:
        # Same resolution as the SDK: relative to the server URL's origin + path, e.g.
        # http://h:8000/api/public/v1 + v1/applications/token -> http://h:8000/api/public/v1/applications/token
        base = self.server_url.rstrip("/")
        if self.token_url.startswith(("http://", "https://")):
            return self.token_url
        if base.endswith("/v1") and self.token_url.startswith("v1/"):
            return f"{base}/{self.token_url[3:]}"
        return urljoin(base + "/", self.token_url)

    def _auth_header(self) -> dict[str, str]:
        if not (self.client_id and self.client_secret):
            return {}
        if self._token is None or time.monotonic() >= self._token_expires:
            try:
                resp = self._session.post(
                    self.token_endpoint,
                    json={
                        "client_id": self.client_id,
                        "client_secret": self.client_secret,
                        "grant-type": "client_credentials",
                    },
                    timeout=self.timeout,
                )
            except requests.RequestException as exc:
                raise AirbyteApiError(f"Airbyte token endpoint {self.token_endpoint} unreachable: {exc}") from exc
            if resp.status_code != 200:
                raise AirbyteApiError(
                    f"Airbyte token endpoint {self.token_endpoint} answered {resp.status_code}: check the client id "
                    "and secret (`abctl local credentials`) and the Token URL (connection field schema, "
                    "default v1/applications/token)",
                    resp.status_code,
                    resp.text[:500],
                )
            body = resp.json()
            self._token = body["access_token"]
            # refresh 60 s early (as the SDK does), never less than half the lifetime
            lifetime = float(body.get("expires_in") or 180)
            self._token_expires = time.monotonic() + max(lifetime / 2, lifetime - 60)
        return {"Authorization": f"Bearer {self._token}"}

    # -- HTTP ---------------------------------------------------------------------------------
    def request(self, method: str, path: str, *, json: Any = None, params: dict | None = None) -> Any:
        url = self.server_url.rstrip("/") + path
        tries = self.retries + 1 if method == "GET" else 1
        for attempt in range(1, tries + 1):
            retry_auth = True
            while True:
                try:
                    resp = self._session.request(
                        method, url, json=json, params=params, headers=self._auth_header(), timeout=self.timeout
                    )
                except requests.RequestException as exc:
                    error = AirbyteApiError(f"{method} {url}: no answer ({type(exc).__name__}: {exc})")
                    break
                if resp.status_code == 401 and retry_auth and self.client_id:
                    self._token = None  # revoked or expired early: one fresh token, once
                    retry_auth = False
                    continue
                if resp.status_code < 400:
                    return resp.json() if resp.content else None
                try:
                    body = resp.json()
                except ValueError:
                    body = resp.text[:500]
                detail = body.get("detail") or body.get("message") if isinstance(body, dict) else body
                error = AirbyteApiError(f"{method} {url} answered {resp.status_code}: {detail}", resp.status_code, body)
                break
            if error.status is not None and error.status < 500:
                raise error
            if attempt < tries:
                time.sleep(min(2.0, 0.2 * 2**attempt))
        raise error

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            page = self.request("GET", path, params={**params, "limit": 100, "offset": offset})
            data = page.get("data") or []
            yield from data
            if not page.get("next") or len(data) < 100:
                return
            offset += len(data)

    # -- resources ----------------------------------------------------------------------------
    def health(self) -> None:
        self.request("GET", "/health")

    def workspaces(self) -> list[dict[str, Any]]:
        return list(self._pages("/workspaces", {}))

    def sources(self, workspace_id: str) -> list[dict[str, Any]]:
        return list(self._pages("/sources", {"workspaceIds": workspace_id}))

    def destinations(self, workspace_id: str) -> list[dict[str, Any]]:
        return list(self._pages("/destinations", {"workspaceIds": workspace_id}))

    def connections(self, workspace_id: str) -> list[dict[str, Any]]:
        return [
            c for c in self._pages("/connections", {"workspaceIds": workspace_id}) if c.get("status") != "deprecated"
        ]

    def jobs(self, connection_id: str, status: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        params: dict[str, Any] = {
            "connectionId": connection_id,
            "jobType": "sync",
            "orderBy": "createdAt|DESC",
            "limit": limit,
        }
        if status:
            params["status"] = status
        return self.request("GET", "/jobs", params=params).get("data") or []

    def active_jobs(self, connection_id: str) -> list[dict[str, Any]]:
        """Jobs of the connection that are pending, running or incomplete (newest first)."""
        jobs = [j for status in ACTIVE_JOB_STATUSES for j in self.jobs(connection_id, status)]
        return sorted(jobs, key=lambda j: j["jobId"], reverse=True)

    def job(self, job_id: int) -> dict[str, Any]:
        return self.request("GET", f"/jobs/{int(job_id)}")

    def cancel_job(self, job_id: int) -> dict[str, Any]:
        return self.request("DELETE", f"/jobs/{int(job_id)}")

    def workspace_id(self, name: str | None) -> str:
        """The id of the workspace called `name`; with no name, the only workspace there is."""
        spaces = self.workspaces()
        if name:
            found = [w for w in spaces if w.get("name") == name]
            if len(found) != 1:
                raise AirbyteApiError(
                    f"{'no' if not found else len(found)} Airbyte workspace(s) named {name!r} on {self.server_url}; "
                    f"workspaces there: {', '.join(repr(w.get('name')) for w in spaces) or '(none)'}. Fix: set "
                    "`workspace:` in include/airbyte/connections.yaml (or AIRBYTE_WORKSPACE) to one of them"
                )
            return found[0]["workspaceId"]
        if len(spaces) != 1:
            raise AirbyteApiError(
                f"{len(spaces)} workspaces on {self.server_url} ({', '.join(repr(w.get('name')) for w in spaces)}): "
                "say which one with `workspace:` in include/airbyte/connections.yaml or AIRBYTE_WORKSPACE"
            )
        return spaces[0]["workspaceId"]

    def connection_id(self, workspace_id: str, name: str) -> str:
        """Look a connection up BY NAME (never a pasted UUID)."""
        found = [c for c in self.connections(workspace_id) if c.get("name") == name]
        if not found:
            raise AirbyteApiError(
                f"no Airbyte connection named {name!r} in workspace {workspace_id} on {self.server_url}. "
                "Fix: `make airbyte-apply` creates the connections declared in include/airbyte/connections.yaml"
            )
        if len(found) > 1:
            raise AirbyteApiError(
                f"{len(found)} Airbyte connections are named {name!r} in workspace {workspace_id} "
                f"({', '.join(c['connectionId'] for c in found)}): names must be unique; delete or rename the extra ones"
            )
        return found[0]["connectionId"]
