"""A stateful, in-process fake of the Airbyte public API (Airbyte 1.x, ``/api/public/v1``).

Standard library only (and PyYAML and jsonschema, imported when a connection is created or
patched, to check its body against the vendored API spec), no Airflow imports. It speaks real HTTP on 127.0.0.1 so the Airflow
Airbyte provider and the ``airbyte-api`` SDK it uses can be tested end to end, and it carries
knobs to inject the failures a scheduler has to survive.

Shapes follow the public API as served by airbyte-platform (``JobResponseMapper``,
``JobsResponseMapper``, ``PaginationMapper``, ``ApplicationsController``, the ``*Problem``
classes) and the ``airbyte_api`` 1.0.1 models:

* ``POST /applications/token``: body ``{"client_id", "client_secret", "grant-type"}`` as JSON,
  or (Airbyte >= ~1.6 and Cloud) form-encoded, which is what the SDK sends. Answer:
  ``{"access_token", "token_type": "Bearer", "expires_in": 180}``. Older OSS servers tried to
  parse a form body as JSON and answered 401; ``accept_form_encoded_token=False`` emulates that.
* Errors of the API proper are RFC 7807 problems (``application/problem+json``,
  ``{"type": "https://reference.airbyte.com/reference/errors#<slug>", "title": "<slug>",
  "status": ..., "detail": ...}``). Authentication failures and the token endpoint answer with
  Micronaut's JSON error body (``{"message": ..., "_links": ..., "_embedded": {"errors": [...]}}``).
* 409 on job creation while a job of the connection is pending/running/incomplete:
  ``try-again-later`` / ``"A sync is already running for: <connectionId>"``.
* List responses are ``{"data": [...], "next": "<url>" | "", "previous": "<url>" | ""}``.
* Jobs: ``jobId`` (int), ``status``, ``jobType``, ``connectionId``, ``startTime`` (ISO),
  ``lastUpdatedAt`` (terminal only), ``duration`` (ISO-8601, not while pending),
  ``bytesSynced``/``rowsSynced`` (from the last finished attempt). The public API has no attempt
  count; the fake keeps attempts in its state, see :meth:`FakeAirbyteApi.job`.
* Connection streams (``AirbyteCatalogHelper``): a ``full_refresh_*`` stream is stored and
  returned with the connector's default cursor and primary key, whatever the client sent (empty
  lists included); an incremental stream keeps the cursor sent unless the source defines its
  own, and a source-defined primary key wins. A cursor other than a source-defined one, or an
  incremental stream with no cursor at all, is a 400, as on the server; so is a cursor or a
  primary key that is not a field of the stream, where its fields are known (a file-based
  stream's: its declared ``input_schema`` and source-s3's ``_ab_source_file_*`` columns, which
  ``GET /streams`` lists as ``propertyFields``).
* Connection create and patch bodies are checked against ``ConnectionCreateRequest`` /
  ``ConnectionPatchRequest`` of the vendored spec (``airbyte_api_spec/``): a value outside an enum
  (``nonBreakingSchemaUpdatesBehavior``, ``status``, ...) or an unknown type is a 400 naming it.

Typical use (see ``tests/fakes/conftest.py`` for the fixtures)::

    with FakeAirbyteApi() as fake:
        conn = fake.seed_connection()
        fake.script_jobs(conn["connectionId"], "incomplete_then_succeeded")
        ...  # point AIRFLOW_CONN_AIRBYTE_DEFAULT at fake.airflow_connection()
"""

from __future__ import annotations

import copy
import datetime as _dt
import fnmatch
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

API_PREFIX = "/api/public/v1"
PROBLEM_BASE = "https://reference.airbyte.com/reference/errors"
TOKEN_PATH = "/applications/token"

ACTIVE_STATUSES = frozenset({"pending", "queued", "running", "incomplete"})
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
JOB_STATUSES = ACTIVE_STATUSES | TERMINAL_STATUSES

#: Named job outcomes -> the sequence of statuses a job walks through (after creation).
OUTCOMES: dict[str, tuple[str, ...]] = {
    "succeeded": ("running", "succeeded"),
    "failed": ("running", "failed"),
    # as if cancelled outside Airflow (UI, another client)
    "cancelled": ("running", "cancelled"),
    # attempt 1 fails (job "incomplete" while Airbyte retries), attempt 2 succeeds
    "incomplete_then_succeeded": ("running", "incomplete", "running", "succeeded"),
    "incomplete_then_failed": ("running", "incomplete", "running", "failed"),
    # never finishes on its own: use cancel / set_job_status / advance_job
    "running": ("running",),
    "pending": ("pending",),
}

SYNC_MODES = frozenset(
    {
        "full_refresh_overwrite",
        "full_refresh_overwrite_deduped",
        "full_refresh_append",
        "full_refresh_update",
        "full_refresh_soft_delete",
        "incremental_append",
        "incremental_deduped_history",
        "incremental_update",
        "incremental_soft_delete",
    }
)

# Connector definition ids of the Airbyte registry for the connectors this template uses.
# Unknown types get a stable uuid5 of their name.
SOURCE_DEFINITIONS = {
    "faker": "dfd88b22-b603-4c3d-aad7-3701784586b1",
    "postgres": "decd338e-5647-4c0b-adf4-da0e75f5a750",
    "s3": "69589781-7828-43c5-9f63-8925b1c1ccc2",
}
DESTINATION_DEFINITIONS = {
    "postgres": "25c5221d-dce2-4163-ade9-739ef790f503",
    "s3": "4816b78f-1489-44c1-9060-4b19d5fa9362",
}

#: Catalog a source of a given type "discovers" when none was set with set_source_catalog().
DEFAULT_CATALOGS: dict[str, list[dict[str, Any]]] = {
    "faker": [
        {"streamName": "users", "sourceDefinedPrimaryKey": [["id"]], "defaultCursorField": ["updated_at"]},
        {"streamName": "products", "sourceDefinedPrimaryKey": [["id"]], "defaultCursorField": ["updated_at"]},
        {"streamName": "purchases", "sourceDefinedPrimaryKey": [["id"]], "defaultCursorField": ["updated_at"]},
    ],
}

