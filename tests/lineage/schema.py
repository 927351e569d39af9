"""Checks an OpenLineage event against the OpenLineage spec (2-0-2): the RunEvent's rules and the
required keys of each standard facet it carries.

openlineage-python, the official client, ships classes generated from the spec but not the
spec's JSON files, and no package on PyPI ships them; these rules are the spec's RunEvent
(OpenLineage.json: required keys, eventType's values, a UUID runId, a date-time with a time,
every facet's `_producer` and `_schemaURL`) and the `required` lists of the standard facets
(spec/facets/*.json). The Airflow provider's own facet schemas (airflow/providers/openlineage/
facets/*.json) are not used: the provider's events do not match them (2.20.3 on Airflow 3.3:
`taskInstance.pool` missing, `retry_exponential_backoff` an integer), an upstream defect.
"""

from __future__ import annotations

import uuid
from datetime import datetime

EVENT_TYPES = {"START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"}
# standard facet -> the keys its schema requires besides _producer/_schemaURL (spec/facets/*.json)
STANDARD_FACETS = {
    "parent": ("job", "run"),
    "nominalTime": ("nominalStartTime",),
    "processing_engine": ("version",),
    "jobType": ("processingType", "integration"),
    "documentation": ("description",),
    "sql": ("query",),
    "schema": (),
    "ownership": (),
    "tags": (),
    "errorMessage": ("message", "programmingLanguage"),
    "sourceCodeLocation": ("type", "url"),
    "dataSource": (),
}


def problems(event: dict) -> list[str]:
    found = []
    for key in ("eventTime", "producer", "schemaURL", "run", "job"):
        if key not in event:
            found.append(f"no {key}")
    if found:
        return found
    if event.get("eventType", "OTHER") not in EVENT_TYPES:
        found.append(f"eventType {event['eventType']!r}")
    try:
        if "T" not in event["eventTime"]:
            raise ValueError("no time")
        datetime.fromisoformat(event["eventTime"].replace("Z", "+00:00"))
    except ValueError as exc:
        found.append(f"eventTime {event['eventTime']!r}: {exc}")
    try:
        uuid.UUID(event["run"]["runId"])
    except (KeyError, ValueError):
        found.append(f"runId {event['run'].get('runId')!r} is not a UUID")
    if not (isinstance(event["job"].get("namespace"), str) and isinstance(event["job"].get("name"), str)):
        found.append("job without namespace and name")
    for key in ("inputs", "outputs"):
        for d in event.get(key) or []:
            if not (isinstance(d.get("namespace"), str) and isinstance(d.get("name"), str)):
                found.append(f"{key}: {d} without namespace and name")
            found += _facet_problems(d.get("facets") or {}, f"{key} {d.get('name')}")
            found += _facet_problems(d.get("inputFacets" if key == "inputs" else "outputFacets") or {}, key)
    found += _facet_problems(event["run"].get("facets") or {}, "run")
    found += _facet_problems(event["job"].get("facets") or {}, "job")
    parent = (event["run"].get("facets") or {}).get("parent")
    if parent:
        try:
            uuid.UUID(parent["run"]["runId"])
            assert parent["job"]["namespace"] and parent["job"]["name"]
        except (KeyError, ValueError, AssertionError, TypeError):
            found.append(f"parent facet {parent} lacks a job's namespace and name or a UUID runId")
    return found


def _facet_problems(facets: dict, where: str) -> list[str]:
    found = []
    for name, facet in facets.items():
        if not isinstance(facet, dict):
            found.append(f"{where} facet {name} is not an object")
            continue
        required = ("_producer", "_schemaURL", *STANDARD_FACETS.get(name, ()))
        found += [f"{where} facet {name}: no {key}" for key in required if facet.get(key) in (None, "")]
    return found
