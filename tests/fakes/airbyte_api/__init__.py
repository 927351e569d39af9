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

One module per resource, each a mixin of :class:`FakeAirbyteApi` sharing its state and lock:
``fake`` (state, server lifecycle, dispatch), ``server`` (the HTTP handler), ``routes``, ``auth``
(tokens), ``workspaces``, ``actors`` (sources and destinations), ``streams`` (catalogs, stream
configurations), ``connections``, ``jobs`` and ``job_control`` (scripted outcomes), ``faults``
(injected failures and delays, the request log), ``paging``, ``problems`` (error bodies),
``spec`` (request bodies against the vendored spec), ``constants``.

Typical use (fixtures in ``tests/support/airbyte.py``)::

    with FakeAirbyteApi() as fake:
        conn = fake.seed_connection()
        fake.script_jobs(conn["connectionId"], "incomplete_then_succeeded")
        ...  # point AIRFLOW_CONN_AIRBYTE_DEFAULT at fake.airflow_connection()
"""

from __future__ import annotations

from .constants import (
    ACTIVE_STATUSES,
    API_PREFIX,
    DEFAULT_CATALOGS,
    DEFAULT_SECRET_FIELDS,
    DESTINATION_DEFINITIONS,
    FILE_BASED_SOURCES,
    FILE_COLUMNS,
    FILE_CURSOR,
    JOB_STATUSES,
    OUTCOMES,
    PROBLEM_BASE,
    SECRET_MASK,
    SOURCE_DEFINITIONS,
    SYNC_MODES,
    TERMINAL_STATUSES,
    TOKEN_PATH,
)
from .fake import FakeAirbyteApi
from .faults import RequestRecord
from .job_control import JobPlan
from .problems import UNEXPECTED_DETAIL, micronaut_error_body, problem_body
from .routes import ENDPOINTS
from .spec import check_against_spec

__all__ = [
    "ACTIVE_STATUSES",
    "API_PREFIX",
    "DEFAULT_CATALOGS",
    "DEFAULT_SECRET_FIELDS",
    "DESTINATION_DEFINITIONS",
    "ENDPOINTS",
    "FILE_BASED_SOURCES",
    "FILE_COLUMNS",
    "FILE_CURSOR",
    "JOB_STATUSES",
    "OUTCOMES",
    "PROBLEM_BASE",
    "SECRET_MASK",
    "SOURCE_DEFINITIONS",
    "SYNC_MODES",
    "TERMINAL_STATUSES",
    "TOKEN_PATH",
    "UNEXPECTED_DETAIL",
    "FakeAirbyteApi",
    "JobPlan",
    "RequestRecord",
    "check_against_spec",
    "micronaut_error_body",
    "problem_body",
]
