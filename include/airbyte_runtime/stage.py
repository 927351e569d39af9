"""One stream's stage table, filled by COPY while the connector is still being read.

Rows go by `COPY ... FROM STDIN (FORMAT csv)` on a thread and connection of their own, so Postgres
parses them on the other core while the runtime reads on, instead of after the read; the stage is
unlogged, as it is dropped after the merge. Memory stays bounded by the pipe between them.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

from include.airbyte_runtime.connector import PIPE_BYTES
from include.airbyte_runtime.report import log


class LoadError(RuntimeError):
    """Rows could not be written to the warehouse (a value Postgres refused, a column the schema lacks)."""


# A stream's stage COPY gets its rows in chunks of about this many characters.
STAGE_CHUNK_CHARS = 1 << 20
# Stage COPYs running at once (one connection and thread each); the least recently fed one is
# committed and paused when another stream needs one. Streams read one after the other use one.
MAX_RUNNING_STAGES = 4


class StageCopy:
    """One stream's stage table, filled by `COPY ... FROM STDIN (FORMAT csv)` while the connector is read.

    Rows are written as CSV text into a pipe; a thread runs psycopg2's `copy_expert` on the other
    end, on a connection of its own, so Postgres parses them on the other core while the runner
    reads on. Memory stays bounded: a full pipe blocks the writer until Postgres catches up. The
    stage is created (and made unlogged) at the first chunk. `pause` ends the COPY without waiting:
    the thread commits it, analyzes the stage when the stream is complete (the merge joins on it)
    and frees the connection; the next chunk starts a new COPY into the same table. `finish` waits
    for that and returns the stage's name. If COPY fails (a value its column cannot parse), the
    thread keeps draining the pipe and the writer raises LoadError, naming the stream, at its next
    chunk (or at `finish`).
    """

    def __init__(self, writer: Any, stream: str, columns: list[str], running: dict) -> None:
        self.processor, self.stream, self.columns = writer, stream, columns  # destination_postgres.WarehouseWriter
        self.table: str | None = None
        self.rows = 0
        self._parts: list[str] = []
        self._size = 0
        self._running = running  # the writer's stages with a COPY open, least recently fed first
        self._thread: threading.Thread | None = None
        self._out: Any = None
        self._error: BaseException | None = None
        self._analyzed = False  # the stage's statistics are current (no row came after the last analyze)
        self._rollback = False  # the sync failed: what the open COPY took is rolled back
        self._complete = False  # the connector reported the stream COMPLETE: analyze after the commit

    def write(self, line: str) -> None:
        self._parts.append(line)
        self._size += len(line)
        if self._size >= STAGE_CHUNK_CHARS:
            self.flush()

    def flush(self) -> None:
        if not self._parts:
            return
        if self._out is None:
            self._start()
        else:
            self._running.pop(self.stream, None)
        self._running[self.stream] = self  # most recently fed last
        chunk = "".join(self._parts).encode("utf-8")
        self._parts.clear()
        self._size = 0
        with contextlib.suppress(BrokenPipeError):  # the thread ended: its error is raised below
            self._out.write(chunk)
        if self._error is not None:
            self._fail()

    def _start(self) -> None:
        from psycopg2 import sql

        self._join()  # the previous COPY into this stage, if it is still committing
        while len(self._running) >= MAX_RUNNING_STAGES:
            oldest = next(iter(self._running.values()))
            if not self.processor.paused_for_room:
                self.processor.paused_for_room = True
                log(
                    f"more than {MAX_RUNNING_STAGES} streams at once: the stage COPY fed least recently "
                    f"({oldest.stream}) is committed and paused to make room (logged once)"
                )
            oldest.pause()
        processor = self.processor
        if self.table is None:
            known = set(processor.column_types(self.stream))
            unknown = sorted(set(self.columns) - known)
            if unknown:
                raise LoadError(f"stream {self.stream}: columns {unknown} are not in its schema")
            # Unlogged: the stage is dropped after the merge, no WAL for it (docs/benchmarks.md:
            # COPY unlogged vs logged). A stage that becomes the final table (replace) is made
            # logged first (destination_postgres.py).
            self.table = processor.create_stage(self.stream)
        table = processor.stage_identifier(self.table)
        raw = processor.connect()
        try:
            cursor = raw.cursor()
            copy = (
                sql.SQL("copy {} ({}) from stdin with (format csv)")
                .format(table, sql.SQL(", ").join(map(sql.Identifier, self.columns)))
                .as_string(cursor)
            )
            analyze = sql.SQL("analyze {}").format(table).as_string(cursor)
        except BaseException:
            raw.close()
            raise
        read_end, write_end = os.pipe()
        with contextlib.suppress(OSError):
            import fcntl

            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, min(PIPE_BYTES, STAGE_CHUNK_CHARS * 4))
        self._out, self._analyzed, self._complete = os.fdopen(write_end, "wb"), False, False
        reader = os.fdopen(read_end, "rb", buffering=0)
        self._thread = threading.Thread(
            target=self._copy, args=(raw, copy, analyze, reader), name=f"copy-{self.stream}", daemon=True
        )
        self._thread.start()

    def _copy(self, raw: Any, copy: str, analyze: str, reader: Any) -> None:
        """The COPY thread: take the rows, then commit them (or roll back), then analyze a complete stream."""
        failed = False
        try:
            try:
                cursor = raw.cursor()
                cursor.copy_expert(copy, reader, size=1 << 18)
                self.rows += max(cursor.rowcount, 0)
            except BaseException as e:  # noqa: BLE001 - handed to the writer (flush/finish)
                failed, self._error = True, e
                while reader.read(1 << 18):  # keep the writer from blocking on a full pipe
                    pass
            finally:
                reader.close()
            if failed or self._rollback:
                raw.rollback()
                return
            raw.commit()
            if self._complete:
                cursor.execute(analyze)
                raw.commit()
                self._analyzed = True
        except BaseException as e:  # noqa: BLE001
            self._error = self._error or e
        finally:
            raw.close()

    def pause(self, complete: bool = False) -> None:
        """End the open COPY; its thread commits it (and analyzes the stage if `complete`) meanwhile."""
        self.flush()
        if self._out is None:
            return
        self._running.pop(self.stream, None)
        self._complete = complete
        out, self._out = self._out, None
        with contextlib.suppress(BrokenPipeError):
            out.close()  # end of data: copy_expert returns

    def _join(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
        if self._error is not None:
            self._fail()

    def finish(self) -> str:
        """Every row committed in the stage, analyzed: the stage table's name."""
        from psycopg2 import sql

        self.pause(complete=True)
        self._join()
        if self.table is None:  # no row at all: an empty stage
            self.table = self.processor.create_stage(self.stream)
        if not self._analyzed:
            raw = self.processor.connect()
            try:
                raw.cursor().execute(sql.SQL("analyze {}").format(self.processor.stage_identifier(self.table)))
                raw.commit()
            finally:
                raw.close()
        return self.table

    def abort(self) -> None:
        """Roll back the open COPY and drop the stage (the sync failed)."""
        self._parts.clear()
        self._rollback = True
        with contextlib.suppress(Exception):
            self.pause()
            self._join()
        if self.table is not None:
            with contextlib.suppress(Exception):
                self.processor.drop_table(self.table)

    def add_column(self, column: str, sql_type: str, columns: list[str]) -> None:
        """A column added while reading (a propagated schema change): the open COPY is committed, the
        stage gets the column, and the next chunk's COPY names `columns`."""
        from psycopg2 import sql

        self.pause()
        self._join()
        if self.table is not None:
            self._execute(
                sql.SQL("alter table {} add column if not exists {} ").format(
                    self.processor.stage_identifier(self.table), sql.Identifier(column)
                )
                + sql.SQL(sql_type)  # one of tables.SQL_TYPES: never user text
            )
        self.columns = columns

    def drop_files(self, files: list[str]) -> int:
        """Delete the staged rows read from `files` (on_bad_file: skip), after `finish`: how many."""
        from psycopg2 import sql

        query = sql.SQL("delete from {} where {} = any(%s)").format(
            self.processor.stage_identifier(self.table), sql.Identifier("_ab_source_file_url")
        )
        return self._execute(query, (files,))

    def _execute(self, query: Any, params: Any = None) -> int:
        raw = self.processor.connect()
        try:
            cursor = raw.cursor()
            cursor.execute(query, params)
            raw.commit()
            return cursor.rowcount
        finally:
            raw.close()

    def _fail(self) -> None:
        error, self._error = self._error, None
        detail = str(getattr(error, "pgerror", None) or error).strip()
        raise LoadError(f"stream {self.stream}: COPY into its stage table {self.table} failed: {detail}") from error
