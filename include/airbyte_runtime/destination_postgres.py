"""The warehouse destination: a read's records COPYed into stages, then each stream committed with its state.

Each record becomes one CSV row of its stream's stage (rows.py), COPYed while the connector is
still read (stage.py). When the read ends, each stream, in the configured catalog's order, is
checked (checks.py), then moved into its table in one transaction with its state (state.py):
- merge (incremental_deduped_history): the staged keys' rows deleted (through the index on the
  key the first merge creates), the latest version of each key inserted (highest cursor, then
  latest extracted, then last emitted);
- append: the stage inserted as it is;
- replace (full refresh): the stage becomes the table (renamed in its place).
Tables keep the layout PyAirbyte's cache made (tables.py), so the warehouses it wrote carry on.

Owned here against Postgres and the Airbyte protocol rather than through PyAirbyte: its cache's
loader (pandas `to_sql`) was several times slower than the connectors, and it has no public hook
for its write path (overriding its private methods broke with any release).
"""

from __future__ import annotations

import copy
import time
from typing import Any

from include.airbyte_runtime import checks as sync_checks
from include.airbyte_runtime import state as stored
from include.airbyte_runtime import tables
from include.airbyte_runtime.report import LOAD_SECONDS, PROGRESS_EVERY, RECORDS, log
from include.airbyte_runtime.rows import CASTS, MAX_LOGGED_FLAGS, Layout, airbyte_type, csv_field, fit_row, record_row
from include.airbyte_runtime.stage import StageCopy


