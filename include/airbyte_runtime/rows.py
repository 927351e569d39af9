"""Records as Postgres CSV rows in the stream's column order: raw ids, extracted-at, casts.

A per-record object (PyAirbyte's StreamRecord, then a CSV writer) cost more than the connector
spends making the record; the same rules (key normalisation, pruning of keys outside the schema,
the Airbyte columns) are applied here once per distinct key tuple. A value its column cannot hold
is NULLED and listed in `_airbyte_meta`, as Airbyte's Postgres destination does, so one bad value
does not fail the COPY: dbt quarantines the record.
"""

from __future__ import annotations

import functools
import json
import math
import re
import time
from datetime import UTC, date, datetime
from datetime import time as dtime
from typing import Any

import orjson  # in .venv-airbyte (include/airbyte/requirements/pyairbyte.txt)


def csv_field(value: Any) -> str:
    """One value as a Postgres CSV field: NULL is an empty unquoted field, text is always quoted.

    Quoting every string keeps '' (empty text) apart from NULL and carries tabs, newlines,
    backslashes and quotes unchanged; objects and arrays become JSON text for the json columns.
    Postgres text cannot hold NUL (U+0000), so it is dropped from strings.
    """
    kind = type(value)
    if value is None:
        return ""
    if kind is str:
        if "\x00" in value:
            value = value.replace("\x00", "")
        return '"' + value.replace('"', '""') + '"'
    if kind is bool:
        return "true" if value else "false"
    if kind is int or kind is float:
        return repr(value)
    if kind is dict or kind is list:
        try:
            dumped = orjson.dumps(value).decode()
        except TypeError:  # nested deeper than orjson allows
            dumped = json.dumps(value, ensure_ascii=False, default=str)
        return '"' + dumped.replace('"', '""') + '"'
    if isinstance(value, datetime | date | dtime):
        return value.isoformat()
    return '"' + str(value).replace("\x00", "").replace('"', '""') + '"'


# (CSV columns, position of each data key or None when pruned, positions of raw id/extracted at/meta)
Layout = tuple[list[str], list[int | None], tuple[int, int, int]]


def record_layout(handler, keys: tuple) -> Layout:  # noqa: ANN001 - a tables.StreamKeys
    """Where each key of a record's data goes in the stream's CSV row, worked out once per key tuple.

    Keys are matched in index case (normalised), keys outside the stream's schema are dropped,
    missing ones are NULL, and the Airbyte columns follow the schema's columns (PyAirbyte's
    StreamRecord rules). Computed once per distinct key tuple, so a record costs one dict walk.
    """
    internal = ["_airbyte_raw_id", "_airbyte_extracted_at", "_airbyte_meta"]
    columns = list(handler.index_keys) + [c for c in internal if c not in handler.index_keys]
    position = {c: i for i, c in enumerate(columns)}
    slots = []
    for key in keys:
        index_key = handler.to_index_case(key)
        slots.append(position[index_key] if index_key in handler.index_keys else None)
    raw_id, extracted, meta = (position[c] for c in internal)
    return columns, slots, (raw_id, extracted, meta)


@functools.lru_cache(maxsize=4096)
def extracted_at(emitted_at: int) -> str:
    """`emitted_at` (epoch ms) as StreamRecord stores it: a UTC timestamp."""
    return datetime.fromtimestamp(emitted_at / 1000, tz=UTC).isoformat()


