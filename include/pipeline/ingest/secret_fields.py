"""Which fields of a connector's configuration are secrets: one list, for validation and masking.

Derived from Airbyte's own connector specs (the public API's `api_sdk.yaml`, where every secret
field carries `airbyte_secret: true`, at any depth: inside `oneOf` branches such as
`tunnel_method.ssh_key` or `ssl_mode.client_key`). Parsing that 3.3 MB document takes seconds,
so the derived list is kept in include/airbyte/secret_fields.json and regenerated with

    python -m include.pipeline.ingest.secret_fields path/to/api_sdk.yaml

(tests/security/test_secret_fields.py checks the file still matches the spec, through the slice of it
in tests/fakes/airbyte_api_spec/, which keeps all that `derive` reads). A field is secret
for a connector when:
- its path (property names, list items and `oneOf` branches left out) is marked in that
  connector's spec, or
- its name is one the connector's spec marks anywhere (source-s3's pinned version expects its
  keys under `credentials:`, the public spec has them at the top: both are secret), or
- its name is a generic secret name (any spec's secret field whose name says password, secret,
  token, key, certificate...): the fallback for connectors the spec does not know.

connections.yaml may hold a secret only as a `${ENV_VAR}` reference; plan output masks them all.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from include.pipeline import settings

CACHE_FILE = settings.REPO_ROOT / "include" / "airbyte" / "secret_fields.json"
MASK = "**********"  # what Airbyte shows instead of a secret
# A generic secret name, among the names the specs mark secret (not `username`, `email`, `domain`,
# which some connectors mark secret and most do not).
GENERIC = re.compile(
    r"password|secret|token|(^|_)key($|_)|apikey|api_?key|certificate|credentials|signature|hash", re.I
)
# Keys whose value is opaque data, not configuration: source-s3's `input_schema` (a JSON string,
# written in connections.yaml as a column: type mapping) names columns, not settings.
OPAQUE_KEYS = frozenset({"input_schema"})


# -- deriving the list from the spec ------------------------------------------------------------
def _secret_paths(node: Any, path: tuple[str, ...], out: set[tuple[str, ...]]) -> None:
    if not isinstance(node, dict):
        return
    if node.get("airbyte_secret") is True and path:
        out.add(path)
    for key, child in (node.get("properties") or {}).items():
        _secret_paths(child, (*path, key), out)
    for combinator in ("oneOf", "anyOf", "allOf"):
        for child in node.get(combinator) or []:
            _secret_paths(child, path, out)
    if isinstance(node.get("items"), dict):
        _secret_paths(node["items"], path, out)


def derive(spec_path: Path) -> dict[str, Any]:
    """{"connectors": {name: [dotted paths]}, "generic": [names]} from an api_sdk.yaml."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(spec_path) as spec:
        schemas = yaml.load(spec, Loader=loader)["components"]["schemas"]  # noqa: S506 (a safe loader)
    connectors: dict[str, set[tuple[str, ...]]] = {}
    for name, schema in schemas.items():
        if not name.startswith(("source-", "destination-")):
            continue
        paths: set[tuple[str, ...]] = set()
        _secret_paths(schema, (), paths)
        if paths:
            connectors.setdefault(name.removesuffix("-update"), set()).update(paths)
    names = {p[-1] for paths in connectors.values() for p in paths}
    return {
        "source": str(spec_path.name),
        "connectors": {n: sorted(".".join(p) for p in connectors[n]) for n in sorted(connectors)},
        "generic": sorted(n for n in names if GENERIC.search(n)),
    }


def write_cache(spec_path: Path, target: Path = CACHE_FILE) -> Path:
    table = derive(spec_path)
    lines = [f'  "source": {json.dumps(table["source"])},', f'  "generic": {json.dumps(table["generic"])},']
    lines.append('  "connectors": {')
    items = list(table["connectors"].items())
    lines += [
        f"    {json.dumps(n)}: {json.dumps(p)}" + ("," if i < len(items) - 1 else "") for i, (n, p) in enumerate(items)
    ]
    target.write_text("{\n" + "\n".join(lines) + "\n  }\n}\n")
    return target


# -- using it ------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _table() -> tuple[dict[str, frozenset[str]], frozenset[str]]:
    data = json.loads(CACHE_FILE.read_text())
    return {n: frozenset(p) for n, p in data["connectors"].items()}, frozenset(data["generic"])


def is_secret(connector: str, path: Sequence[str]) -> bool:
    """Whether the field at `path` (property names) of `connector`'s configuration is a secret."""
    if not path:
        return False
    connectors, generic = _table()
    paths = connectors.get(connector, frozenset())
    leaf = path[-1]
    return ".".join(path) in paths or any(p.rsplit(".", 1)[-1] == leaf for p in paths) or leaf in generic


def secret_values(
    connector: str, config: Any, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Any, dict]]:
    """(path, value, the mapping holding it) of every secret field present in `config`, at any depth."""
    if isinstance(config, dict):
        for key, value in config.items():
            if not isinstance(key, str) or key in OPAQUE_KEYS:
                continue
            if is_secret(connector, (*path, key)) and not isinstance(value, dict | list):
                yield (*path, key), value, config
            else:
                yield from secret_values(connector, value, (*path, key))
    elif isinstance(config, list):
        for item in config:
            yield from secret_values(connector, item, path)


def mask(connector: str, config: Any, path: tuple[str, ...] = ()) -> Any:
    """A copy of `config` with every secret value replaced by MASK."""
    if isinstance(config, dict):
        return {
            k: (
                MASK
                if isinstance(k, str) and k not in OPAQUE_KEYS and is_secret(connector, (*path, k))
                and v is not None and not isinstance(v, dict | list)
                else v if k in OPAQUE_KEYS else mask(connector, v, (*path, str(k)))
            )
            for k, v in config.items()
        }  # fmt: skip
    if isinstance(config, list):
        return [mask(connector, v, path) for v in config]
    return config


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m include.pipeline.ingest.secret_fields path/to/api_sdk.yaml")
    print(f"wrote {write_cache(Path(sys.argv[1]))}")
