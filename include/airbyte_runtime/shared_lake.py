"""One read for two destinations: the warehouse's read also feeds the lake connection it reads for.

When the warehouse connection and a lake connection read the same source, streams and cursors
(include/pipeline/ingest/shared_read.py pairs them and puts the lake's part in the spec), one
connector `read` is enough for both, provided both would read from the same place: their stored
states are equal now (the warehouse's `<schema>._airbyte_state` rows and the lake's
`_airbyte_state/<connection>.json`, as normalized JSON; both empty on a first sync). Then every
record and state message goes to the warehouse writer and to a LakeSync (lake.py), parsed once.

Each destination keeps its own semantics and state. The warehouse commits first (its rows and
state, one transaction per stream); then the lake uploads its open parts and writes its state
file. A lake failure, during the read or after the warehouse committed, never fails the
warehouse: it is logged and reported (RESULT's `lake.failed`), the parts this read uploaded for
the lake are removed, and the lake's own task reads on its own from its unchanged state. A
connector or warehouse failure commits nothing in either.

Anything else (no lake part, a full refresh, several reads, states that differ, the lake's state
not readable): the lake reads on its own, as before, and the log says why in one line.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from types import SimpleNamespace
from typing import Any

from include.airbyte_runtime import lake as lake_destination
from include.airbyte_runtime.parquet import StreamLayout
from include.airbyte_runtime.report import log
from include.airbyte_runtime.state import without_nulls


def normalized(states: list | None) -> list[str]:
    """States as comparable text: each without null members, keys sorted; the list sorted."""
    return sorted(json.dumps(without_nulls(s), sort_keys=True) for s in states or [])


def open_lake(spec: dict, catalog: dict, groups: int, warehouse_states: list) -> tuple[Any, str]:
    """(a LakeSync fed by this read, "") when the lake can share it, else (None, why not)."""
    part = spec.get("lake")
    if not part:
        return None, ""
    name = part["connection"]
    if spec.get("full_refresh"):
        return None, f"a full refresh of {spec['connection']}"
    if groups != 1:
        return None, f"{spec['connection']} makes {groups} reads (one per write strategy)"
    s3 = SimpleNamespace(**part["s3"])
    try:
        client = lake_destination.client_for(s3)
        lake_states = lake_destination.load_state(client, s3, name)
    except Exception as e:  # noqa: BLE001 - any failure here only means: no sharing
        return None, f"its state in s3://{s3.bucket}/{s3.path_prefix}/ could not be read ({type(e).__name__}: {e})"
    if normalized(lake_states) != normalized(warehouse_states):
        return None, (
            f"its stored state differs from {spec['connection']}'s "
            f"({len(lake_states or [])} vs {len(warehouse_states)} stream states)"
        )
    schemas = part.get("json_schemas") or {}
    layouts = {
        s["stream"]["name"]: StreamLayout.of(schemas.get(s["stream"]["name"]) or s["stream"].get("json_schema") or {})
        for s in catalog["streams"]
    }
    if not client.bucket_exists(s3.bucket):
        client.make_bucket(s3.bucket)
    sink = lake_destination.LakeSync(
        s3, name, client, layouts, set(part.get("overwrite") or []),
        rows_per_group=part.get("rows_per_group") or lake_destination.ROWS_PER_GROUP,
        rows_per_object=part.get("rows_per_object") or lake_destination.ROWS_PER_OBJECT, log=log,
        schema_policy=part.get("schema_policy") or "propagate_columns",
    )  # fmt: skip
    return sink, ""


class TwoDestinations:
    """The warehouse writer and a LakeSync behind the one writer interface sync.read_into drives."""

    def __init__(self, warehouse: Any, lake: Any, catalog: dict) -> None:
        self.warehouse, self.lake = warehouse, lake
        self.namespaces = {s["stream"]["name"]: s["stream"].get("namespace") for s in catalog["streams"]}
        self.started = time.monotonic()
        self.failed: str | None = None
        self.figures: dict[str, dict] | None = None

    def take_record(self, stream: str, data: dict, emitted_at: int) -> None:
        self.warehouse.take_record(stream, data, emitted_at)
        if self.lake is not None:
            try:
                self.lake.take(stream, self.namespaces.get(stream), data, emitted_at)
            except Exception as e:  # noqa: BLE001 - the lake never fails the warehouse
                self._lake_failed(e)

    def take_state(self, message: Any) -> None:
        self.warehouse.take_state(message)
        if self.lake is not None:
            self.lake.take_state(without_nulls(json.loads(message.model_dump_json())))

    def stream_complete(self, stream: str) -> None:
        self.warehouse.stream_complete(stream)

    def connector_log(self, level: str, message: str, stack_trace: str | None) -> None:
        self.warehouse.connector_log(level, message, stack_trace)

    def abort(self) -> None:
        """The read or the warehouse failed: nothing committed in either (the lake's parts removed)."""
        self.warehouse.abort()
        if self.lake is not None:
            self._discard()

    def commit(self) -> None:
        """The warehouse first; then the lake's parts and state, whose failure is only reported."""
        self.warehouse.commit()
        if self.lake is None:
            return
        try:
            self.figures = self.lake.commit()
        except Exception as e:  # noqa: BLE001 - the warehouse has committed: report, never fail it
            self._lake_failed(e)
        else:
            self.lake.close()

    def _lake_failed(self, error: Exception) -> None:
        self.failed = f"{type(error).__name__}: {error}"
        log(
            f"lake: the shared read's part for {self.lake.connection} failed, the warehouse goes on: {self.failed}. "
            f"{self.lake.connection}'s task reads on its own"
        )
        self._discard()

    def _discard(self) -> None:
        lake, self.lake = self.lake, None
        try:
            removed = lake.remove_uploaded()
            if removed:
                log(f"lake: {removed} parts of this read removed (its state was not saved)")
        except Exception as e:  # noqa: BLE001 - at-least-once: the lake's own read covers them again
            log(f"lake: parts of this read could not be removed ({type(e).__name__}: {e})")
        lake.close()

    def outcome(self, sink: Any) -> dict:
        """What RESULT says of the lake's part: its figures and new state, or why it failed."""
        if self.failed is not None or self.figures is None:
            return {"connection": sink.connection, "failed": self.failed or "not committed"}
        return {
            "connection": sink.connection,
            "streams": self.figures,
            "state": list(sink.states.values()),
            "started": sink.started.astimezone(dt.UTC).isoformat(),
            "bytes": sink.uploaded_bytes,
            "schema_changes": sink.schema_changes,
            "seconds": round(time.monotonic() - self.started, 3),
        }