class RawIds:
    """Raw ids in the layout of PyAirbyte's (`uuid_extensions.uuid7str`) at a fifth of its cost.

    uuid7str reads the clock and the system's random source for every id, a noticeable share of
    the runner's work per record (docs/benchmarks.md). Its layout is kept, so ids still sort with
    those written before: 36 bits of Unix seconds and 24 of their fraction (version 7 in between),
    the variant and a 14-bit counter, then 48 random bits. Here the clock is read once per 1,024
    ids (the counter orders the ids of one reading) and the random bits come from a generator
    seeded once from the system's. Ids are strictly increasing in the order they are made, even
    if the clock steps back, which the merge relies on (destination_postgres.py's merge:
    of two versions of a key extracted together, the one emitted later has the larger raw id).
    """

    PER_READING = 1024  # ids per reading of the clock (the counter holds 16,384)

    def __init__(self) -> None:
        import random

        # ids need to be unique, not unguessable (as uuid7str, whose random part is not a secret)
        self._bits = random.Random(random.SystemRandom().getrandbits(128)).getrandbits  # noqa: S311
        self._stamp = (0, 0, 0)
        self._prefix = ""
        self._count = self.PER_READING

    def _read_clock(self) -> None:
        t1, rest = divmod(time.time_ns(), 16_000_000_000)
        t2, rest = divmod(rest << 16, 16_000_000_000)
        stamp = (t1, t2, (rest << 12) // 16_000_000_000 | 0x7000)
        if stamp <= self._stamp:  # the same tick as the last reading, or the clock stepped back
            t1, t2, t3 = self._stamp
            t3 += 1
            if t3 > 0x7FFF:
                t3, t2 = 0x7000, t2 + 1
                if t2 > 0xFFFF:
                    t2, t1 = 0, t1 + 1
            stamp = (t1, t2, t3)
        self._stamp, self._count = stamp, 0
        self._prefix = f"{stamp[0]:08x}-{stamp[1]:04x}-{stamp[2]:04x}-"

    def __call__(self) -> str:
        if self._count >= self.PER_READING:
            self._read_clock()
        count = self._count
        self._count = count + 1
        return f"{self._prefix}{0x8000 | count:04x}-{self._bits(48):012x}"


new_raw_id = RawIds()


def record_row(layout: Layout, data: dict, emitted_at: int) -> list:
    """One record's values in its stream's column order, with a new raw id (UUIDv7, in emit order)."""
    columns, slots, (raw_id, extracted, meta) = layout
    row: list[Any] = [None] * len(columns)
    for slot, value in zip(slots, data.values(), strict=True):
        if slot is not None:
            row[slot] = value
    row[raw_id] = new_raw_id()
    row[extracted] = extracted_at(emitted_at)
    row[meta] = {}
    return row


# -- values the column type cannot hold: NULLED and listed in _airbyte_meta (see the module doc) -------
_INTEGER = re.compile(r"^\s*[+-]?\d+\s*$")
_NUMBER = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")
_BOOLEANS = frozenset({"t", "f", "true", "false", "y", "n", "yes", "no", "on", "off", "1", "0"})
BIGINT = 2**63
NUMERIC_LIMIT = 1e29  # PyAirbyte's number columns are DECIMAL(38, 9)
MAX_LOGGED_FLAGS = 5  # per stream, in the task log


def to_integer(value: Any) -> Any:
    """A value a BIGINT column takes (a whole float becomes an int: COPY rejects '5.0')."""
    kind = type(value)
    if kind is float and value.is_integer():
        value, kind = int(value), int
    elif kind is str and _INTEGER.match(value):
        value, kind = int(value), int
    if kind is int and -BIGINT <= value < BIGINT:
        return value
    raise ValueError(value)


def to_number(value: Any) -> Any:
    kind = type(value)
    if kind is str and _NUMBER.match(value):
        if abs(float(value)) < NUMERIC_LIMIT:
            return value
    elif (kind is int or kind is float) and math.isfinite(value) and abs(value) < NUMERIC_LIMIT:
        return value
    raise ValueError(value)


def to_boolean(value: Any) -> Any:
    kind = type(value)
    if kind is bool or (kind is str and value.strip().lower() in _BOOLEANS):
        return value
    if kind is int and value in (0, 1):
        return bool(value)
    raise ValueError(value)


def to_json(value: Any) -> Any:
    """Objects, lists, numbers and booleans are JSON; a string must be JSON text to fit a json column."""
    if type(value) is str:
        json.loads(value)
    return value


def airbyte_type(definition: Any) -> str | None:
    """The Airbyte type of a JSON-schema property (docs.airbyte.com's supported data types), which
    decides its column's SQL type: an explicit `airbyte_type`, else `type` (a union with null folded
    to its one other type) and, for strings, `format` (date, date-time, time). None if unknown."""
    if not isinstance(definition, dict):
        return None
    if definition.get("airbyte_type"):
        return definition["airbyte_type"]
    kind, form = definition.get("type"), definition.get("format")
    if isinstance(kind, list):
        others = [k for k in kind if k != "null"]
        if len(others) == 1:
            kind = others[0]
    if kind == "string":
        return {"date": "date", "date-time": "timestamp_with_timezone", "time": "time_without_timezone"}.get(form, kind)
    if isinstance(kind, str) and kind in ("number", "boolean", "integer", "object", "array", "vector_array"):
        return kind
    return None


CASTS = {"integer": to_integer, "number": to_number, "boolean": to_boolean, "object": to_json, "array": to_json}


def fit_row(casts: list[tuple[int, str, Any]], row: list, meta: int, flag: Any) -> None:
    """NULL each value its column cannot hold, listing it in the row's _airbyte_meta (module doc)."""
    changes = None
    for position, column, cast in casts:
        value = row[position]
        if value is None:
            continue
        try:
            fitted = cast(value)
        except (ValueError, TypeError, OverflowError):
            row[position] = None
            changes = changes or []
            changes.append({"field": column, "change": "NULLED", "reason": "DESTINATION_TYPECAST_ERROR"})
            flag(column, value)
            continue
        if fitted is not value:
            row[position] = fitted
    if changes:
        row[meta] = {"changes": changes}
