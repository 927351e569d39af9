"""SQL names as quoted identifiers: every statement that carries a name composes it with
psycopg2.sql (ruff's S608 is on), so a name can never end a string or a statement."""

from __future__ import annotations

import re

from psycopg2 import sql

_QUOTED_PART = re.compile(r'"((?:[^"]|"")*)"')


def relation(name: str) -> sql.Identifier:
    """`schema.table` (or dbt's `"db"."schema"."table"`) as one quoted identifier.

    A dotted name is split on its dots; a quoted one (dbt's relation_name) into its quoted parts."""
    if name.startswith('"'):
        parts = _QUOTED_PART.findall(name)
        if not parts or ".".join(f'"{p}"' for p in parts) != name:
            raise ValueError(f"not a quoted relation name: {name!r}")
        return sql.Identifier(*(p.replace('""', '"') for p in parts))
    return sql.Identifier(*name.split("."))


def count_rows(name: str) -> sql.Composed:
    """`select count(*) from <relation>`, the statement most checks need."""
    return sql.SQL("select count(*) from {}").format(relation(name))
