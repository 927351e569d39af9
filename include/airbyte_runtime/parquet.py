"""Records as Parquet, in the columns Airbyte's S3 destination writes: the lake's file format.

Each part holds `_airbyte_raw_id`, `_airbyte_extracted_at`, `_airbyte_generation_id` and
`_airbyte_meta` beside the stream's data columns, typed from the stream's JSON schema; a value that
does not fit its type is written as NULL and listed in `_airbyte_meta.changes`, as Airbyte does, so
the lake reads the same whichever engine wrote it. Memory stays bounded: rows are buffered per
stream up to a row group, written to a local file, and uploaded as one part every so many rows.
Runs on Airflow's side (pyarrow is in its venv).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

COMPRESSION = "SNAPPY"  # the Parquet codec, both engines (destination-s3's compression_codec)


def _json_type(schema: dict) -> tuple[str, str | None]:
    """(type, format) of a JSON-schema property, null and unions folded to the one real type."""
    kind = schema.get("type", "string")
    if isinstance(kind, list):
        real = [k for k in kind if k != "null"]
        kind = real[0] if len(real) == 1 else "string"
    if kind == "string" and schema.get("airbyte_type") in ("integer",):
        kind = "integer"
    return kind, schema.get("format")


def _meta_type():
    import pyarrow as pa

    change = pa.struct([("field", pa.string()), ("change", pa.string()), ("reason", pa.string())])
    return pa.struct([("sync_id", pa.int64()), ("changes", pa.list_(change))])


@dataclass
class StreamLayout:
    """The Parquet schema of one stream and how a record's values become its columns."""

    columns: list[tuple[str, str]]  # (column, json type)

    @classmethod
    def of(cls, json_schema: dict) -> StreamLayout:
        properties = json_schema.get("properties") or {}
        return cls([(name, _json_type(prop if isinstance(prop, dict) else {})[0]) for name, prop in properties.items()])

    def arrow_schema(self):
        import pyarrow as pa

        kinds = {"integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_()}
        fields = [
            pa.field("_airbyte_raw_id", pa.string(), nullable=False),
            pa.field("_airbyte_extracted_at", pa.timestamp("ms", tz="UTC"), nullable=False),
            pa.field("_airbyte_generation_id", pa.int64()),
            pa.field("_airbyte_meta", _meta_type()),
        ]
        return pa.schema(fields + [pa.field(name, kinds.get(kind, pa.string())) for name, kind in self.columns])

    def row(self, data: dict, emitted_at: int, sync_id: int, generation_id: int) -> list:
        """The record's Parquet row: a value of its column's own type goes as it is (most of them);
        any other goes through `_fit`, or becomes NULL listed in `_airbyte_meta.changes`."""
        changes: list[dict] = []
        cells: list[Any] = []
        append, get, plain = cells.append, data.get, _PLAIN_TYPES.get
        for name, kind in self.columns:
            value = get(name)
            if value is None:
                append(None)
                continue
            kind_of = type(value)
            if kind_of is plain(kind) or (kind_of is int and kind == "integer" and -_INT64 <= value < _INT64):
                append(value)
                continue
            try:
                append(_fit(value, kind))
            except (TypeError, ValueError, OverflowError):
                append(None)
                changes.append({"field": name, "change": "NULLED", "reason": "DESTINATION_SERIALIZATION_ERROR"})
        return [_raw_id(), emitted_at, generation_id, {"sync_id": sync_id, "changes": changes}, *cells]


_PLAIN_TYPES = {"string": str, "number": float, "boolean": bool}  # JSON values a column holds as they are
_INT64 = 2**63
_UUID4_CLEAR = ~((0xF << 76) | (0x3 << 62))
_UUID4_SET = (0x4 << 76) | (0x2 << 62)


def _raw_id() -> str:
    """A random (version 4) UUID as text, as Airbyte's `_airbyte_raw_id`: about 4x faster than
    `str(uuid.uuid4())` (no OS entropy per record: ids need to be unique, not secret)."""
    h = f"{(random.getrandbits(128) & _UUID4_CLEAR) | _UUID4_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _fit(value: Any, kind: str) -> Any:
    """The value as its column holds it; raise for a value the type cannot hold."""
    if value is None:
        return None
    if kind == "integer":
        if isinstance(value, bool):
            raise TypeError("a boolean is not an integer")
        number = int(value) if isinstance(value, int) else int(str(value)) if str(value).lstrip("-").isdigit() else None
        if number is None or not -(2**63) <= number < 2**63:
            raise ValueError(f"{value!r} is not a 64-bit integer")
        return number
    if kind == "number":
        if isinstance(value, bool):
            raise TypeError("a boolean is not a number")
        return float(value)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        raise TypeError(f"{value!r} is not a boolean")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value if isinstance(value, str) else json.dumps(value)


class PartWriter:
    """One stream's Parquet parts: row groups into a local file, uploaded every ROWS_PER_OBJECT rows."""

    def __init__(self, stream: str, namespace: str | None, layout: StreamLayout, upload: Callable[[Path, str, int], None],
                 key_of: Callable[[int], str], folder: Path, rows_per_group: int, rows_per_object: int):  # fmt: skip
        self.stream, self.namespace, self.layout = stream, namespace, layout
        self.schema = layout.arrow_schema()
        self.upload, self.key_of, self.folder = upload, key_of, folder
        self.rows_per_group, self.rows_per_object = rows_per_group, rows_per_object
        self.buffer: list[list] = []
        self.writer = None
        self.path: Path | None = None
        self.rows_in_part = 0
        self.part = 0
        self.records = 0
        self.bytes = 0
        self.keys: list[str] = []

    def add(self, row: list) -> None:
        self.buffer.append(row)
        self.records += 1
        if len(self.buffer) >= self.rows_per_group:
            self._write_group()
            if self.rows_in_part >= self.rows_per_object:
                self.finish_part()

    def _write_group(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.buffer:
            return
        if self.writer is None:
            self.path = self.folder / f"{self.stream}-{self.part}.parquet"
            self.writer = pq.ParquetWriter(self.path, self.schema, compression=COMPRESSION.lower())
        columns = list(zip(*self.buffer, strict=True))
        arrays = [pa.array(list(values), type=f.type) for values, f in zip(columns, self.schema, strict=True)]
        self.writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))
        self.rows_in_part += len(self.buffer)
        self.buffer = []

    def finish_part(self) -> None:
        """Write what is buffered and upload the open part (nothing when no record is pending)."""
        self._write_group()
        if self.writer is None:
            return
        self.writer.close()
        key = self.key_of(self.part)
        self.bytes += self.path.stat().st_size
        self.upload(self.path, key, self.rows_in_part)
        self.path.unlink()
        self.keys.append(key)
        self.writer, self.path, self.rows_in_part = None, None, 0
        self.part += 1
