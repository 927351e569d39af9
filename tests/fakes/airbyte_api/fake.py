"""`FakeAirbyteApi`: the state, the lifecycle of its HTTP server and the dispatch to route
handlers; each resource's behaviour lives in its own mixin module."""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Callable, Iterable
from http.server import ThreadingHTTPServer
from typing import Any

from .actors import Actors
from .auth import Tokens
from .connections import Connections
from .constants import API_PREFIX, DEFAULT_SECRET_FIELDS
from .faults import Faults, RequestRecord, _Fault
from .job_control import _PLAN_FIELDS, JobControl, JobPlan
from .jobs import Jobs
from .paging import Paging
from .problems import _bad_request
from .routes import _ROUTE_HANDLERS
from .server import _Handler
from .streams import Streams
from .workspaces import Workspaces


class FakeAirbyteApi(Faults, Tokens, Workspaces, Actors, Streams, Connections, JobControl, Jobs, Paging):
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

    def _dispatch(self, method: str, route: str, params: dict[str, str], query: dict[str, list[str]], body: Any):
        """Returns (status, render) where render() -> JSON-able body (or None), evaluated under
        the lock after success callbacks ran."""
        handler = getattr(self, "_h_" + _ROUTE_HANDLERS[(method, route)])
        return handler(params, query, body)

    def _h_health(self, params, query, body):
        return 200, None

    @staticmethod
    def _require_object(body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _bad_request("The request body must be a JSON object")
        return body
