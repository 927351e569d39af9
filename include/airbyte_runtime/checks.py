"""The runtime's checks of what a sync reads, before it commits: schema changes
(include/pipeline/ingest/schema_changes.py) and bad files (bad_files.py), carried out under the connection's policies.

`SyncChecks` is mixed into the runtime's warehouse writer (destination_postgres.py
`WarehouseWriter`), which calls it at four points: a record with a new set of keys
(`_new_layout`), every record (`_tally`: its file, the JSON types of its declared columns), a
connector log (`_connector_log`: a file it could not read whole) and a stream's commit
(`_before_commit`: removed columns, bad files; raising there commits nothing of the stream, and
its state is not stored, so its cursor does not move). What was met is kept in REPORT and goes
into RESULT (or PROBLEMS, before a failure).

`setup` (called by main.py) hands it the runtime's log and record_layout and the two policy modules.
"""

from __future__ import annotations

import json
from typing import Any

from include.airbyte_runtime.tables import normalize

# set by `setup`: the runner's log and record_layout, the modules schema_changes and bad_files
log: Any = print
record_layout: Any = None
schema_changes: Any = None
bad_files: Any = None
# What this sync met, reported in RESULT (or in PROBLEMS before a failure): see `report_problems`.
REPORT: dict[str, list[dict]] = {"schema_changes": [], "bad_files": []}
# stream -> its schema_changes.StreamWatch in this sync: one per runner, whichever read (one per
# write strategy) met the stream
WATCHES: dict[str, Any] = {}
# Distinct rows of types remembered per stream (nulls make a few; past this, every row is checked)
MAX_SIGNATURES = 4096
# The connection's policies and the source's config (set by the runner's main from the spec)
POLICY: dict[str, Any] = {"schema": "propagate_columns", "bad_file": "fail", "config": {}}


def setup(*, log_function: Any, layout_function: Any, changes_module: Any, files_module: Any, spec: dict) -> None:
    global log, record_layout, schema_changes, bad_files  # noqa: PLW0603 - one runner, set once
    log, record_layout, schema_changes, bad_files = log_function, layout_function, changes_module, files_module
    POLICY.update(
        schema=spec.get("schema_change_policy") or schema_changes.DEFAULT_POLICY,
        bad_file=spec.get("on_bad_file") or bad_files.DEFAULT_POLICY,
        config=spec.get("config") or {},
    )


