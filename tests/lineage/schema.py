"""Validates an OpenLineage event against the official OpenLineage JSON schemas vendored in
tests/lineage/spec/ (see its README): the event against OpenLineage.json's RunEvent, and each
standard facet (its `_schemaURL` names a spec/facets/<Name>.json) against that facet's schema.

Every `$ref` resolves in a local `referencing` registry built from the vendored files, so nothing
is fetched. Custom facets (Airflow's, dbt's, ours) are held only to the spec's BaseFacet shape
(`_producer` and `_schemaURL` as URIs), which the RunEvent schema already applies to every facet.
The Airflow provider's own facet schemas (airflow/providers/openlineage/facets/*.json) are not
used: the provider's events do not match them (2.20.3 on Airflow 3.3: `taskInstance.pool`
missing, `retry_exponential_backoff` an integer), an upstream defect.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource

SPEC = Path(__file__).parent / "spec"
FACETS_URL = "https://openlineage.io/spec/facets/"


def _format_checker() -> FormatChecker:
    """`uuid` is checked by jsonschema itself; `date-time` and `uri` need packages Airflow does not
    install (rfc3339-validator, rfc3987), without which jsonschema skips them, so check them here."""
    checker = FormatChecker(["uuid"])

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if "T" not in value.upper():
            raise ValueError("no time part")
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        if parsed.tzinfo is None:
            raise ValueError("no time zone")
        return True

    @checker.checks("uri")
    def _uri(value: object) -> bool:
        return not isinstance(value, str) or bool(urlsplit(value).scheme)

    return checker


@cache
def _registry() -> Registry:
    paths = [SPEC / "OpenLineage.json", *sorted((SPEC / "facets").glob("*.json"))]
    resources = [Resource.from_contents(json.loads(p.read_text())) for p in paths]
    return Registry().with_resources((r.id(), r) for r in resources).crawl()


@cache
def _validator(ref: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": ref}, registry=_registry(), format_checker=_format_checker())


def _run_event_ref() -> str:
    return json.loads((SPEC / "OpenLineage.json").read_text())["$id"] + "#/$defs/RunEvent"


def _errors(instance: object, ref: str, where: str) -> list[str]:
    found = []
    for error in sorted(_validator(ref).iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path]):
        while error.context:  # anyOf/oneOf: name the alternative's own error, not "not valid under any"
            error = best_match(error.context)
        path = where + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        found.append(f"{path}: {error.message}")
    return found


def _facets(event: dict) -> list[tuple[str, str, dict]]:
    """(where, name, facet) for every facet of the event, with `where` a path into the event."""
    groups = [("run.facets", event.get("run")), ("job.facets", event.get("job"))]
    for key, extra in (("inputs", "inputFacets"), ("outputs", "outputFacets")):
        datasets = event.get(key) if isinstance(event.get(key), list) else []
        groups += [(f"{key}[{n}].{group}", d) for n, d in enumerate(datasets) for group in ("facets", extra)]
    found = []
    for where, holder in groups:
        facets = holder.get(where.rsplit(".", 1)[1]) if isinstance(holder, dict) else None
        if isinstance(facets, dict):
            found += [(where, name, facet) for name, facet in facets.items() if isinstance(facet, dict)]
    return found


def problems(event: dict) -> list[str]:
    """What makes `event` invalid against the vendored spec, each naming where; [] when valid."""
    found = _errors(event, _run_event_ref(), "$")
    for where, name, facet in _facets(event):
        url = facet.get("_schemaURL")
        if not isinstance(url, str) or not url.startswith(FACETS_URL):
            continue  # a custom facet: the RunEvent schema held it to BaseFacet's shape
        base = url.split("#", 1)[0]
        try:
            _registry().get_or_retrieve(base)
        except NoSuchResource:
            found.append(
                f"$.{where}.{name}: {url} is not among the vendored schemas in {SPEC / 'facets'} (renew them, see README)"
            )
            continue
        ref = url if "#" in url else base + f"#/$defs/{Path(urlsplit(base).path).stem}"
        found += _errors(facet, ref, f"$.{where}.{name}")
    return found
