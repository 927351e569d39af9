"""Schema changes a sync meets: a column the declaration does not know, a value of another type, a
declared column no record carries, and what the connection's policy does with each.

The policy is the connection's `non_breaking_schema_updates_behavior` in connections.yaml, with
the values of the Airbyte API's `nonBreakingSchemaUpdatesBehavior`. The platform engine sends it
to the server (airbyte_server/apply.py); the embedded engine carries it out here, record by record:

- `propagate_columns` (the default) and `propagate_fully`: a new column is added to the raw table
  (typed from its first value: string text, integer bigint, number numeric, boolean, object/array
  json) and its values are loaded. Nothing is dropped; a removed column stays in raw (NULL from now);
- `ignore`: a new column is not loaded (as before this policy existed), but it is still recorded
  and alerted on every sync that meets it;
- `disable_connection`: the sync of the stream that meets a change stops before anything of it is
  committed (its cursor does not move) and fails, naming the change: Airbyte disables the
  connection; here the next run fails the same way until the declaration says what to do.

Every change is logged and reported (RESULT's `schema_changes`), recorded in metrics.schema_changes
and alerted without failing the run (include/pipeline/observe/ingest_problems.py).

Standard library only: the embedded runner (.venv-airbyte) loads this file by its path.
"""

from __future__ import annotations

from typing import Any

POLICIES = ("propagate_columns", "propagate_fully", "ignore", "disable_connection")
DEFAULT_POLICY = "propagate_columns"
KEEPS = ("propagate_columns", "propagate_fully")  # the policies under which a new column is loaded

NEW_COLUMN, TYPE_CHANGE, REMOVED_COLUMN = "new_column", "type_change", "removed_column"

# A value's JSON type, and the declared types a value of that Python type satisfies
JSON_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number", dict: "object", list: "array"}
ACCEPTS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


class SchemaChangeStop(RuntimeError):
    """disable_connection: a change stopped the stream's sync before anything of it was committed."""


def json_type(value: Any) -> str:
    return JSON_TYPES.get(type(value), "string")


def declared_type(definition: Any) -> str | None:
    """The JSON type a property of a stream's JSON schema declares (`type: [null, integer]` -> integer)."""
    kinds = definition.get("type") if isinstance(definition, dict) else None
    kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
    kinds = [k for k in kinds if k != "null"]
    return kinds[0] if len(kinds) == 1 and kinds[0] in ACCEPTS else None


def property_for(value: Any) -> dict:
    """The JSON schema property a new column gets, from its first value (null: a string)."""
    return {"type": ["null", "string" if value is None else json_type(value)]}


def action_of(policy: str, change: str) -> str:
    """What the embedded engine does with a change under `policy` (recorded beside the change)."""
    if policy == "disable_connection":
        return "sync_stopped"
    if change == NEW_COLUMN:
        return "column_added" if policy in KEEPS else "ignored"
    return "recorded"  # a type change or a removed column: values are loaded or NULL as before


class StreamWatch:
    """The changes of one stream in one sync: new keys, values of another type, missing columns.

    `declared`: the stream's declared properties (its JSON schema's, source columns only);
    `normalize`: the destination's column naming. Checking a record costs one pass over its
    declared columns (see `check_types`); new and missing keys are found once per distinct set of
    keys (`keys_seen`), which is how the runner already caches a record's layout.
    """

    def __init__(self, stream: str, declared: dict[str, Any], policy: str, normalize: Any) -> None:
        self.stream, self.policy, self.normalize = stream, policy, normalize
        self.declared = {normalize(name): declared_type(d) for name, d in declared.items()}
        self.keys: set[str] = set()  # every (normalized) key a record of this sync carried
        self.records = 0
        self.changes: dict[tuple[str, str], dict] = {}

    def new_keys(self, keys: tuple) -> list[tuple[str, str]]:
        """(key as sent, column name) of the keys of a record that the declaration does not know."""
        found = []
        for key in keys:
            column = self.normalize(key)
            self.keys.add(column)
            if column not in self.declared:
                found.append((key, column))
        return found

    def record(self, change: str, column: str, detail: str, count: int = 1) -> dict:
        """Note a change (once per stream, column and kind; later ones add to its count)."""
        entry = self.changes.get((change, column))
        if entry is None:
            entry = self.changes[(change, column)] = {
                "stream": self.stream,
                "column": column,
                "change": change,
                "detail": detail,
                "policy": self.policy,
                "action": action_of(self.policy, change),
                "records": 0,
            }
        entry["records"] += count
        return entry

    def type_checks(self, positions: dict[str, int]) -> list[tuple[int, str, str, tuple[type, ...]]]:
        """(position in a row, column, declared type, accepted Python types) of the declared columns."""
        checks = []
        for column, kind in self.declared.items():
            if kind is not None and column in positions:
                checks.append((positions[column], column, kind, ACCEPTS[kind]))
        return checks

    def check_types(self, checks: list, row: list) -> list[tuple[str, str, str]] | None:
        """(column, declared, sent) of each value in `row` of another JSON type than its column's."""
        found = None
        for position, column, kind, accepted in checks:
            value = row[position]
            if value is not None and type(value) not in accepted:
                found = found or []
                found.append((column, kind, json_type(value)))
        return found

    def removed(self) -> list[str]:
        """Declared columns that no record of this sync carried (only once the stream had records)."""
        if not self.records:
            return []
        return sorted(c for c in self.declared if c not in self.keys and not c.startswith("_ab_"))


def describe(change: dict) -> str:
    """One line naming a change and what was done with it."""
    count = f"; {change['records']} record(s)" if change.get("records") is not None else ""
    return (
        f"schema change in stream {change['stream']}: {change['change'].replace('_', ' ')} {change['column']!r} "
        f"({change['detail']}{count}) -> {change['action'].replace('_', ' ')} "
        f"(non_breaking_schema_updates_behavior: {change['policy']})"
    )
