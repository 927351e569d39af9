"""Airbyte's S3 destination for connections.yaml (`type: s3`): the lake's raw history, as Parquet.

One declaration, both engines:

- platform: `platform_config` is the `destination-s3` configuration of Airbyte's public API
  (api_sdk.yaml `destination-s3`: bucket, bucket path, region, endpoint, keys, Parquet format,
  `s3_path_format`); Airbyte's own connector writes the files.
- embedded: include/pipeline/ingest/lake_sync.py `sync_to_lake` runs the source connector and
  the runtime's lake destination (include/airbyte_runtime/lake.py, parquet.py) writes what it
  emits the way Airbyte's S3 destination lays it out.

This module holds the declaration: its settings and their checks, and the platform's config.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from include.airbyte_runtime.lake import S3DestinationError
from include.airbyte_runtime.parquet import COMPRESSION

DEFAULT_PATH_FORMAT = "${NAMESPACE}/${STREAM_NAME}/${YEAR}_${MONTH}_${DAY}_${EPOCH}_"
FORMATS = ("parquet",)
# Airbyte's S3 destination supports these; the deduplicating modes need a warehouse to merge in.
SYNC_MODES = ("full_refresh_overwrite", "full_refresh_append", "incremental_append")
KEYS = ("type", "bucket", "path_prefix", "format", "endpoint", "region", "access_key_id", "secret_access_key")
OPTIONAL_KEYS = ("path_format", "airbyte")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.=-]*(/[A-Za-z0-9_][A-Za-z0-9_.=-]*)*$")
_VARIABLE = re.compile(r"\$\{([A-Z_]+)\}")
PATH_VARIABLES = (
    "NAMESPACE", "STREAM_NAME", "YEAR", "MONTH", "DAY", "HOUR", "MINUTE", "SECOND", "MILLISECOND", "EPOCH", "UUID",
)  # fmt: skip
REGIONS_HINT = "e.g. us-east-1 (SeaweedFS and MinIO accept any; Airbyte's spec lists AWS regions)"


# -- the declaration ----------------------------------------------------------------------------
@dataclass(frozen=True)
class S3Settings:
    bucket: str
    path_prefix: str
    format: str
    endpoint: str  # may be ${ENV}
    region: str
    access_key_id: str  # ${ENV}
    secret_access_key: str  # ${ENV}
    path_format: str = DEFAULT_PATH_FORMAT

    def resolved(self, environ: dict[str, str] | None = None) -> S3Settings:
        """The settings with `${ENV_VAR}` references filled in (at run time only), by the
        declaration's one resolver."""
        from include.pipeline.ingest.connections import MissingEnvironmentVariable, resolve_env

        try:
            return S3Settings(**resolve_env(dict(vars(self)), "the s3 destination", environ))
        except MissingEnvironmentVariable as exc:
            raise S3DestinationError(str(exc)) from exc


def check_destination(check, name: str, d: dict, where: str):
    """Validate a `type: s3` destination of connections.yaml (problems go to `check`, the loader's
    line-aware checker); return its Destination, or None when it has a problem."""
    from include.pipeline.ingest.connections import S3Destination, _check_secrets

    if not check.keys(d, where, KEYS, OPTIONAL_KEYS):
        return None
    ok = True

    def fail(key: str, what: str, fix: str) -> None:
        nonlocal ok
        check.fail(d.key_lines.get(key, d.line), f"{where} {what}", fix)
        ok = False

    if not isinstance(d["bucket"], str) or not _BUCKET.match(d["bucket"]):
        fail(
            "bucket", f"bucket {d['bucket']!r} is not an S3 bucket name", "use 3-63 lowercase letters, digits, . and -"
        )
    prefix = d["path_prefix"]
    if not isinstance(prefix, str) or not _PREFIX.match(prefix) or ".." in prefix.split("/"):
        fail(
            "path_prefix", f"path_prefix {prefix!r} is not a plain folder path",
            "write folders of letters, digits, _ . = - separated by / (no leading /, no ..), e.g. `raw_history`",
        )  # fmt: skip
    if d["format"] not in FORMATS:
        fail("format", f"format {d['format']!r} is not supported", "use `format: parquet`")
    for key in ("endpoint", "region", "access_key_id", "secret_access_key"):
        if not isinstance(d[key], str) or not d[key].strip():
            fail(
                key,
                f"{key} is empty",
                f'write `{key}: "${{ENV_VAR}}"`' + (f" ({REGIONS_HINT})" if key == "region" else ""),
            )
    path_format = d.get("path_format", DEFAULT_PATH_FORMAT)
    unknown = [v for v in _VARIABLE.findall(path_format or "") if v not in PATH_VARIABLES]
    if not isinstance(path_format, str) or not path_format.strip() or unknown or ".." in path_format.split("/"):
        fail(
            "path_format", f"path_format {path_format!r} is not an s3_path_format of Airbyte's S3 destination",
            f"use the variables {', '.join('${' + v + '}' for v in PATH_VARIABLES)}, e.g. `{DEFAULT_PATH_FORMAT}`",
        )  # fmt: skip
    overrides = d.get("airbyte") or {}
    if not isinstance(overrides, dict):
        fail(
            "airbyte", "airbyte must be a mapping", "write `airbyte:` with `key: value` lines (destination-s3 settings)"
        )
        overrides = {}
    _check_secrets(check, "destination-s3", d, where, d.line)
    if overrides:
        _check_secrets(check, "destination-s3", overrides, f"{where} airbyte", getattr(overrides, "line", d.line))
    if not ok:
        return None
    settings = S3Settings(
        d["bucket"], prefix.strip("/"), d["format"], d["endpoint"], d["region"], d["access_key_id"],
        d["secret_access_key"], path_format,
    )  # fmt: skip
    return S3Destination(name=name, s3=settings, airbyte=dict(overrides))


def check_connection_streams(check, line: int, where: str, streams) -> None:
    """A connection into an s3 destination uses only the sync modes Airbyte's S3 destination has."""
    for stream in streams:
        if stream.sync_mode not in SYNC_MODES:
            check.fail(
                line, f"stream '{stream.name}' of {where} is {stream.sync_mode}, which an s3 destination cannot do",
                f"use one of: {', '.join(SYNC_MODES)} (the lake keeps history; deduplicate when reading)",
            )  # fmt: skip


# -- platform engine -----------------------------------------------------------------------------
def platform_config(destination, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The `destination-s3` configuration for Airbyte's public API, then the declared overrides."""
    from include.pipeline.ingest.connections import resolve_env

    environ = dict(os.environ) if environ is None else environ
    s3 = destination.s3.resolved(environ)
    config: dict[str, Any] = {
        "destinationType": "s3",
        "s3_bucket_name": s3.bucket,
        "s3_bucket_path": s3.path_prefix,
        "s3_bucket_region": s3.region,
        "s3_endpoint": s3.endpoint,
        "access_key_id": s3.access_key_id,
        "secret_access_key": s3.secret_access_key,
        "s3_path_format": s3.path_format,
        "format": {"format_type": "Parquet", "compression_codec": COMPRESSION},
    }
    config.update(resolve_env(destination.airbyte, f"destination '{destination.name}' airbyte", environ))
    return config
