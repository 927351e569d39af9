"""Cut tests/fakes/airbyte_api_spec/api_sdk.yaml from a full copy of Airbyte's api_sdk.yaml.

    .venv/bin/python tests/fakes/airbyte_api_spec/cut.py path/to/full/api_sdk.yaml

Run by hand when the vendored slice is renewed (see README.md beside it), never by the tests.
What it keeps of `components.schemas` (nothing else of the document is read by the tests):

- whole, with every local `$ref` they reach: the configuration schemas the tests validate
  against or name (FULL below, and their `-update` twins);
- of every other `source-*` / `destination-*` schema: its property tree (property names,
  `oneOf` / `anyOf` / `allOf` branches, array `items`) and its `airbyte_secret` marks, which is
  all that include/pipeline/ingest/secret_fields.py's `derive()` reads, so the committed
  include/airbyte/secret_fields.json still comes out of the slice byte for byte.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
TARGET = HERE / "api_sdk.yaml"
# tests/airbyte_server/test_apply.py (source-s3), tests/airbyte_server/test_s3_destination_apply.py
# (destination-s3), tests/security/test_secret_fields.py (destination-postgres's secrets) and
# the source-faker declaration of tests/airbyte_server/test_apply.py.
FULL = ("source-s3", "destination-s3", "destination-postgres", "source-faker")
# the connection bodies apply.py sends (tests/fakes/airbyte_api/spec.py checks them against these)
REQUESTS = ("ConnectionCreateRequest", "ConnectionPatchRequest")
COMBINATORS = ("oneOf", "anyOf", "allOf")
HEADER = """\
# A slice of Airbyte's public API document api_sdk.yaml (airbytehq/airbyte-platform at commit
# 310e6cb6ac0e7bd310fe99bfd505d5c36ba71f2e, airbyte-api/server-api/src/main/openapi/, ELv2),
# kept as test data only. Cut by tests/fakes/airbyte_api_spec/cut.py: see README.md beside it.
"""


def refs(node: Any) -> set[str]:
    """Every local `#/components/schemas/<name>` reached from `node`, directly."""
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[-1])
        for value in node.values():
            found |= refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= refs(value)
    return found


def skeleton(node: dict[str, Any]) -> dict[str, Any]:
    """The property tree of a schema with its airbyte_secret marks: what derive() reads."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: skeleton(child) if isinstance(child, dict) else child for name, child in value.items()}
        elif key in COMBINATORS and isinstance(value, list):
            out[key] = [skeleton(child) if isinstance(child, dict) else child for child in value]
        elif key == "items" and isinstance(value, dict):
            out[key] = skeleton(value)
        elif key == "airbyte_secret":
            out[key] = value
    return out


def cut(full: dict[str, Any]) -> dict[str, Any]:
    schemas = full["components"]["schemas"]
    whole = [name for base in FULL for name in (base, f"{base}-update") if name in schemas] + list(REQUESTS)
    missing = [name for name in FULL + REQUESTS if name not in schemas]
    if missing:
        raise SystemExit(f"not in the document: {missing}")
    todo, kept = list(whole), set()
    while todo:  # the $ref closure of the whole schemas
        name = todo.pop()
        if name not in kept:
            kept.add(name)
            todo += sorted(refs(schemas[name]) - kept)
    out: dict[str, Any] = {}
    for name, schema in schemas.items():  # the document's own order
        if name in kept:
            out[name] = schema
        elif name.startswith(("source-", "destination-")):
            out[name] = skeleton(schema)
    return {"openapi": full["openapi"], "info": full["info"], "components": {"schemas": out}}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: cut.py path/to/full/api_sdk.yaml", file=sys.stderr)
        return 2
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(argv[0]) as spec:
        full = yaml.load(spec, Loader=loader)  # noqa: S506 (a safe loader)
    text = yaml.safe_dump(cut(full), sort_keys=False, default_flow_style=None, width=120, allow_unicode=True)
    TARGET.write_text(HEADER + text)
    print(f"wrote {TARGET} ({TARGET.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
