"""The simulated shop: a stand-in for a real shop and its own nightly export.

A real shop exports, every night, the records it created or changed that day into object
storage; source-s3 reads the new files incrementally. This module plays that shop so the demo
has a realistic daily workload: for a logical date D it writes D's new and changed users,
products and purchases into the exports bucket as files `<stream>/<D>/<kind>part-NNNN.<fmt>`.
Point connections.yaml at real exports and this step is simply not used (see README). It lives
outside include/pipeline: the production code never needs it.

The shop is a pure function of (simulator settings, D): day 0 (ANCHOR_DATE) holds `customers`
customers and `orders` orders with their history; each later day adds `daily_new` x that size
and changes `daily_changed` x that size of existing records (a customer moves and gets a new
e-mail; an order advances: cart -> purchased -> returned). Generated with numpy, one bounded
chunk (`chunk_rows`) at a time, so a 1M-customer shop needs no more memory than a chunk.

Which files a run writes for a day: include/simulator/exports.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ANCHOR_DATE = dt.date(2026, 1, 1)  # the DAG's start_date: day 0 of the shop
STREAMS = ("users", "products", "purchases")
# jsonl.gz: JSON lines, gzip-compressed (source-s3 reads them as `filetype: jsonl`; the shipped
# format: source-s3 parses JSON lines faster than Parquet, docs/benchmarks.md)
FORMATS = ("jsonl", "jsonl.gz", "parquet")
CONTENT_TYPES = {
    "jsonl": "application/x-ndjson",
    "jsonl.gz": "application/gzip",
    "parquet": "application/vnd.apache.parquet",
}
HASH_META = "content-sha256"  # user metadata on every export object: its content's hash

# The raw columns of each stream, with source-faker's JSON types (include/airbyte/catalogs/
# source-faker.json): the dbt project's staging models read these names and types.
_TS = {"type": "string", "format": "date-time", "airbyte_type": "timestamp_with_timezone"}
_TS_NULL = {**_TS, "type": ["null", "string"]}
SCHEMAS: dict[str, dict[str, Any]] = {
    "users": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "title": {"type": "string"},
        "email": {"type": "string"},
        "telephone": {"type": "string"},
        "gender": {"type": "string"},
        "age": {"type": "integer"},
        "height": {"type": "string"},
        "weight": {"type": "integer"},
        "blood_type": {"type": "string"},
        "academic_degree": {"type": "string"},
        "language": {"type": "string"},
        "nationality": {"type": "string"},
        "occupation": {"type": "string"},
        "address": {
            "type": "object",
            "properties": {
                k: {"type": "string"}
                for k in ("street_number", "street_name", "city", "state", "province", "postal_code", "country_code")
            },
        },
        "created_at": _TS,
        "updated_at": _TS,
    },
    "products": {
        "id": {"type": "integer"},
        "make": {"type": "string"},
        "model": {"type": "string"},
        "year": {"type": "integer"},
        "price": {"type": "number"},
        "created_at": _TS,
        "updated_at": _TS,
    },
    "purchases": {
        "id": {"type": "integer"},
        "user_id": {"type": "integer"},
        "product_id": {"type": "integer"},
        "added_to_cart_at": _TS_NULL,
        "purchased_at": _TS_NULL,
        "returned_at": _TS_NULL,
        "created_at": _TS,
        "updated_at": _TS,
    },
}


def input_schema(stream: str) -> dict[str, str]:
    """source-s3's `input_schema` of a stream (a flat column: type mapping; nested types are
    not supported there, so `address` is an `object` and times are strings)."""
    return {
        name: spec["type"] if isinstance(spec["type"], str) else spec["type"][-1]
        for name, spec in SCHEMAS[stream].items()
    }


@dataclass(frozen=True)
class ShopSettings:
    """The `simulator:` block of a source in connections.yaml (defaults: the demo's small shop)."""

    bucket: str = "shop-exports"
    format: str = "jsonl.gz"
    seed: int = 42
    customers: int = 1000  # on day 0
    orders: int = 1000  # on day 0
    products: int = 100
    daily_new: float = 0.02  # new customers and orders per day, as a share of day 0's size
    daily_changed: float = 0.02  # changed customers and orders per day, same share
    chunk_rows: int = 200_000  # rows per export file: bounds the generator's memory

    KEYS = ("bucket", "format", "seed", "customers", "orders", "products", "daily_new", "daily_changed", "chunk_rows")

    @classmethod
    def from_config(cls, config: dict[str, Any], overrides: dict[str, Any] | None = None) -> ShopSettings:
        values = {k: v for k, v in {**config, **(overrides or {})}.items() if v is not None}
        return cls(**{k: type(getattr(cls, k))(v) for k, v in values.items() if k in cls.KEYS})

    def new_customers(self) -> int:
        return round(self.customers * self.daily_new)

    def new_orders(self) -> int:
        return round(self.orders * self.daily_new)

    def changed_customers(self) -> int:
        return round(self.customers * self.daily_changed)

    def changed_orders(self) -> int:
        return round(self.orders * self.daily_changed)


def day_index(logical_date: dt.date | str) -> int:
    if isinstance(logical_date, str):
        logical_date = dt.date.fromisoformat(logical_date[:10])
    return max(0, (logical_date - ANCHOR_DATE).days)


def day_date(day: int) -> dt.date:
    return ANCHOR_DATE + dt.timedelta(days=day)


# -- deterministic randomness: a counter-based hash, so any record of any day is computed alone --
_M1, _M2, _GOLDEN = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB), np.uint64(0x9E3779B97F4A7C15)