class SyncChecks:
    """The writer's side of the checks: it provides `properties` (stream -> its JSON schema's
    properties, this sync's own copy), `column_types`, `connect`, `schema` and `table_name`."""

    _final_columns: dict[str, dict[str, str]]
    properties: dict[str, dict]

    def _tally(self, stream: str, data: dict, row: list, columns: list[str]) -> None:
        """Every record: count it per file, and note values of another type than declared."""
        watch = WATCHES[stream]
        watch.records += 1
        files, url = watch.files, data.get("_ab_source_file_url")
        files[url] = files.get(url, 0) + 1
        if watch.checks is None:
            watch.checks = watch.type_checks({c: i for i, c in enumerate(columns)})
            watch.signatures = {}
        if watch.checks:
            # the row's Python types, in C: a row typed as one seen before needs no check
            signature = tuple(map(type, row))
            found = watch.signatures.get(signature)
            if found is None:
                found = watch.check_types(watch.checks, row) or ()
                if len(watch.signatures) < MAX_SIGNATURES:
                    watch.signatures[signature] = found
            if found:
                self._type_changes(watch, found)

    def _connector_log(self, message: str, stack_trace: str | None) -> None:
        """A connector ERROR log naming a file it could not read whole (bad_files.from_log)."""
        bad = bad_files.from_log(message, stack_trace)
        if bad is not None:
            log(f"the connector could not read a file whole: {message}")
            self._watch(bad["stream"]).logged_bad.append(bad)

    def _watch(self, stream: str) -> Any:
        watch = WATCHES.get(stream)
        if watch is None:
            declared = dict(self.properties[stream])
            watch = schema_changes.StreamWatch(stream, declared, POLICY["schema"], normalize)
            watch.files, watch.checks, watch.logged_bad = {}, None, []
            WATCHES[stream] = watch
        return watch

    def _new_layout(self, stream: str, keys: tuple, data: dict, handler) -> Any:  # noqa: ANN001
        """The layout of a new set of keys; a key the declaration does not know meets the policy first."""
        watch = self._watch(stream)
        for key, column in watch.new_keys(keys):
            if column not in handler.index_keys:
                self._new_column(watch, stream, key, column, data.get(key), handler)
        layout = self._layouts[(stream, keys)] = record_layout(handler, keys)
        return layout

    def _new_column(self, watch, stream: str, key: str, column: str, value: Any, handler) -> None:  # noqa: ANN001
        """A column the declaration does not know: stop, ignore, or add it to the stage and raw table."""
        existing = self._raw_columns(stream)
        policy = watch.policy
        detail = f"not declared; first value a JSON {schema_changes.json_type(value)}"
        if policy in schema_changes.KEEPS and column in existing:  # added to raw by an earlier sync
            detail = None
        if policy == "ignore" and (schema_changes.NEW_COLUMN, column) in watch.changes:
            return
        if detail is not None:
            change = watch.record(schema_changes.NEW_COLUMN, column, detail, count=0)
            change["records"] = None
            log(schema_changes.describe(change))
            if policy == "disable_connection":
                self._stop(watch, change)
        if policy not in schema_changes.KEEPS:
            return
        definition = schema_changes.property_for(value)
        if column in existing:  # the raw table's own type, so the merge's insert fits it
            definition = {"type": ["null", existing[column]]}
        self.properties[stream][key] = definition  # this sync's copy: the cached catalog stays as discovered
        handler.index_keys.append(column)
        self._layouts = {k: v for k, v in self._layouts.items() if k[0] != stream}
        self._casts.pop(stream, None)
        watch.checks = None
        stage = self._stages.get(stream)
        if stage is not None:
            columns, _, _ = record_layout(handler, keys=())
            stage.add_column(column, self.column_types(stream)[column], [normalize(c) for c in columns])

    def _raw_columns(self, stream: str) -> dict[str, str]:
        """The columns of the stream's raw table (name -> JSON type), or {} before its first sync."""
        columns = self._final_columns.get(stream)
        if columns is None:
            kinds = {"bigint": "integer", "integer": "integer", "numeric": "number", "boolean": "boolean",
                     "json": "object", "jsonb": "object", "double precision": "number"}  # fmt: skip
            raw = self.connect()
            try:
                db = raw.cursor()
                db.execute(
                    "select column_name, data_type from information_schema.columns"
                    " where table_schema = %s and table_name = %s",
                    (self.schema, self.table_name(stream)),
                )
                columns = {name: kinds.get(kind, "string") for name, kind in db.fetchall()}
            finally:
                raw.close()
            self._final_columns[stream] = columns
        return columns

    @staticmethod
    def _stop(watch, change: dict) -> None:  # noqa: ANN001
        """disable_connection: the stream's sync stops here, before anything of it is committed."""
        REPORT["schema_changes"].extend(watch.changes.values())
        watch.changes = {}
        raise schema_changes.SchemaChangeStop(
            f"non_breaking_schema_updates_behavior is disable_connection: stream {watch.stream} not committed "
            f"(its cursor did not move): {schema_changes.describe(change)}. Declare the column in the source's "
            "input_schema, or choose another policy in connections.yaml, then run again"
        )

    def _type_changes(self, watch, found: list) -> None:  # noqa: ANN001
        for column, declared, sent in found:
            key = (schema_changes.TYPE_CHANGE, column)
            first = key not in watch.changes
            change = watch.record(schema_changes.TYPE_CHANGE, column, f"declared {declared}, sent {sent}")
            if first:
                log(schema_changes.describe(change))
                if watch.policy == "disable_connection":
                    self._stop(watch, change)

    def _before_commit(self, stream: str, stage: Any) -> None:
        """The stream's last checks before its rows are committed: removed columns, bad files."""
        watch = WATCHES.get(stream)
        if watch is None:
            return
        for column in watch.removed():
            change = watch.record(schema_changes.REMOVED_COLUMN, column, "declared, in no record of this sync")
            log(schema_changes.describe(change))
            if watch.policy == "disable_connection":
                self._stop(watch, change)
        REPORT["schema_changes"].extend(watch.changes.values())
        watch.changes = {}
        found = self._bad_files(stream, watch)
        if not found:
            return
        for bad in found:
            bad["policy"] = POLICY["bad_file"]
            bad["action"] = "file_skipped" if POLICY["bad_file"] == "skip" else "sync_failed"
            log(bad_files.describe(bad))
        REPORT["bad_files"].extend(found)
        if POLICY["bad_file"] != "skip":
            raise bad_files.BadFileStop(
                f"stream {stream} not committed (its cursor did not move): "
                + "; ".join(bad_files.describe(b) for b in found)
            )
        dropped = stage.drop_files([b["file"] for b in found])
        log(f"stream {stream}: {dropped} record(s) of the skipped file(s) left out of the commit")

    def _bad_files(self, stream: str, watch) -> list[dict]:  # noqa: ANN001
        """The files this stream read that the connector could not read whole (bad_files.py)."""
        found = {b["file"]: b for b in watch.logged_bad}
        config = POLICY["config"]
        declared = {s.get("name"): s for s in config.get("streams") or [] if isinstance(s, dict)}
        filetype = ((declared.get(stream) or {}).get("format") or {}).get("filetype")
        if filetype == "jsonl" and config.get("bucket"):
            client = None
            for name, records in watch.files.items():
                if name is None or name in found:
                    continue
                try:
                    client = client or bad_files.s3_client(config)
                    bad = bad_files.check_object(client, config["bucket"], name, records)
                except Exception as e:  # noqa: BLE001 - a check that cannot run must not stop the line
                    log(f"stream {stream}: {name} could not be read again to check it ({type(e).__name__}): "
                        "trusting the connector's read of it")  # fmt: skip
                    continue
                if bad is not None:
                    found[name] = bad
        for bad in found.values():
            bad["stream"] = stream
            bad["records_read"] = watch.files.get(bad["file"], 0)
        return list(found.values())


