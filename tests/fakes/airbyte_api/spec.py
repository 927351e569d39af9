"""Request bodies checked against the vendored slice of Airbyte's public API spec
(tests/fakes/airbyte_api_spec/api_sdk.yaml), as the server's request validation does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .problems import _bad_request

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
        text = (Path(__file__).parent.with_name("airbyte_api_spec") / "api_sdk.yaml").read_text()
        _REQUEST_SCHEMAS.update(yaml.load(text, Loader=loader)["components"]["schemas"])  # noqa: S506
    schema = {"$ref": f"#/components/schemas/{name}", "components": {"schemas": _REQUEST_SCHEMAS}}
    try:
        jsonschema.validate({k: v for k, v in body.items() if not k.startswith("_")}, schema)
    except jsonschema.ValidationError as e:
        where = ".".join(str(p) for p in e.absolute_path) or "(body)"
        raise _bad_request(f"{name}: {where}: {e.message}") from None