def _mix(*parts: Any) -> np.ndarray:
    """splitmix64 over the parts (arrays or ints), elementwise: a uint64 per element."""
    with np.errstate(over="ignore"):
        h = np.zeros(np.broadcast(*[np.asarray(p) for p in parts]).shape, dtype=np.uint64)
        for p in parts:
            h = h ^ np.asarray(p).astype(np.uint64)
            h = h + _GOLDEN
            h = (h ^ (h >> np.uint64(30))) * _M1
            h = (h ^ (h >> np.uint64(27))) * _M2
            h = h ^ (h >> np.uint64(31))
    return h


def _pick(h: np.ndarray, salt: int, choices: np.ndarray) -> np.ndarray:
    return choices[(_mix(h, salt) % np.uint64(len(choices))).astype(np.int64)]


def _uniform(h: np.ndarray, salt: int) -> np.ndarray:
    return (_mix(h, salt) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


_FIRST = np.array("Ada Alan Anna Ben Carla Chen Dana Eli Emma Finn Grace Hugo Ines Ivan Jana Kai Lea Liam Maya "
                  "Mila Nora Omar Pia Raj Rosa Sami Sara Tom Uma Vera Yara Zoe".split())  # fmt: skip
_LAST = np.array("Adams Berg Costa Diaz Evans Fischer Garcia Hansen Ito Jensen Kim Lopez Martin Novak Okafor "
                 "Petrov Quinn Rossi Silva Tanaka Ueda Varga Weber Xu Yilmaz Zhang".split())  # fmt: skip
_TITLES = np.array(["Mr.", "Ms.", "Mx.", "Dr.", "Prof."])
_GENDERS = np.array(["Female", "Male", "Other"])
_BLOOD = np.array(["A+", "A-", "B+", "B-", "AB+", "AB-", "O+", "O-"])
_DEGREES = np.array(["Bachelor", "Master", "PhD", "None"])
_LANGUAGES = np.array(["English", "German", "French", "Spanish", "Japanese", "Portuguese", "Hindi"])
_NATIONS = np.array(["American", "German", "French", "Spanish", "Japanese", "Brazilian", "Indian", "Kenyan"])
_JOBS = np.array("Accountant Baker Carpenter Designer Engineer Farmer Geologist Nurse Pilot Teacher Writer".split())
_CITIES = np.array("Austin Berlin Cairo Denver Essen Fresno Geneva Hanoi Izmir Jaipur Kyoto Lagos Lyon Madrid "
                   "Nairobi Osaka Porto Quito Recife Seoul Tampa Utrecht Vienna".split())  # fmt: skip
_STREETS = np.array(["Oak Street", "Maple Avenue", "Station Road", "Park Lane", "Mill Road", "High Street"])
_STATES = np.array(["California", "Texas", "Bavaria", "Ontario", "Kansai", "Lombardy", "Gauteng"])
_COUNTRIES = np.array(["US", "DE", "FR", "ES", "JP", "BR", "IN", "KE"])
_DOMAINS = np.array(["example.com", "mail.test", "shop.invalid"])
_MAKES = np.array("Audi BMW Citroen Dacia Ford Honda Kia Mazda Nissan Opel Renault Seat Skoda Toyota Volvo".split())
_MODELS = np.array("Alpha Beta Civic Corsa Duster Focus Golf Model Octavia Polo Rio Swift Yaris".split())
_HISTORY_DAYS = 365  # day 0's records were created over the year before it


def _timestamps(day: np.ndarray, h: np.ndarray, salt: int, offset_seconds: np.ndarray | int = 0):
    """ISO-8601 UTC times (pyarrow strings) on `day` (days since ANCHOR_DATE, may be negative),
    at a time of day from the hash."""
    import pyarrow as pa
    import pyarrow.compute as pc

    seconds = (_mix(h, salt) % np.uint64(20 * 3600)).astype(np.int64) + 3 * 3600 + offset_seconds
    epoch = (ANCHOR_DATE - dt.date(1970, 1, 1)).days * 86400
    moment = pa.array(epoch + day.astype(np.int64) * 86400 + seconds, type=pa.int64()).cast(pa.timestamp("s"))
    text = pc.utf8_replace_slice(moment.cast(pa.string()), start=10, stop=11, replacement="T")
    return pc.binary_join_element_wise(text, "+00:00", "")  # far cheaper than pc.strftime


def _pick(h: np.ndarray, salt: int, choices: np.ndarray):
    """A pyarrow string array: one of `choices` per element, from the hash."""
    import pyarrow as pa

    index = (_mix(h, salt) % np.uint64(len(choices))).astype(np.int32)
    return pa.DictionaryArray.from_arrays(pa.array(index), pa.array(choices)).dictionary_decode()


def _text(values: np.ndarray, width: int = 0):
    """Integers as a pyarrow string array, zero-padded to `width`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pa.array(values.astype(np.int64)).cast(pa.string())
    return pc.utf8_lpad(text, width=width, padding="0") if width else text


def _join(*parts, sep: str = ""):
    import pyarrow.compute as pc

    return pc.binary_join_element_wise(*parts, sep)


def _where(mask: np.ndarray, a, b):
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.if_else(pa.array(mask), a, b)


@dataclass
class ShopHistory:
    """Per-key facts up to a day: when each customer/order was created and last changed."""

    settings: ShopSettings
    day: int
    customer_created: np.ndarray = field(init=False)
    order_created: np.ndarray = field(init=False)
    customer_changed: np.ndarray = field(init=False)  # last change day (-1: never)
    order_first_change: np.ndarray = field(init=False)
    order_last_change: np.ndarray = field(init=False)
    order_changes: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        s, d = self.settings, self.day
        n_cust = s.customers + s.new_customers() * d
        n_ord = s.orders + s.new_orders() * d
        self.customer_created = self._created(s.customers, s.new_customers(), n_cust)
        self.order_created = self._created(s.orders, s.new_orders(), n_ord)
        self.customer_changed = np.full(n_cust, -1, dtype=np.int32)
        self.order_first_change = np.full(n_ord, -1, dtype=np.int32)
        self.order_last_change = np.full(n_ord, -1, dtype=np.int32)
        self.order_changes = np.zeros(n_ord, dtype=np.int8)
        for day in range(1, d + 1):  # each day's changes touch keys that existed the day before
            ids = self.changed_customer_ids(day)
            self.customer_changed[ids - 1] = day
            ids = self.changed_order_ids(day) - 1
            self.order_first_change[ids] = np.where(self.order_first_change[ids] < 0, day, self.order_first_change[ids])
            self.order_last_change[ids] = day
            self.order_changes[ids] = np.minimum(self.order_changes[ids] + 1, 2)

    def _created(self, base: int, per_day: int, total: int) -> np.ndarray:
        ids = np.arange(1, total + 1, dtype=np.int64)
        history = -(_HISTORY_DAYS - (ids - 1) * _HISTORY_DAYS // max(base, 1)).astype(np.int32)
        later = 1 + (ids - base - 1) // max(per_day, 1)
        return np.where(ids <= base, np.minimum(history, 0), later).astype(np.int32)

    def _existing(self, base: int, per_day: int, day: int) -> int:
        return base + per_day * (day - 1)

    def changed_customer_ids(self, day: int) -> np.ndarray:
        s = self.settings
        n = self._existing(s.customers, s.new_customers(), day)
        return _sample(s.seed, day, 1, n, s.changed_customers())

    def changed_order_ids(self, day: int) -> np.ndarray:
        s = self.settings
        n = self._existing(s.orders, s.new_orders(), day)
        return _sample(s.seed, day, 2, n, s.changed_orders())

    def keys_in(self, stream: str, after: int | None) -> np.ndarray:
        """Ids of `stream` whose latest version as of `day` is newer than day `after` (None: all)."""
        if stream == "products":
            return np.arange(1, self.settings.products + 1) if after is None else np.empty(0, dtype=np.int64)
        created, changed = (
            (self.customer_created, self.customer_changed)
            if stream == "users"
            else (self.order_created, self.order_last_change)
        )
        if after is None:
            return np.arange(1, len(created) + 1)
        return np.flatnonzero((created > after) | (changed > after)) + 1


def _sample(seed: int, day: int, salt: int, population: int, k: int) -> np.ndarray:
    """k distinct ids out of 1..population, a function of (seed, day, salt)."""
    k = min(k, population)
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    rng = np.random.default_rng([seed, day, salt])
    return np.sort(rng.choice(population, size=k, replace=False)) + 1


# -- records of one chunk of keys, as columns (pyarrow arrays) -----------------------------------
def users_columns(history: ShopHistory, ids: np.ndarray) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.compute as pc

    s = history.settings
    created = history.customer_created[ids - 1]
    changed = history.customer_changed[ids - 1]
    version = np.where(changed >= 0, changed, created)
    person = _mix(s.seed, 11, ids)  # who the customer is: never changes
    where = _mix(person, version)  # where they live: changes with every version
    first, last = _pick(person, 1, _FIRST), _pick(person, 2, _LAST)
    moved = version > np.maximum(created, 0)  # a new e-mail with every change: +<day>
    tag = _where(moved, _join(pa.array(np.full(len(ids), "+")), _text(version)), pa.array(np.full(len(ids), "")))
    email = _join(pc.utf8_lower(first), ".", pc.utf8_lower(last), tag, ".", _text(ids), "@", _pick(where, 4, _DOMAINS))
    created_at = _timestamps(created, person, 23)
    return {
        "id": pa.array(ids, type=pa.int64()),
        "name": _join(first, " ", last),
        "title": _pick(person, 5, _TITLES),
        "email": email,
        "telephone": _join("+1-555-", _text(_mix(where, 6) % np.uint64(10**7), 7)),
        "gender": _pick(person, 7, _GENDERS),
        "age": pa.array(18 + (_mix(person, 3) % np.uint64(70)).astype(np.int64)),
        "height": _join("1.", _text(50 + _mix(person, 8) % np.uint64(50), 2)),
        "weight": pa.array(45 + (_mix(person, 9) % np.uint64(70)).astype(np.int64)),
        "blood_type": _pick(person, 10, _BLOOD),
        "academic_degree": _pick(person, 12, _DEGREES),
        "language": _pick(person, 13, _LANGUAGES),
        "nationality": _pick(person, 14, _NATIONS),
        "occupation": _pick(where, 15, _JOBS),
        "address": pa.StructArray.from_arrays(
            [
                _text(1 + _mix(where, 16) % np.uint64(999)),
                _pick(where, 17, _STREETS),
                _pick(where, 18, _CITIES),
                _pick(where, 19, _STATES),
                _pick(where, 20, _STATES),
                _text(_mix(where, 21) % np.uint64(99999), 5),
                _pick(where, 22, _COUNTRIES),
            ],
            names=list(SCHEMAS["users"]["address"]["properties"]),
        ),
        "created_at": created_at,
        "updated_at": _where(version == created, created_at, _timestamps(version, where, 24)),
    }


def products_columns(history: ShopHistory, ids: np.ndarray) -> dict[str, Any]:
    import pyarrow as pa

    s = history.settings
    h = _mix(s.seed, 31, ids)
    created_at = _timestamps(np.full(len(ids), -_HISTORY_DAYS, dtype=np.int32), h, 5)
    return {
        "id": pa.array(ids, type=pa.int64()),
        "make": _pick(h, 1, _MAKES),
        "model": _pick(h, 2, _MODELS),
        "year": pa.array(1995 + (_mix(h, 3) % np.uint64(30)).astype(np.int64)),
        "price": pa.array(np.round(5_000 + _uniform(h, 4) * 95_000, 2)),
        "created_at": created_at,
        "updated_at": created_at,
    }


def purchases_columns(history: ShopHistory, ids: np.ndarray) -> dict[str, Any]:
    """An order is created in the cart (20%), paid (70%) or paid and returned (10%); each later
    change advances it one step (cart -> purchased -> returned), stamped on the day it happened."""
    import pyarrow as pa

    s = history.settings
    i = ids - 1
    created = history.order_created[i]
    first, last, changes = history.order_first_change[i], history.order_last_change[i], history.order_changes[i]
    version = np.where(last >= 0, last, created)
    h = _mix(s.seed, 41, ids)
    customers_then = s.customers + s.new_customers() * np.maximum(created, 0)
    u = _uniform(h, 2)
    base = np.where(u < 0.2, 1, np.where(u < 0.9, 2, 3))  # 1 in cart, 2 purchased, 3 returned
    stage = np.minimum(base + changes, 3)
    # a step at creation comes minutes after the cart; a change is stamped at the order's time
    # of day on the day it happened (always a later day than the creation)
    minutes = 60 * (1 + (_mix(h, 4) % np.uint64(120)).astype(np.int64))
    paid_day = np.where(base >= 2, created, first)
    return_day = np.where(base >= 3, created, np.where(base + 1 >= 3, first, last))
    null = pa.nulls(len(ids), pa.string())
    cart = _timestamps(created, h, 3)
    paid = _where(stage >= 2, _timestamps(paid_day, h, 3, np.where(paid_day == created, minutes, 0)), null)
    returned = _where(stage >= 3, _timestamps(return_day, h, 3, np.where(return_day == created, 2 * minutes, 0)), null)
    return {
        "id": pa.array(ids, type=pa.int64()),
        "user_id": pa.array(1 + (_mix(h, 1) % customers_then.astype(np.uint64)).astype(np.int64)),
        "product_id": pa.array(1 + (_mix(h, 5) % np.uint64(s.products)).astype(np.int64)),
        "added_to_cart_at": cart,
        "purchased_at": paid,
        "returned_at": returned,
        "created_at": cart,
        "updated_at": _where(version > created, _timestamps(version, h, 3), cart),
    }


COLUMNS: dict[str, Callable[[ShopHistory, np.ndarray], dict[str, Any]]] = {
    "users": users_columns,
    "products": products_columns,
    "purchases": purchases_columns,
}