#: Configuration keys the server masks in responses (Airbyte masks fields marked airbyte_secret).
DEFAULT_SECRET_FIELDS = frozenset(
    {
        "password",
        "client_secret",
        "api_key",
        "access_token",
        "refresh_token",
        "secret_access_key",
        "private_key",
        "credentials_json",
        "tunnel_user_password",
        "ssh_key",
        "aws_access_key_id",  # source-s3 marks both keys airbyte_secret
        "aws_secret_access_key",
    }
)
#: File-based sources (source-s3): their streams are those declared in their configuration, each
#: with the file's last-modified time as its source-defined cursor and no primary key; a stream's
#: fields are its `input_schema` columns and the two columns source-s3 adds to every record.
FILE_BASED_SOURCES = frozenset({"s3"})
FILE_CURSOR = "_ab_source_file_last_modified"
FILE_COLUMNS = (FILE_CURSOR, "_ab_source_file_url")
SECRET_MASK = "**********"


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
class _HttpError(Exception):
    def __init__(self, status: int, body: Any, content_type: str = "application/problem+json"):
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
        self.content_type = content_type


def problem_body(status: int, slug: str | None, detail: str | None, data: Any = None) -> dict[str, Any]:
    """The RFC 7807 problem document the public API answers with."""
    body: dict[str, Any] = {
        "type": f"{PROBLEM_BASE}#{slug}" if slug else PROBLEM_BASE,
        "title": slug or "unexpected-problem",
        "status": status,
    }
    if detail is not None:
        body["detail"] = detail
    if data is not None:
        body["data"] = data
    return body


def _problem(status: int, slug: str | None, detail: str | None, data: Any = None) -> _HttpError:
    return _HttpError(status, problem_body(status, slug, detail, data))


def _not_found(resource_id: Any) -> _HttpError:
    return _problem(404, "resource-not-found", f"Could not find a resource for: {resource_id}")


_REQUEST_SCHEMAS: dict[str, Any] = {}


def check_against_spec(name: str, body: dict[str, Any]) -> None:
    """`body` against components.schemas[name] of the vendored slice of Airbyte's public API
    (airbyte_api_spec/api_sdk.yaml: ConnectionCreateRequest, ConnectionPatchRequest), as the
    server's request validation: a value outside an enum (nonBreakingSchemaUpdatesBehavior: ...)
    is a 400 naming it. Loaded once per process."""
    import jsonschema
    import yaml

    if not _REQUEST_SCHEMAS:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        text = (Path(__file__).with_name("airbyte_api_spec") / "api_sdk.yaml").read_text()
        _REQUEST_SCHEMAS.update(yaml.load(text, Loader=loader)["components"]["schemas"])  # noqa: S506
    schema = {"$ref": f"#/components/schemas/{name}", "components": {"schemas": _REQUEST_SCHEMAS}}
    try:
        jsonschema.validate({k: v for k, v in body.items() if not k.startswith("_")}, schema)
    except jsonschema.ValidationError as e:
        where = ".".join(str(p) for p in e.absolute_path) or "(body)"
        raise _bad_request(f"{name}: {where}: {e.message}") from None


def _bad_request(detail: str) -> _HttpError:
    return _problem(400, "bad-request", detail)


def _unprocessable(detail: str) -> _HttpError:
    return _problem(422, "unprocessable-entity", detail)


UNEXPECTED_DETAIL = (
    "An unexpected problem has occurred. If this is an error that needs to be addressed, "
    "please submit a pull request or github issue."
)


def micronaut_error_body(message: str, path: str, error: str | None = None) -> dict[str, Any]:
    """Micronaut's default JSON error (used for 401s and on the token endpoint)."""
    return {
        "message": message,
        "_links": {"self": {"href": path, "templated": False}},
        "_embedded": {"errors": [{"message": error or message, "_links": {}, "_embedded": {}}]},
    }


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, tz=_dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _iso_duration(seconds: float) -> str:
    # java.time.Duration#toString of whole seconds: PT0S, PT5S, PT1M5S, PT1H2M
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    out = "PT"
    if h:
        out += f"{h}H"
    if m:
        out += f"{m}M"
    if s or out == "PT":
        out += f"{s}S"
    return out


def _parse_iso(value: str) -> float:
    return _dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _route_regex(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "/?$")


def _strip_prefix(path: str) -> str:
    if path.startswith(API_PREFIX):
        path = path[len(API_PREFIX) :] or "/"
    return path


@dataclass
class RequestRecord:
    """One request as the fake saw it (``path`` is relative to ``/api/public/v1``)."""

    method: str
    path: str
    route: str | None
    query: dict[str, list[str]]
    status: int | None = None
    authorized: bool | None = None
    started: float = 0.0
    finished: float | None = None
    fault: str | None = None


@dataclass
class _Fault:
    method: str
    pattern: str
    remaining: int | None  # None = forever
    when: str  # "before" | "after"
    status: int | None = 500
    body: Any = None
    disconnect: bool = False
    seconds: float = 0.0  # for delays
    content_type: str = "application/problem+json"

    def matches(self, method: str, path: str, route: str | None) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.method != "*" and self.method != method:
            return False
        return self.pattern == route or fnmatch.fnmatchcase(path, self.pattern)


@dataclass
class JobPlan:
    """How a job created by the fake will behave."""

    outcome: str | tuple[str, ...] = "succeeded"
    polls_per_step: int | None = 1
    seconds_per_step: float | None = None
    start_pending: bool = False
    rows_synced: int = 100
    bytes_synced: int | None = None

    def statuses(self) -> list[str]:
        if isinstance(self.outcome, str):
            if self.outcome not in OUTCOMES:
                raise ValueError(f"unknown outcome {self.outcome!r}; known: {sorted(OUTCOMES)}")
            seq = list(OUTCOMES[self.outcome])
        else:
            seq = list(self.outcome)
            bad = [s for s in seq if s not in JOB_STATUSES]
            if bad or not seq:
                raise ValueError(f"invalid status sequence {self.outcome!r}")
        if self.start_pending and seq[0] != "pending":
            seq.insert(0, "pending")
        return seq


