"""What the fake knows of Airbyte: API paths, job statuses and named outcomes, sync modes, the
registry's connector definition ids, default catalogs and the configuration keys it masks."""

from __future__ import annotations

from typing import Any

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