class WarehouseWriter(sync_checks.SyncChecks):
    """One read's records into the warehouse: `take_record` per record, `commit` at the end."""

    def __init__(self, connect: Any, schema: str, source_name: str, catalog: dict, strategy: str) -> None:
        self.connect, self.schema, self.source_name, self.strategy = connect, schema, source_name, strategy
        streams = catalog["streams"]
        self.order = [s["stream"]["name"] for s in streams]
        # this sync's own copy of each stream's properties: a propagated new column is added here
        self.properties = {
            s["stream"]["name"]: copy.deepcopy((s["stream"].get("json_schema") or {}).get("properties") or {})
            for s in streams
        }
        self.primary_keys = {s["stream"]["name"]: [k[0] for k in s.get("primary_key") or []] for s in streams}
        self.cursors = {s["stream"]["name"]: (s.get("cursor_field") or [None])[0] for s in streams}
        self.states: dict[str, Any] = {}  # stream (or _GLOBAL/_LEGACY) -> its latest AirbyteStateMessage
        self._keys: dict[str, tables.StreamKeys] = {}
        self._layouts: dict[tuple, Layout] = {}
        self._casts: dict[str, list[tuple[int, str, Any]]] = {}
        self._typecast_flags: dict[str, int] = {}
        self._stages: dict[str, StageCopy] = {}
        self._running_stages: dict[str, StageCopy] = {}
        self._final_columns: dict[str, dict[str, str]] = {}
        self.paused_for_room = False
        self._read_started: float | None = None
        self._records_read = 0

    # -- what stage.py and checks.py ask of the writer ------------------------------------------------
    def column_types(self, stream: str) -> dict[str, str]:
        return tables.column_types(self.properties[stream])

    @staticmethod
    def table_name(stream: str) -> str:
        return tables.normalize(stream)

    def stage_identifier(self, name: str) -> Any:
        from psycopg2 import sql

        return sql.Identifier(self.schema, name)

    def create_stage(self, stream: str) -> str:
        name = tables.new_stage_name(stream)
        self._run(lambda db: tables.create_table(db, self.schema, name, self.column_types(stream), unlogged=True))
        return name

    def drop_table(self, name: str) -> None:
        from psycopg2 import sql

        self._run(lambda db: db.execute(sql.SQL("drop table if exists {}").format(self.stage_identifier(name))))

    def _run(self, work: Any) -> Any:
        raw = self.connect()
        try:
            result = work(raw.cursor())
            raw.commit()
            return result
        finally:
            raw.close()

    # -- the read -------------------------------------------------------------------------------------
    def take_record(self, stream: str, data: dict, emitted_at: int) -> None:
        """One record as one CSV row of its stream's stage (see rows.record_layout)."""
        if self._read_started is None:
            self._read_started = time.monotonic()
        keys = tuple(data)
        layout = self._layouts.get((stream, keys))
        if layout is None:
            if stream not in self.properties:
                raise ValueError(f"the connector sent a record of stream {stream!r}, which this read did not select")
            handler = self._keys.get(stream) or self._keys.setdefault(
                stream, tables.StreamKeys(self.properties[stream])
            )
            layout = self._new_layout(stream, keys, data, handler)
        casts = self._casts.get(stream)
        if casts is None:
            casts = self._casts[stream] = self._stream_casts(stream, layout[0])
        row = record_row(layout, data, emitted_at)
        self._tally(stream, data, row, layout[0])  # its file, its values' types (checks.py)
        if casts:
            fit_row(casts, row, layout[2][2], lambda column, value: self._flag(stream, column, value))
        stage = self._stages.get(stream)
        if stage is None:
            columns = [tables.normalize(c) for c in layout[0]]
            stage = self._stages[stream] = StageCopy(self, stream, columns, self._running_stages)
        stage.write(",".join([csv_field(v) for v in row]) + "\n")
        self._records_read += 1
        RECORDS[stream] = RECORDS.get(stream, 0) + 1
        if self._records_read % PROGRESS_EVERY == 0:
            rate = self._records_read / max(time.monotonic() - self._read_started, 1e-6)
            counts = ", ".join(f"{n} {c}" for n, c in RECORDS.items())
            log(f"read {self._records_read} records ({counts}), {rate:,.0f} records/s")

    def take_state(self, message: Any) -> None:
        """A STATE message: kept, and stored with its stream's rows when they commit."""
        stream = stored.stream_of(message)
        if stream is not None:
            self.states[stream] = message

    def stream_complete(self, stream: str) -> None:
        """The connector reported the stream COMPLETE: its stage COPY is committed meanwhile."""
        stage = self._stages.get(stream)
        if stage is not None:
            stage.pause(complete=True)

    def connector_log(self, level: str, message: str, stack_trace: str | None) -> None:
        if level in ("ERROR", "FATAL"):
            self._connector_log(message, stack_trace)  # a file it could not read whole (checks.py)

    def _stream_casts(self, stream: str, columns: list[str]) -> list[tuple[int, str, Any]]:
        """(position in the row, column, cast) of the stream's columns whose SQL type can reject a value."""
        position = {c: i for i, c in enumerate(columns)}
        casts = []
        for name, definition in self.properties[stream].items():
            kind = airbyte_type(definition)
            column = tables.normalize(name)
            if kind in CASTS and column in position:
                casts.append((position[column], column, CASTS[kind]))
        return casts

    def _flag(self, stream: str, column: str, value: Any) -> None:
        flags = self._typecast_flags[stream] = self._typecast_flags.get(stream, 0) + 1
        if flags <= MAX_LOGGED_FLAGS:
            log(
                f"stream {stream}: {column}={str(value)[:80]!r} does not fit its "
                "column type: written as NULL and listed in _airbyte_meta"
            )

    # -- the end of the read --------------------------------------------------------------------------
    def abort(self) -> None:
        """The read failed: every open COPY rolled back, every stage dropped, nothing committed."""
        for stage in self._stages.values():
            stage.abort()
        self._stages.clear()

    def commit(self) -> None:
        """Each stream of the read, in the catalog's order: its rows, then its state, in one transaction."""
        try:
            for stream in self.order:
                self._commit_stream(stream)
            for name in ("_GLOBAL", "_LEGACY"):
                if name in self.states:
                    self._run(
                        lambda db, name=name: stored.save(db, self.schema, self.source_name, name, self.states[name])
                    )
        except BaseException:
            self.abort()
            raise

    def _commit_stream(self, stream: str) -> None:
        started = time.monotonic()
        stage = self._stages.pop(stream, None)
        table = self.table_name(stream)
        columns = self.column_types(stream)
        state = self.states.get(stream)
        if stage is None:  # no record: the table exists (as PyAirbyte made it), the state moves
            self._run(lambda db: self._without_rows(db, table, columns, state, stream))
            return
        try:
            stage_table = stage.finish()
            log(f"stream {stream}: {stage.rows} rows copied to stage while reading; ended in "
                f"{time.monotonic() - started:.2f} s")  # fmt: skip
            self._before_commit(stream, stage)
            columns = self.column_types(stream)  # a propagated new column is in now
            how = self._run(lambda db: self._move(db, stream, stage_table, table, columns, state))
        except BaseException:
            stage.abort()
            raise
        if self.strategy != "replace":
            self.drop_table(stage_table)
        seconds = time.monotonic() - started
        LOAD_SECONDS[stream] = LOAD_SECONDS.get(stream, 0.0) + seconds
        log(f"stream {stream}: stage -> final table ({how}) in {seconds:.2f} s")

    def _without_rows(self, db: Any, table: str, columns: dict, state: Any, stream: str) -> None:
        tables.ensure_final_table(db, self.schema, table, columns)
        if state is not None:
            stored.save(db, self.schema, self.source_name, stream, state)

    def _move(self, db: Any, stream: str, stage: str, table: str, columns: dict, state: Any) -> str:
        """The stage into the stream's table by the read's write strategy, and its state, in `db`'s transaction."""
        from psycopg2 import sql

        final, staged = sql.Identifier(self.schema, table), sql.Identifier(self.schema, stage)
        if self.strategy == "replace":
            db.execute(sql.SQL("alter table {} set logged").format(staged))  # a final table is crash-safe
            db.execute(sql.SQL("drop table if exists {}").format(final))
            db.execute(sql.SQL("alter table {} rename to {}").format(staged, sql.Identifier(table)))
            tables.ensure_extracted_at_index(db, self.schema, table)  # built once, on the whole table
            how = "replace: swapped"
        else:
            tables.ensure_final_table(db, self.schema, table, columns)
            names = sql.SQL(", ").join(map(sql.Identifier, columns))
            if self.strategy == "merge" and self.primary_keys.get(stream):
                how = self._merge(db, stream, final, staged, names)
                tables.ensure_key_index(
                    db, self.schema, table, [tables.normalize(k) for k in self.primary_keys[stream]]
                )
            else:
                db.execute(sql.SQL("insert into {} ({}) select {} from {}").format(final, names, names, staged))
                how = "append"
        tables.ensure_type_errors_index(db, self.schema, table)  # after the rows: built once by a first load
        if state is not None:
            stored.save(db, self.schema, self.source_name, stream, state)
        return how

    def _merge(self, db: Any, stream: str, final: Any, staged: Any, columns: Any) -> str:
        """Replace every key present in the stage by its latest staged version.

        Latest: highest cursor, then latest extracted, then last emitted (raw ids are UUIDv7,
        in emit order). Rows without a key are kept as they come (dbt quarantines them).
        """
        from psycopg2 import sql

        ident, join = sql.Identifier, sql.SQL(", ").join
        key_names = [tables.normalize(k) for k in self.primary_keys[stream]]
        keys = [ident(k) for k in key_names]
        cursor = self.cursors.get(stream)
        order = [sql.SQL("{} desc nulls last").format(ident(tables.normalize(cursor)))] if cursor else []
        order += [sql.SQL('"_airbyte_extracted_at" desc'), sql.SQL('"_airbyte_raw_id" desc')]
        on = sql.SQL(" and ").join(sql.SQL("f.{k} = s.{k}").format(k=k) for k in keys)
        any_null = sql.SQL(" or ").join(sql.SQL("{} is null").format(k) for k in keys)
        db.execute(sql.SQL("delete from {final} f using {stage} s where {on}").format(final=final, stage=staged, on=on))
        deleted = db.rowcount
        # `distinct on` keeps the first row of each key in that order: the latest version, about twice
        # as fast as the same choice made with row_number() (docs/benchmarks.md).
        db.execute(
            sql.SQL(
                "insert into {final} ({columns}) select {columns} from ("
                " select distinct on ({keys}) {columns} from {stage} where not ({any_null})"
                " order by {keys}, {order}) latest"
                " union all select {columns} from {stage} where {any_null}"
            ).format(final=final, columns=columns, keys=join(keys), order=join(order), stage=staged, any_null=any_null)
        )
        return f"merge on {', '.join(key_names)}: {db.rowcount} rows written, {deleted} older versions replaced"
