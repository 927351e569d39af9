"""The `type: s3` destination of connections.yaml (the lake's raw history, as Parquet): its model,
its settings, and its `destination-s3` configuration for an Airbyte server.

Each key is validated by the model like every other block's (declaration/problems.py turns a
failure into 'file:line: what. Fix: how'); secrets are checked by the loader as for any block.
The platform engine sends `platform_config` to Airbyte's public API (api_sdk.yaml
`destination-s3`: bucket, bucket path, region, endpoint, keys, Parquet format, `s3_path_format`);
the embedded engine writes the same layout itself (include/airbyte_runtime/lake.py, parquet.py).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationInfo

from include.airbyte_runtime.lake import S3DestinationError  # one error class, raised by both halves
from include.airbyte_runtime.parquet import COMPRESSION  # the Parquet codec, both engines
from include.pipeline.ingest.declaration.values import (
    DestinationBlock,
    MissingEnvironmentVariable,
    label_of,
    mapping,
    problem,
    resolve_env,
)

DEFAULT_PATH_FORMAT = "${NAMESPACE}/${STREAM_NAME}/${YEAR}_${MONTH}_${DAY}_${EPOCH}_"
FORMATS = ("parquet",)
# Airbyte's S3 destination supports these; the deduplicating modes need a warehouse to merge in.
SYNC_MODES = ("full_refresh_overwrite", "full_refresh_append", "incremental_append")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
PREFIX = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.=-]*(/[A-Za-z0-9_][A-Za-z0-9_.=-]*)*$")
VARIABLE = re.compile(r"\$\{([A-Z_]+)\}")
PATH_VARIABLES = (
    "NAMESPACE", "STREAM_NAME", "YEAR", "MONTH", "DAY", "HOUR", "MINUTE", "SECOND", "MILLISECOND", "EPOCH", "UUID",
)  # fmt: skip
REGIONS_HINT = "e.g. us-east-1 (SeaweedFS and MinIO accept any; Airbyte's spec lists AWS regions)"


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
        try:
            return S3Settings(**resolve_env(dict(vars(self)), "the s3 destination", environ))
        except MissingEnvironmentVariable as exc:
            raise S3DestinationError(str(exc)) from exc


# -- the keys' validators: each problem in the words of the file --------------------------------
def _bucket(value: Any, info: ValidationInfo) -> Any:
    if not isinstance(value, str) or not BUCKET.match(value):
        where = label_of("{where}", info)
        raise problem(
            f"{where} bucket {value!r} is not an S3 bucket name", "use 3-63 lowercase letters, digits, . and -"
        )
    return value


def _prefix(value: Any, info: ValidationInfo) -> Any:
    if not isinstance(value, str) or not PREFIX.match(value) or ".." in value.split("/"):
        raise problem(
            f"{label_of('{where}', info)} path_prefix {value!r} is not a plain folder path",
            "write folders of letters, digits, _ . = - separated by / (no leading /, no ..), e.g. `raw_history`",
        )
    return value


def _format(value: Any, info: ValidationInfo) -> Any:
    if value not in FORMATS:
        raise problem(f"{label_of('{where}', info)} format {value!r} is not supported", "use `format: parquet`")
    return value


def _filled(value: Any, info: ValidationInfo) -> Any:
    if not isinstance(value, str) or not value.strip():
        key = info.field_name
        hint = f" ({REGIONS_HINT})" if key == "region" else ""
        raise problem(f"{label_of('{where}', info)} {key} is empty", f'write `{key}: "${{ENV_VAR}}"`{hint}')
    return value


def _path_format(value: Any, info: ValidationInfo) -> Any:
    unknown = [v for v in VARIABLE.findall(value) if v not in PATH_VARIABLES] if isinstance(value, str) else []
    if not isinstance(value, str) or not value.strip() or unknown or ".." in value.split("/"):
        raise problem(
            f"{label_of('{where}', info)} path_format {value!r} is not an s3_path_format of Airbyte's S3 destination",
            f"use the variables {', '.join('${' + v + '}' for v in PATH_VARIABLES)}, e.g. `{DEFAULT_PATH_FORMAT}`",
        )
    return value


Filled = Annotated[str, BeforeValidator(_filled)]


class S3Destination(DestinationBlock):
    """Airbyte's S3 destination: the streams as Parquet files in a bucket (the lake's raw history).

    It has no warehouse schema and no Airflow connection (`schema` and `airflow_conn_id` are
    empty); `s3` is its settings, `${ENV_VAR}` references kept until run time."""

    type: Literal["s3"] = "s3"
    bucket: Annotated[str, BeforeValidator(_bucket)]
    path_prefix: Annotated[str, BeforeValidator(_prefix)]
    format: Annotated[str, BeforeValidator(_format)]
    endpoint: Filled
    region: Filled
    access_key_id: Filled
    secret_access_key: Filled
    path_format: Annotated[str, BeforeValidator(_path_format)] = DEFAULT_PATH_FORMAT
    # destination-s3 settings for an Airbyte server that differ from the above; `${ENV}` allowed
    airbyte: Annotated[dict[str, Any], mapping("{where} airbyte")] = Field(default_factory=dict)

    @property
    def s3(self) -> S3Settings:
        return S3Settings(
            self.bucket, self.path_prefix.strip("/"), self.format, self.endpoint, self.region, self.access_key_id,
            self.secret_access_key, self.path_format,
        )  # fmt: skip

    @property
    def schema(self) -> str:  # type: ignore[override]  # (BaseModel's deprecated schema() classmethod)
        return ""

    @property
    def airflow_conn_id(self) -> str:
        return ""


def platform_config(destination: S3Destination, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The `destination-s3` configuration for Airbyte's public API, then the declared overrides."""
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
