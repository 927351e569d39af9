"""The warehouse destination: PyAirbyte's Postgres cache with its record path and loader replaced.

Each stream is COPYed into its stage while reading (stage.py), then moved into its final table in
one transaction: merge (delete the staged keys, insert the latest version of each) for deduped
streams, append for append streams, a table swap for overwrite. Tables keep the Destinations-V2
shape (_airbyte_raw_id, _airbyte_extracted_at, _airbyte_meta) and state is stored in
<schema>._airbyte_state only after a stream's rows are committed.

PyAirbyte's own loader (pandas `to_sql`) was several times slower than the connectors it runs and
it has no public hook for its write path, so this module overrides the cache processor's loading
methods; tests/ingest/test_runtime_contract.py pins every PyAirbyte name it relies on, so a
PyAirbyte upgrade that changes them fails a test rather than a sync.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from include.airbyte_runtime import checks as sync_checks
from include.airbyte_runtime import messages as protocol
from include.airbyte_runtime.report import LOAD_SECONDS, PROGRESS_EVERY, RECORDS, log
from include.airbyte_runtime.rows import CASTS, MAX_LOGGED_FLAGS, Layout, airbyte_type, csv_field, fit_row, record_row
from include.airbyte_runtime.stage import StageCopy


def copy_cache_class() -> type:
    """PyAirbyte's PostgresCache whose batches are CSV files loaded by COPY (see the module doc)."""
    from airbyte._processors.sql.postgres import PostgresSqlProcessor
    from airbyte._writers.file_writers import FileWriterBase
    from airbyte.caches import PostgresCache
    from psycopg2 import sql  # every name below is a quoted identifier (sql.Identifier), never an f-string

    class NoFile:
        """What PyAirbyte's batch handle holds instead of an open batch file: rows go to StageCopy."""

        def write(self, text: str) -> int:
            raise RuntimeError("rows are written by StageCopy, not to batch files")

        def close(self) -> None:
            pass

    class StageBatchWriter(FileWriterBase):
        """PyAirbyte's batch bookkeeping (record counts, pending batches) without batch files."""

        prune_extra_fields = True

        def _open_new_file(self, file_path):  # noqa: ANN001, ANN202
            return NoFile()  # nothing is created; PyAirbyte's cleanup ignores missing files

        def _write_record_dict(self, record_dict, open_file_writer) -> None:  # noqa: ANN001
            raise RuntimeError("records are written by CopyPostgresSqlProcessor.take_record")

    class CopyPostgresSqlProcessor(sync_checks.SyncChecks, PostgresSqlProcessor):
        """COPYs each stream into its stage while reading (StageCopy), then merges it in one transaction."""

        file_writer_class = StageBatchWriter

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._read_started: float | None = None
            self._records_read = 0
            self._layouts: dict[tuple, Layout] = {}
            self._casts: dict[str, list[tuple[int, str, Any]]] = {}
            self._typecast_flags: dict[str, int] = {}
            self._stages: dict[str, StageCopy] = {}
            self._running_stages: dict[str, StageCopy] = {}
            self.paused_for_room = False
            self._final_columns: dict[str, dict[str, str]] = {}  # stream -> its raw table's columns

        def process_airbyte_messages(self, messages, *, write_strategy, progress_tracker) -> None:  # noqa: ANN001
            """PyAirbyte's loop, with record lines handed to `take_record` by `fast_execute` (RECORD_SINK)."""
            handlers: dict[str, Any] = {}

            def sink(stream: str, data: dict, emitted_at: int, size: int) -> None:
                handler = handlers.get(stream)
                if handler is None:
                    handler = handlers[stream] = self._record_handler(stream, progress_tracker)
                self.take_record(stream, data, emitted_at, handler, progress_tracker)
                tracker.total_records_read += 1  # what PyAirbyte's tally counts (RESULT's figures)
                read_counts[stream] += 1
                bytes_read[stream] += size

            tracker = progress_tracker
            read_counts, bytes_read = tracker.stream_read_counts, tracker.stream_bytes_read
            protocol.RECORD_SINK = sink  # one processor reads at a time in this process
            try:
                super().process_airbyte_messages(
                    self._pause_completed(messages), write_strategy=write_strategy, progress_tracker=progress_tracker
                )
            except BaseException:
                for stage in self._stages.values():
                    stage.abort()
                self._stages.clear()
                raise
            finally:
                protocol.RECORD_SINK = None

        def _pause_completed(self, messages):  # noqa: ANN001, ANN202
            """The messages, unchanged; a stream the connector reports COMPLETE has its stage COPY committed."""
            from airbyte_protocol.models import AirbyteStreamStatus, Type

            for message in messages:
                if message.type is Type.LOG and str(message.log.level.value) in ("ERROR", "FATAL"):
                    self._connector_log(message)  # a file it could not read whole (sync_checks.py)
                if message.type is Type.TRACE and message.trace.stream_status is not None:
                    status = message.trace.stream_status
                    stage = self._stages.get(status.stream_descriptor.name)
                    if stage is not None and status.status is AirbyteStreamStatus.COMPLETE:
                        stage.pause(complete=True)
                yield message

        def _record_handler(self, stream: str, tracker):  # noqa: ANN001, ANN202
            """The stream's StreamRecordHandler, as PyAirbyte's loop makes it, and its first-record tally."""
            from airbyte.records import StreamRecordHandler

            if tracker.first_record_received_time is None:
                tracker.first_record_received_time = time.time()
            tracker.log_stream_start(stream_name=stream)
            tracker.stream_first_record_times.setdefault(stream, time.time())
            return StreamRecordHandler(
                json_schema=self.catalog_provider.get_stream_json_schema(stream_name=stream),
                normalize_keys=True,
                prune_extra_fields=True,
            )

        def process_record_message(self, record_msg, stream_record_handler, progress_tracker) -> None:  # noqa: ANN001
            self.take_record(
                record_msg.stream, record_msg.data, record_msg.emitted_at, stream_record_handler, progress_tracker
            )

        def take_record(
            self, stream: str, data: dict, emitted_at: int, stream_record_handler, progress_tracker
        ) -> None:  # noqa: ANN001
            """One record as one CSV row of its stream's current batch (StreamRecord's rules, see record_layout)."""
            if self._read_started is None:
                self._read_started = time.monotonic()
            writer = self.file_writer
            batch = writer._active_batches.get(stream)  # noqa: SLF001 - PyAirbyte's batch bookkeeping
            if batch is None or batch._record_count >= writer.MAX_BATCH_SIZE:  # noqa: SLF001
                batch = writer._new_batch(stream_name=stream, progress_tracker=progress_tracker)  # noqa: SLF001
            keys = tuple(data)
            layout = self._layouts.get((stream, keys))
            if layout is None:
                layout = self._new_layout(stream, keys, data, stream_record_handler)
            casts = self._casts.get(stream)
            if casts is None:
                casts = self._casts[stream] = self._stream_casts(stream, stream_record_handler, layout[0])
            row = record_row(layout, data, emitted_at)
            self._tally(stream, data, row, layout[0])  # its file, its values' types (sync_checks.py)
            if casts:
                fit_row(casts, row, layout[2][2], lambda column, value: self._flag(stream, column, value))
            stage = self._stages.get(stream)
            if stage is None:
                columns = [self.normalizer.normalize(c) for c in layout[0]]
                stage = self._stages[stream] = StageCopy(self, stream, columns, self._running_stages)
            stage.write(",".join([csv_field(v) for v in row]) + "\n")
            batch._record_count += 1  # noqa: SLF001 - increment_record_count(), without the call
            self._records_read += 1
            RECORDS[stream] = RECORDS.get(stream, 0) + 1
            if self._records_read % PROGRESS_EVERY == 0:
                rate = self._records_read / max(time.monotonic() - self._read_started, 1e-6)
                counts = ", ".join(f"{n} {c}" for n, c in RECORDS.items())
                log(f"read {self._records_read} records ({counts}), {rate:,.0f} records/s")

        def _table(self, name: str) -> sql.Identifier:
            """schema.table as one quoted identifier (PyAirbyte's `_fully_qualified` leaves the schema bare)."""
            return sql.Identifier(self.sql_config.schema_name, name)

        def _stream_casts(self, stream_name: str, handler, columns: list[str]) -> list[tuple[int, str, Any]]:  # noqa: ANN001
            """(position in the row, column, cast) of the stream's columns whose SQL type can reject a value."""
            position = {c: i for i, c in enumerate(columns)}
            casts = []
            properties = self.catalog_provider.get_stream_json_schema(stream_name).get("properties") or {}
            for name, definition in properties.items():
                kind = airbyte_type(definition)
                column = handler.to_index_case(name)
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

        def stage_identifier(self, name: str) -> sql.Identifier:
            return self._table(name)

        def _write_files_to_new_table(self, files, stream_name: str, batch_id: str) -> str:  # noqa: ANN001, ARG002
            """The stream's stage, filled while reading (StageCopy): its COPY ended, committed and analyzed."""
            started = time.monotonic()
            stage = self._stages.pop(stream_name, None)
            if stage is None:  # batches without a record: an empty stage, as PyAirbyte would make
                stage = StageCopy(self, stream_name, [], self._running_stages)
            try:
                table = stage.finish()
                self._before_commit(stream_name, stage)
            except BaseException:
                stage.abort()  # PyAirbyte drops the stage only after this step
                raise
            seconds = time.monotonic() - started
            LOAD_SECONDS[stream_name] = LOAD_SECONDS.get(stream_name, 0.0) + seconds
            log(f"stream {stream_name}: {stage.rows} rows copied to stage while reading; ended in {seconds:.2f} s")
            return table

        def _emulated_merge_temp_table_to_final_table(
            self, stream_name: str, temp_table_name: str, final_table_name: str
        ) -> None:
            """Replace every key present in the stage by its latest staged version, atomically.

            Latest: highest cursor, then latest extracted, then last emitted (raw ids are UUIDv7,
            in emit order). Rows without a key are kept as they come (dbt quarantines them).
            """
            ident, join = sql.Identifier, sql.SQL(", ").join
            final, stage = self._table(final_table_name), self._table(temp_table_name)
            columns = join(map(ident, self._get_sql_column_definitions(stream_name)))
            key_names = list(self.catalog_provider.get_primary_keys(stream_name))
            keys = [ident(k) for k in key_names]
            cursor = self.catalog_provider.get_cursor_key(stream_name)
            cursor = cursor[0] if isinstance(cursor, list) and cursor else cursor
            order = [sql.SQL("{} desc nulls last").format(ident(self.normalizer.normalize(cursor)))] if cursor else []
            order += [sql.SQL('"_airbyte_extracted_at" desc'), sql.SQL('"_airbyte_raw_id" desc')]
            on = sql.SQL(" and ").join(sql.SQL("f.{k} = s.{k}").format(k=k) for k in keys)
            any_null = sql.SQL(" or ").join(sql.SQL("{} is null").format(k) for k in keys)
            delete = sql.SQL("delete from {final} f using {stage} s where {on}").format(final=final, stage=stage, on=on)
            # `distinct on` keeps the first row of each key in that order: the latest version, about twice
            # as fast as the same choice made with row_number() (docs/benchmarks.md).
            insert = sql.SQL(
                "insert into {final} ({columns}) select {columns} from ("
                " select distinct on ({keys}) {columns} from {stage} where not ({any_null})"
                " order by {keys}, {order}) latest"
                " union all select {columns} from {stage} where {any_null}"
            ).format(final=final, columns=columns, keys=join(keys), order=join(order), stage=stage, any_null=any_null)
            started = time.monotonic()
            raw = self.get_sql_engine().raw_connection()
            try:  # one transaction: all or nothing
                db = raw.cursor()
                db.execute(delete)
                deleted = db.rowcount
                db.execute(insert)
                inserted = db.rowcount
                raw.commit()
            except BaseException:
                raw.rollback()
                raise
            finally:
                raw.close()
            LOAD_SECONDS[stream_name] = LOAD_SECONDS.get(stream_name, 0.0) + time.monotonic() - started
            log(
                f"stream {stream_name}: stage -> final table (merge on {', '.join(key_names)}: {inserted} rows written, "
                f"{deleted} older versions replaced) in {time.monotonic() - started:.2f} s"
            )

        def _append_temp_table_to_final_table(
            self, temp_table_name: str, final_table_name: str, stream_name: str
        ) -> None:
            started = time.monotonic()
            super()._append_temp_table_to_final_table(temp_table_name, final_table_name, stream_name)
            LOAD_SECONDS[stream_name] = LOAD_SECONDS.get(stream_name, 0.0) + time.monotonic() - started
            log(f"stream {stream_name}: stage -> final table (append) in {time.monotonic() - started:.2f} s")

        def _swap_temp_table_with_final_table(
            self, stream_name: str, temp_table_name: str, final_table_name: str
        ) -> None:
            started = time.monotonic()
            raw = self.get_sql_engine().raw_connection()
            try:  # the stage was unlogged (_write_files_to_new_table); a final table is crash-safe
                raw.cursor().execute(sql.SQL("alter table {} set logged").format(self._table(temp_table_name)))
                raw.commit()
            finally:
                raw.close()
            super()._swap_temp_table_with_final_table(stream_name, temp_table_name, final_table_name)
            LOAD_SECONDS[stream_name] = LOAD_SECONDS.get(stream_name, 0.0) + time.monotonic() - started
            log(f"stream {stream_name}: stage -> final table (replace: swapped) in {time.monotonic() - started:.2f} s")

    class CopyPostgresCache(PostgresCache):
        _sql_processor_class: ClassVar[type] = CopyPostgresSqlProcessor

    return CopyPostgresCache