def stopped_by(error: BaseException) -> BaseException | None:
    """The SchemaChangeStop or BadFileStop behind `error` (raised as is, or as the cause of another)."""
    seen = set()
    stack = [error]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, schema_changes.SchemaChangeStop | bad_files.BadFileStop):
            return e
        stack += [e.__cause__, e.__context__, getattr(e, "original_exception", None)]
    return None


def unread_bad_files() -> str | None:
    """Files the connector logged as unreadable for a stream that committed nothing (no record at all):
    recorded, and under on_bad_file: fail the reason the sync fails (None when there are none)."""
    handled = {b["file"] for b in REPORT["bad_files"]}
    found = [b for w in WATCHES.values() for b in w.logged_bad if b["file"] not in handled]
    for bad in found:
        bad["policy"] = POLICY["bad_file"]
        bad["action"] = "file_skipped" if POLICY["bad_file"] == "skip" else "sync_failed"
        bad["records_read"] = 0
        log(bad_files.describe(bad))
    REPORT["bad_files"].extend(found)
    if found and POLICY["bad_file"] != "skip":
        return "; ".join(bad_files.describe(b) for b in found)
    return None


def report_problems(prefix: str) -> None:
    """One line `<prefix> <json>` with the schema changes and bad files met so far (a failed sync: those
    of streams it did not reach the commit of too)."""
    pending = [c for w in WATCHES.values() for c in w.changes.values()]
    problems = {"schema_changes": REPORT["schema_changes"] + pending, "bad_files": REPORT["bad_files"]}
    print(f"{prefix} " + json.dumps(problems), flush=True)