_PLAN_FIELDS = {f for f in JobPlan.__dataclass_fields__}  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------
# the fake
# --------------------------------------------------------------------------------------------
class FakeAirbyteApi:
    """In-memory Airbyte public API on a ThreadingHTTPServer. All state is guarded by one lock.

    Constructor knobs (all also plain attributes you may change while it runs):

    :param client_id / client_secret: the one valid application; random and unique per instance
        by default, which also keeps the SDK's process-wide token cache (keyed by id+secret) from
        leaking tokens between fakes.
    :param token_lifetime: seconds a token is accepted by the server (Airbyte: 180).
    :param token_expires_in: ``expires_in`` reported to the client (default: the lifetime,
        rounded). Reporting more than the real lifetime simulates revocation / clock skew.
    :param accept_form_encoded_token: True = current Airbyte/Cloud (JSON or form body accepted);
        False = older OSS servers: a non-JSON body fails with 401.
    :param bad_credentials_status: status for a wrong id/secret (401 as Cloud; OSS answers 400
        ``Invalid client id or token``). The SDK turns any non-2xx into the same exception.
    :param require_auth: False emulates an OSS deployment without auth (no token needed).
    :param job_defaults: defaults for :class:`JobPlan` (outcome, polls_per_step,
        seconds_per_step, start_pending, rows_synced, bytes_synced).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        token_lifetime: float = 180.0,
        token_expires_in: int | None = None,
        accept_form_encoded_token: bool = True,
        bad_credentials_status: int = 401,
        require_auth: bool = True,
        secret_fields: Iterable[str] = DEFAULT_SECRET_FIELDS,
        workspace_name: str = "Default Workspace",
        **job_defaults: Any,
    ) -> None:
        unknown = set(job_defaults) - _PLAN_FIELDS
        if unknown:
            raise TypeError(f"unknown keyword arguments: {sorted(unknown)}")
        self.host = host
        self._requested_port = port
        self.client_id = client_id or f"fake-client-{uuid.uuid4()}"
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.token_lifetime = token_lifetime
        self.token_expires_in = token_expires_in
        self.accept_form_encoded_token = accept_form_encoded_token
        self.bad_credentials_status = bad_credentials_status
        self.require_auth = require_auth
        self.secret_fields = frozenset(secret_fields)
        self.job_defaults = JobPlan(**job_defaults)

        #: called as ``on_job_succeeded(connection, job)`` (public-view dicts, plus ``source``
        #: and ``destination`` raw dicts under ``connection["_source"]``/``["_destination"]``)
        #: when a job reaches ``succeeded``, before any client can see that status. Return an
        #: int to set ``rowsSynced``. If it raises, the job ends ``failed`` instead and the
        #: exception is appended to :attr:`callback_errors`.
        self.on_job_succeeded: Callable[[dict[str, Any], dict[str, Any]], Any] | None = None
        self.callback_errors: list[BaseException] = []

        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

        self._workspaces: dict[str, dict[str, Any]] = {}
        self._sources: dict[str, dict[str, Any]] = {}
        self._destinations: dict[str, dict[str, Any]] = {}
        self._connections: dict[str, dict[str, Any]] = {}
        self._jobs: dict[int, dict[str, Any]] = {}
        self._catalogs: dict[str, list[dict[str, Any]]] = {}
        self._plans: dict[str, list[JobPlan]] = {}
        self._tokens: dict[str, float] = {}
        self._tokens_issued = 0
        self._next_job_id = 1
        self._requests: list[RequestRecord] = []
        self._failures: list[_Fault] = []
        self._delays: list[_Fault] = []
        self._callback_queue: list[int] = []

        self.workspace_id = self.create_workspace(workspace_name)["workspaceId"]

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> FakeAirbyteApi:
        if self._server is not None:
            return self
        fake = self

        class Handler(_Handler):
            pass

        Handler.fake = fake
        server = ThreadingHTTPServer((self.host, self._requested_port), Handler)
        server.daemon_threads = True
        self._server = server
        self._stopping.clear()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-airbyte-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes up delayed handlers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeAirbyteApi:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("fake Airbyte API is not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (no API prefix)."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """The server URL a client is configured with: ``http://127.0.0.1:<port>/api/public/v1``."""
        return self.url + API_PREFIX

    def airflow_connection(self, **overrides: Any) -> dict[str, Any]:
        """The Airflow connection (JSON form of ``AIRFLOW_CONN_*``) that points at this fake.

        The provider reads the token URL from the connection's ``schema`` ("Token URL" in the
        UI), resolved relative to ``host``: ``v1/applications/token`` against
        ``.../api/public/v1`` gives ``.../api/public/v1/applications/token``. ``extra`` may
        carry ``timeout`` (seconds per HTTP call) and ``proxies``.
        """
        conn: dict[str, Any] = {
            "conn_type": "airbyte",
            "host": self.api_url,
            "login": self.client_id,
            "password": self.client_secret,
            "schema": "v1/applications/token",
            "extra": {},
        }
        conn.update(overrides)
        return conn

    # ---------------------------------------------------------------- fault injection
    def fail_next(
        self,
        method: str,
        path: str,
        times: int | None = 1,
        *,
        status: int = 500,
        body: Any = None,
        when: str = "before",
        disconnect: bool = False,
    ) -> None:
        """Answer the next ``times`` requests matching (method, path) with ``status``.

        ``path`` is relative to ``/api/public/v1`` (the prefix is accepted too): a route
        template (``/jobs/{jobId}``) or an fnmatch pattern of the concrete path (``/jobs/*``).
        ``method`` may be ``"*"``. ``times=None`` = until :meth:`clear_faults`.
        ``when="before"``: nothing happens server-side; ``when="after"``: the request is
        fully handled (e.g. the job IS created) and then the error is sent instead.
        ``disconnect=True``: close the socket without any response instead of ``status``.
        The default body is the public API's 500 problem document.
        """
        self._check_when(when)
        with self._lock:
            self._failures.append(_Fault(method.upper(), _strip_prefix(path), times, when, status, body, disconnect))

    def delay(self, method: str, path: str, seconds: float, times: int | None = None, *, when: str = "after") -> None:
        """Hold responses of (method, path) for ``seconds``. ``when="after"`` (default): the
        request is handled first, so a client that times out leaves the effect behind (e.g. a
        job that was accepted and created). ``times=None`` = every matching request."""
        self._check_when(when)
        with self._lock:
            self._delays.append(_Fault(method.upper(), _strip_prefix(path), times, when, seconds=seconds))

    def clear_faults(self) -> None:
        with self._lock:
            self._failures.clear()
            self._delays.clear()

    @staticmethod
    def _check_when(when: str) -> None:
        if when not in ("before", "after"):
            raise ValueError("when must be 'before' or 'after'")

    # ---------------------------------------------------------------- request log
    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return [copy.copy(r) for r in self._requests]

    def request_count(self, method: str | None = None, path: str | None = None, status: int | None = None) -> int:
        """Requests seen, optionally filtered by method, path (route template or fnmatch pattern,
        relative to the API prefix) and response status (faults included)."""
        with self._lock:
            n = 0
            for r in self._requests:
                if method and method.upper() not in ("*", r.method):
                    continue
                if path is not None:
                    p = _strip_prefix(path)
                    if not (p == r.route or fnmatch.fnmatchcase(r.path, p)):
                        continue
                if status is not None and r.status != status:
                    continue
                n += 1
            return n

    def reset_request_log(self) -> None:
        with self._lock:
            self._requests.clear()

    # ---------------------------------------------------------------- tokens
    @property
    def tokens_issued(self) -> int:
        with self._lock:
            return self._tokens_issued

    def revoke_tokens(self) -> None:
        """Invalidate every issued token server-side (clients keep their cached copy)."""
        with self._lock:
            self._tokens.clear()

    # ---------------------------------------------------------------- seeding / inspection
    def create_workspace(self, name: str) -> dict[str, Any]:
        with self._lock:
            ws = {"workspaceId": str(uuid.uuid4()), "name": name, "dataResidency": "auto", "notifications": {}}
            self._workspaces[ws["workspaceId"]] = ws
            return copy.deepcopy(ws)

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

    def set_source_catalog(self, source_id: str, streams: list[dict[str, Any]]) -> None:
        """What ``GET /streams?sourceId=`` returns (StreamProperties dicts; ``streamName``
        required). Connection create/patch then rejects stream names outside it."""
        with self._lock:
            self._catalogs[source_id] = [self._normalize_stream_properties(s) for s in streams]

    def workspaces(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._workspaces.values()))

    def sources(self, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Raw stored sources (secrets unmasked)."""
        with self._lock:
            return [copy.deepcopy(s) for s in self._sources.values() if include_deleted or not s["_deleted"]]

    def destinations(self, include_deleted: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(d) for d in self._destinations.values() if include_deleted or not d["_deleted"]]

    def connections(self, include_deleted: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            return [
                self._connection_view(c)
                for c in self._connections.values()
                if include_deleted or c["status"] != "deprecated"
            ]

    def source(self, source_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._sources[source_id])

    def destination(self, destination_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._destinations[destination_id])

    def connection(self, connection_id: str) -> dict[str, Any]:
        with self._lock:
            return self._connection_view(self._connections[connection_id])

    # ---------------------------------------------------------------- jobs: scripting & control
    def set_job_defaults(self, **plan: Any) -> None:
        """Change the defaults for jobs without a scripted plan (see :class:`JobPlan`)."""
        with self._lock:
            for key, value in plan.items():
                if key not in _PLAN_FIELDS:
                    raise TypeError(f"unknown job plan field {key!r}")
                setattr(self.job_defaults, key, value)
            self.job_defaults.statuses()  # validate

    def script_jobs(self, connection_id: str, *outcomes: str | Iterable[str], **plan: Any) -> None:
        """Queue the behaviour of the next job(s) created for ``connection_id``, one per outcome.

        An outcome is a name from :data:`OUTCOMES` (``succeeded``, ``failed``, ``cancelled``,
        ``incomplete_then_succeeded``, ``incomplete_then_failed``, ``running``, ``pending``) or
        an explicit status sequence such as ``["running", "incomplete", "running", "succeeded"]``.
        ``plan`` overrides the defaults: ``polls_per_step`` (a job advances one status per N
        ``GET /jobs/{id}``; None = not by polls), ``seconds_per_step`` (advance by wall time
        instead), ``start_pending``, ``rows_synced``, ``bytes_synced``.
        """
        unknown = set(plan) - _PLAN_FIELDS
        if unknown:
            raise TypeError(f"unknown job plan fields {sorted(unknown)}")
        with self._lock:
            queue = self._plans.setdefault(connection_id, [])
            for outcome in outcomes or ("succeeded",):
                base = {k: getattr(self.job_defaults, k) for k in _PLAN_FIELDS}
                base.update(plan)
                base["outcome"] = outcome if isinstance(outcome, str) else tuple(outcome)
                job_plan = JobPlan(**base)
                job_plan.statuses()  # validate now, not at job creation
                queue.append(job_plan)

    def set_job_status(self, job_id: int, status: str) -> dict[str, Any]:
        """Force a job into ``status`` now (stops its script). ``succeeded`` runs
        ``on_job_succeeded``; ``cancelled`` is a cancel from outside Airflow."""
        if status not in JOB_STATUSES:
            raise ValueError(f"unknown job status {status!r}")
        with self._lock:
            job = self._jobs[job_id]
            job["scripted"] = False
            self._enter_status(job, status, reason="forced")
        self._run_callbacks()
        return self.job(job_id)

    def cancel_job_externally(self, job_id: int) -> dict[str, Any]:
        """A cancel done outside Airflow (UI, another client)."""
        return self.set_job_status(job_id, "cancelled")

    def advance_job(self, job_id: int, steps: int = 1) -> dict[str, Any]:
        """Move a job ``steps`` statuses along its script, regardless of polls/time."""
        with self._lock:
            job = self._jobs[job_id]
            for _ in range(steps):
                self._step(job, reason="advance_job")
        self._run_callbacks()
        return self.job(job_id)

    def job(self, job_id: int) -> dict[str, Any]:
        """Public view of a job plus test-only state: ``attempts`` (count), ``attemptDetails``,
        ``statusHistory`` (transitions), ``servedStatuses`` (status returned by each
        ``GET /jobs/{id}``), ``polls``, ``plan`` (the scripted status sequence)."""
        with self._lock:
            job = self._jobs[job_id]
            view = self._job_view(job)
            view.update(
                attempts=len(job["attempts"]),
                attemptDetails=copy.deepcopy(job["attempts"]),
                statusHistory=[h[0] for h in job["history"]],
                servedStatuses=list(job["served"]),
                polls=job["polls"],
                plan=list(job["script"]),
            )
            return view

    def jobs(self, connection_id: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """Jobs (creation order) with the test-only fields of :meth:`job`."""
        with self._lock:
            ids = [
                j["jobId"]
                for j in self._jobs.values()
                if (connection_id is None or j["connectionId"] == connection_id)
                and (status is None or j["status"] == status)
            ]
        return [self.job(i) for i in ids]

    def jobs_by_status(self, connection_id: str | None = None) -> dict[str, list[int]]:
        """``{status: [jobId, ...]}`` for every job (optionally of one connection)."""
        out: dict[str, list[int]] = {}
        with self._lock:
            for j in self._jobs.values():
                if connection_id is None or j["connectionId"] == connection_id:
                    self._refresh_by_time(j)
                    out.setdefault(j["status"], []).append(j["jobId"])
        self._run_callbacks()
        return out

    def attempts(self, job_id: int) -> int:
        with self._lock:
            return len(self._jobs[job_id]["attempts"])

    # ================================================================ internals (lock held)
    def _masked(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: (SECRET_MASK if k in self.secret_fields and isinstance(v, str) else self._masked(v))
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._masked(v) for v in value]
        return value

    def _workspace_or_404(self, workspace_id: Any) -> dict[str, Any]:
        ws = self._workspaces.get(str(workspace_id))
        if ws is None:
            raise _not_found(workspace_id)
        return ws

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

    # -- connections ---------------------------------------------------------------------
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

    # -- jobs ------------------------------------------------------------------------------
    def _create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        connection_id = body.get("connectionId")
        job_type = body.get("jobType")
        if not connection_id or not job_type:
            raise _bad_request("connectionId and jobType are required")
        conn = self._connections.get(str(connection_id))
        if conn is None or conn["status"] == "deprecated":
            raise _not_found(connection_id)
        if job_type == "refresh":
            raise _unprocessable("Refreshes are not supported in the public API")
        if job_type not in ("sync", "reset", "clear"):
            raise _unprocessable("The body of the request was not understood")
        for other in self._jobs.values():
            if other["connectionId"] == conn["connectionId"]:
                self._refresh_by_time(other)
                if other["status"] in ACTIVE_STATUSES:
                    raise _problem(409, "try-again-later", f"A sync is already running for: {conn['connectionId']}")
        queue = self._plans.get(conn["connectionId"])
        plan = queue.pop(0) if queue else copy.copy(self.job_defaults)
        now = time.time()
        job = {
            "jobId": self._next_job_id,
            "connectionId": conn["connectionId"],
            "jobType": "sync" if job_type == "sync" else "reset",
            "status": None,
            "created_at": now,
            "updated_at": now,
            "started_mono": time.monotonic(),
            "script": plan.statuses(),
            "step": 0,
            "plan": plan,
            "scripted": True,
            "attempts": [],
            "history": [],
            "served": [],
            "polls": 0,
            "finalizing": False,
            "rows_override": None,
        }
        self._next_job_id += 1
        self._jobs[job["jobId"]] = job
        self._enter_status(job, job["script"][0], reason="created")
        return job

    def _job_or_404(self, job_id: str | int) -> dict[str, Any]:
        try:
            job = self._jobs.get(int(job_id))
        except (TypeError, ValueError):
            raise _bad_request(f"invalid job id {job_id!r}") from None
        if job is None:
            raise _not_found(job_id)
        return job

    def _enter_status(self, job: dict[str, Any], status: str, reason: str) -> None:
        now = time.time()
        if job["status"] in TERMINAL_STATUSES and reason not in ("forced", "callback"):
            return
        job["status"] = status
        job["updated_at"] = now
        job["history"].append((status, now, reason))
        attempts = job["attempts"]
        current = attempts[-1] if attempts and attempts[-1]["status"] == "running" else None
        if status == "running" and current is None:
            attempts.append({"attemptNumber": len(attempts), "status": "running", "startedAt": _iso(now)})
        elif status in ("incomplete", "failed", "cancelled", "succeeded"):
            if current is None and status == "succeeded":
                current = {"attemptNumber": len(attempts), "status": "running", "startedAt": _iso(now)}
                attempts.append(current)
            if current is not None:
                current["status"] = {"incomplete": "failed", "failed": "failed"}.get(status, status)
                current["endedAt"] = _iso(now)
                if status == "succeeded":
                    plan: JobPlan = job["plan"]
                    rows = plan.rows_synced
                    current["recordsCommitted"] = rows
                    current["bytesCommitted"] = plan.bytes_synced if plan.bytes_synced is not None else rows * 100
                else:
                    current["recordsCommitted"] = 0
                    current["bytesCommitted"] = 0
        if status == "succeeded" and reason != "callback":
            job["finalizing"] = True
            self._callback_queue.append(job["jobId"])

    def _step(self, job: dict[str, Any], reason: str) -> bool:
        if job["status"] in TERMINAL_STATUSES or job["step"] >= len(job["script"]) - 1:
            return False
        job["step"] += 1
        self._enter_status(job, job["script"][job["step"]], reason=reason)
        return True

    def _refresh_by_time(self, job: dict[str, Any]) -> None:
        plan: JobPlan = job["plan"]
        if not job["scripted"] or not plan.seconds_per_step or job["status"] in TERMINAL_STATUSES:
            return
        due = int((time.monotonic() - job["started_mono"]) / plan.seconds_per_step)
        while job["step"] < min(due, len(job["script"]) - 1):
            if not self._step(job, reason="time"):
                break

    def _on_poll(self, job: dict[str, Any]) -> None:
        job["polls"] += 1
        plan: JobPlan = job["plan"]
        if job["scripted"] and plan.polls_per_step and not plan.seconds_per_step:
            if job["polls"] % plan.polls_per_step == 0:
                self._step(job, reason="poll")
        self._refresh_by_time(job)

    def _job_view(self, job: dict[str, Any]) -> dict[str, Any]:
        status = "running" if job["finalizing"] else job["status"]
        view: dict[str, Any] = {
            "jobId": job["jobId"],
            "status": status,
            "jobType": job["jobType"],
            "startTime": _iso(job["created_at"]),
            "connectionId": job["connectionId"],
        }
        if status in TERMINAL_STATUSES:
            view["lastUpdatedAt"] = _iso(job["updated_at"])
        if status != "pending":
            view["duration"] = _iso_duration(job["updated_at"] - job["created_at"])
        finished = [a for a in job["attempts"] if "endedAt" in a]
        if finished and not job["finalizing"]:
            last = finished[-1]
            view["bytesSynced"] = last["bytesCommitted"]
            view["rowsSynced"] = last["recordsCommitted"]
        return view

    def _run_callbacks(self) -> None:
        """Run on_job_succeeded for jobs that just succeeded (outside the lock)."""
        while True:
            with self._lock:
                if not self._callback_queue:
                    return
                job_id = self._callback_queue.pop(0)
                job = self._jobs[job_id]
                callback = self.on_job_succeeded
                conn = self._connection_view(self._connections[job["connectionId"]])
                conn["_source"] = copy.deepcopy(self._sources.get(conn["sourceId"]))
                conn["_destination"] = copy.deepcopy(self._destinations.get(conn["destinationId"]))
                job_view = self._job_view({**job, "finalizing": False})
                job_view["attempts"] = len(job["attempts"])
            error: BaseException | None = None
            result: Any = None
            if callback is not None:
                try:
                    result = callback(conn, job_view)
                except BaseException as exc:  # noqa: BLE001 - recorded for the test to assert
                    error = exc
            with self._lock:
                job["finalizing"] = False
                if error is not None:
                    self.callback_errors.append(error)
                    job["attempts"][-1]["status"] = "failed"
                    job["attempts"][-1]["recordsCommitted"] = 0
                    job["attempts"][-1]["bytesCommitted"] = 0
                    job["status"] = "failed"
                    job["history"].append(("failed", time.time(), "callback"))
                    job["scripted"] = False
                elif isinstance(result, int) and not isinstance(result, bool):
                    job["attempts"][-1]["recordsCommitted"] = result
                    if job["plan"].bytes_synced is None:
                        job["attempts"][-1]["bytesCommitted"] = result * 100

    # -- lists --------------------------------------------------------------------------
    def _paged(self, items: list[Any], query: dict[str, list[str]], path: str, keep: Iterable[str]) -> dict[str, Any]:
        limit = self._int_param(query, "limit", 20)
        offset = self._int_param(query, "offset", 0)
        if limit < 1 or limit > 100:
            raise _bad_request("limit must be between 1 and 100")
        if offset < 0:
            raise _bad_request("offset must be >= 0")
        page = items[offset : offset + limit]
        base_params = [(k, v) for k in keep for v in query.get(k, [])]

        def link(new_offset: int) -> str:
            return f"{self.api_url}{path}?" + urlencode(base_params + [("limit", limit), ("offset", new_offset)])

        return {
            "data": page,
            "next": link(offset + limit) if page and len(page) >= limit else "",
            "previous": link(max(offset - limit, 0)) if offset != 0 else "",
        }

    @staticmethod
    def _int_param(query: dict[str, list[str]], name: str, default: int) -> int:
        raw = query.get(name, [None])[-1]
        if raw in (None, ""):
            return default
        try:
            return int(raw)
        except ValueError:
            raise _bad_request(f"{name} must be an integer") from None

    @staticmethod
    def _list_param(query: dict[str, list[str]], name: str) -> list[str]:
        out: list[str] = []
        for raw in query.get(name, []):
            out.extend(p for p in raw.split(",") if p)
        return out

    @staticmethod
    def _bool_param(query: dict[str, list[str]], name: str) -> bool:
        return query.get(name, ["false"])[-1].lower() == "true"

    # ================================================================ HTTP routing
    def _dispatch(self, method: str, route: str, params: dict[str, str], query: dict[str, list[str]], body: Any):
        """Returns (status, render) where render() -> JSON-able body (or None), evaluated under
        the lock after success callbacks ran."""
        handler = getattr(self, "_h_" + _ROUTE_HANDLERS[(method, route)])
        return handler(params, query, body)

    def _h_health(self, params, query, body):
        return 200, None

    def _h_list_workspaces(self, params, query, body):
        ids = set(self._list_param(query, "workspaceIds"))
        items = [copy.deepcopy(w) for w in self._workspaces.values() if not ids or w["workspaceId"] in ids]
        return 200, lambda: self._paged(items, query, "/workspaces", ["workspaceIds", "includeDeleted"])

    def _h_get_workspace(self, params, query, body):
        ws = self._workspace_or_404(params["workspaceId"])
        return 200, lambda: copy.deepcopy(ws)

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

    def _h_create_job(self, params, query, body):
        job = self._create_job(self._require_object(body))
        return 200, lambda: self._job_view(job)

    def _h_get_job(self, params, query, body):
        job = self._job_or_404(params["jobId"])
        self._on_poll(job)

        def render():
            view = self._job_view(job)
            job["served"].append(view["status"])
            return view

        return 200, render

    def _h_cancel_job(self, params, query, body):
        job = self._job_or_404(params["jobId"])
        self._refresh_by_time(job)
        if job["status"] not in TERMINAL_STATUSES:
            job["scripted"] = False
            self._enter_status(job, "cancelled", reason="api-cancel")
        return 200, lambda: self._job_view(job)

    def _h_list_jobs(self, params, query, body):
        connection_id = query.get("connectionId", [None])[-1]
        workspace_ids = set(self._list_param(query, "workspaceIds"))
        status = query.get("status", [None])[-1]
        job_type = query.get("jobType", [None])[-1]
        if status is not None and status not in JOB_STATUSES:
            raise _bad_request(f"invalid status {status!r}")
        if job_type is not None and job_type not in ("sync", "reset"):
            raise _unprocessable("The body of the request was not understood")
        if connection_id is not None:
            self._connection_or_404(connection_id)
        bounds = {}
        for name in ("createdAtStart", "createdAtEnd", "updatedAtStart", "updatedAtEnd"):
            raw = query.get(name, [None])[-1]
            if raw:
                try:
                    bounds[name] = _parse_iso(raw)
                except ValueError:
                    raise _bad_request(f"{name} must be an ISO-8601 date-time") from None
        order_field, _, order_method = (query.get("orderBy", ["createdAt|DESC"])[-1]).partition("|")
        if order_field not in ("createdAt", "updatedAt") or (order_method or "DESC").upper() not in ("ASC", "DESC"):
            raise _bad_request("orderBy must look like 'createdAt|DESC' or 'updatedAt|ASC'")
        selected = []
        for job in self._jobs.values():
            self._refresh_by_time(job)
            if connection_id is not None and job["connectionId"] != connection_id:
                continue
            if workspace_ids and self._connections[job["connectionId"]]["workspaceId"] not in workspace_ids:
                continue
            if status is not None and job["status"] != status:
                continue
            if job_type is not None and job["jobType"] != job_type:
                continue
            if "createdAtStart" in bounds and job["created_at"] < bounds["createdAtStart"]:
                continue
            if "createdAtEnd" in bounds and job["created_at"] > bounds["createdAtEnd"]:
                continue
            if "updatedAtStart" in bounds and job["updated_at"] < bounds["updatedAtStart"]:
                continue
            if "updatedAtEnd" in bounds and job["updated_at"] > bounds["updatedAtEnd"]:
                continue
            selected.append(job)
        key = "created_at" if order_field == "createdAt" else "updated_at"
        selected.sort(key=lambda j: (j[key], j["jobId"]), reverse=(order_method or "DESC").upper() == "DESC")
        return 200, lambda: self._paged(
            [self._job_view(j) for j in selected], query, "/jobs", ["jobType", "connectionId", "status"]
        )

    @staticmethod
    def _require_object(body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _bad_request("The request body must be a JSON object")
        return body

    # -- token endpoint -------------------------------------------------------------------
    def _issue_token(self, content_type: str, raw: bytes, path: str) -> tuple[int, Any, str]:
        media = content_type.split(";")[0].strip().lower()
        if media == "application/json":
            try:
                data = json.loads(raw or b"null")
            except ValueError:
                return 400, micronaut_error_body("Bad Request", path, "Invalid JSON"), "application/json"
            if not isinstance(data, dict):
                return 400, micronaut_error_body("Bad Request", path, "Invalid JSON"), "application/json"
        elif media == "application/x-www-form-urlencoded":
            if not self.accept_form_encoded_token:
                # Older OSS servers parse the body as JSON before authentication and fail with 401
                # ("JsonParseException: Unrecognized token 'grant_type'").
                return 401, micronaut_error_body("Unauthorized", path), "application/json"
            data = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        else:
            return (
                415,
                micronaut_error_body(
                    "Unsupported Media Type",
                    path,
                    f"Content Type [{media or 'none'}] not allowed. Allowed types: "
                    "[application/json, application/x-www-form-urlencoded]",
                ),
                "application/json",
            )
        if data.get("client_id") != self.client_id or data.get("client_secret") != self.client_secret:
            status = self.bad_credentials_status
            message = "Unauthorized" if status == 401 else "Bad Request"
            return status, micronaut_error_body(message, path, "Invalid client id or token"), "application/json"
        token = secrets.token_urlsafe(32)
        self._tokens[token] = time.monotonic() + self.token_lifetime
        self._tokens_issued += 1
        expires_in = self.token_expires_in if self.token_expires_in is not None else max(1, round(self.token_lifetime))
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}, "application/json"

    def _authorized(self, header: str | None) -> bool:
        if not self.require_auth:
            return True
        if not header or not header.startswith("Bearer "):
            return False
        expiry = self._tokens.get(header[len("Bearer ") :].strip())
        return expiry is not None and time.monotonic() < expiry

    def _take(self, faults: list[_Fault], method: str, path: str, route: str | None, when: str) -> _Fault | None:
        for fault in faults:
            if fault.when == when and fault.matches(method, path, route):
                if fault.remaining is not None:
                    fault.remaining -= 1
                return fault
        return None

    def _sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)


_ROUTES: list[tuple[str, str, str]] = [
    ("GET", "/health", "health"),
    ("GET", "/workspaces", "list_workspaces"),
    ("GET", "/workspaces/{workspaceId}", "get_workspace"),
    ("GET", "/sources", "list_sources"),
    ("POST", "/sources", "create_source"),
    ("GET", "/sources/{sourceId}", "get_source"),
    ("PATCH", "/sources/{sourceId}", "patch_source"),
    ("PUT", "/sources/{sourceId}", "put_source"),
    ("DELETE", "/sources/{sourceId}", "delete_source"),
    ("GET", "/destinations", "list_destinations"),
    ("POST", "/destinations", "create_destination"),
    ("GET", "/destinations/{destinationId}", "get_destination"),
    ("PATCH", "/destinations/{destinationId}", "patch_destination"),
    ("PUT", "/destinations/{destinationId}", "put_destination"),
    ("DELETE", "/destinations/{destinationId}", "delete_destination"),
    ("GET", "/connections", "list_connections"),
    ("POST", "/connections", "create_connection"),
    ("GET", "/connections/{connectionId}", "get_connection"),
    ("PATCH", "/connections/{connectionId}", "patch_connection"),
    ("DELETE", "/connections/{connectionId}", "delete_connection"),
    ("GET", "/streams", "get_streams"),
    ("GET", "/jobs", "list_jobs"),
    ("POST", "/jobs", "create_job"),
    ("GET", "/jobs/{jobId}", "get_job"),
    ("DELETE", "/jobs/{jobId}", "cancel_job"),
]
_ROUTE_HANDLERS = {(m, t): h for m, t, h in _ROUTES}
_TEMPLATES = [(t, _route_regex(t)) for t in dict.fromkeys([TOKEN_PATH] + [t for _, t, _ in _ROUTES])]
#: (method, route template) pairs the fake serves, for documentation and tests.
ENDPOINTS = [("POST", TOKEN_PATH)] + [(m, t) for m, t, _ in _ROUTES]


def _match_route(path: str) -> tuple[str | None, dict[str, str]]:
    for template, regex in _TEMPLATES:
        m = regex.match(path)
        if m:
            return template, m.groupdict()
    return None, {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeAirbyteApi/1.0"
    fake: FakeAirbyteApi

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_PATCH(self) -> None:  # noqa: N802
        self._serve("PATCH")

    def do_PUT(self) -> None:  # noqa: N802
        self._serve("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")

    # ---------------------------------------------------------------------------------
    def _serve(self, method: str) -> None:
        fake = self.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        full_path = split.path
        query = parse_qs(split.query, keep_blank_values=True)
        rel = _strip_prefix(full_path) if full_path.startswith(API_PREFIX) else None
        route, params = _match_route(rel) if rel is not None else (None, {})
        record = RequestRecord(method, rel if rel is not None else full_path, route, query, started=time.time())
        with fake._lock:
            fake._requests.append(record)
            delay_before = fake._take(fake._delays, method, record.path, route, "before")
            fail_before = fake._take(fake._failures, method, record.path, route, "before")
        if delay_before:
            fake._sleep(delay_before.seconds)
        if fail_before:
            self._send_fault(record, fail_before)
            return

        status, payload, ctype = self._handle(method, rel, route, params, query, raw, record)

        with fake._lock:
            delay_after = fake._take(fake._delays, method, record.path, route, "after")
            fail_after = fake._take(fake._failures, method, record.path, route, "after")
        if delay_after:
            fake._sleep(delay_after.seconds)
        if fail_after:
            self._send_fault(record, fail_after)
            return
        self._send(record, status, payload, ctype)

    def _handle(self, method, rel, route, params, query, raw, record):
        fake = self.fake
        if route is None:
            return 404, micronaut_error_body("Not Found", self.path, "Page Not Found"), "application/json"
        if route == TOKEN_PATH:
            if method != "POST":
                return 405, micronaut_error_body("Method Not Allowed", self.path), "application/json"
            with fake._lock:
                return fake._issue_token(self.headers.get("Content-Type", ""), raw, self.path)
        if (method, route) not in _ROUTE_HANDLERS:
            return 405, micronaut_error_body("Method Not Allowed", self.path), "application/json"
        with fake._lock:
            if route != "/health":
                record.authorized = fake._authorized(self.headers.get("Authorization"))
                if not record.authorized:
                    return 401, micronaut_error_body("Unauthorized", self.path), "application/json"
        body: Any = None
        if raw:
            if "json" not in (self.headers.get("Content-Type") or "").lower():
                return 415, micronaut_error_body("Unsupported Media Type", self.path), "application/json"
            try:
                body = json.loads(raw)
            except ValueError:
                err_body = problem_body(400, "bad-request", "The request body is not valid JSON")
                return 400, err_body, "application/problem+json"
        try:
            with fake._lock:
                status, render = fake._dispatch(method, route, params, query, body)
            fake._run_callbacks()
            with fake._lock:
                payload = render() if callable(render) else render
        except _HttpError as err:
            fake._run_callbacks()
            return err.status, err.body, err.content_type
        except Exception as exc:  # a bug in the fake: answer like Airbyte's unexpected-problem
            err_body = problem_body(500, None, f"{UNEXPECTED_DETAIL} ({type(exc).__name__}: {exc})")
            return 500, err_body, "application/problem+json"
        return status, payload, "application/json"

    def _send_fault(self, record: RequestRecord, fault: _Fault) -> None:
        record.fault = "disconnect" if fault.disconnect else f"status {fault.status}"
        if fault.disconnect:
            record.status = None
            record.finished = time.time()
            self.close_connection = True
            return
        body = fault.body
        if body is None:
            body = problem_body(fault.status or 500, None, UNEXPECTED_DETAIL)
        self._send(record, fault.status or 500, body, fault.content_type)

    def _send(self, record: RequestRecord, status: int, payload: Any, content_type: str) -> None:
        if payload is None:
            data = b""
        elif isinstance(payload, (bytes, bytearray)):
            data = bytes(payload)
        elif isinstance(payload, str):
            data = payload.encode()
        else:
            data = json.dumps(payload).encode()
        record.status = status
        record.finished = time.time()
        try:
            self.send_response(status)
            if data:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if data:
                self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            # the client gave up (e.g. read timeout while the response was delayed)
            self.close_connection = True
