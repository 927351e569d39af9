"""Create and migrate the metrics schema from include/sql/metrics/V<NNN>__<name>.sql, idempotently.

Each file is applied once, in version order, inside a transaction holding an advisory lock
(two processes migrating at once serialise), and recorded with its checksum in
metrics.schema_migrations. A recorded file whose content changed is an error: add a new version.

`python -m include.pipeline.observe.schema` migrates the database named by METRICS_* (else the
warehouse settings); `cli demo/settings/up` call it and only warn when the database is down.
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

from include.pipeline import settings
from include.pipeline.observe import config, metrics_db

MIGRATIONS_DIR = settings.REPO_ROOT / "include" / "sql" / "metrics"
_NAME = re.compile(r"^V(\d{3})__[a-z0-9_]+\.sql$")
_LOCK_KEY = 0x5354414B  # "STAK": the advisory lock of metrics migrations
# A migration's own `create schema if not exists metrics;`, dropped when the schema exists (above).
_CREATE_SCHEMA = re.compile(rf"^\s*create\s+schema\s+if\s+not\s+exists\s+{settings.METRICS_SCHEMA}\s*;", re.I | re.M)


# Checksums an applied migration had before an edit of its comments only (its statements are the
# same): such a record is brought up to the file's checksum instead of refused. Only for comment
# edits; a changed statement is always a new V<next>__<name>.sql.
COMMENT_ONLY_EDITS: dict[str, frozenset[str]] = {
    # V001: its header says what an upsert guarantees rather than citing a list outside the repo
    "001": frozenset({"9b9e9daf83fcff48ab886862778c7e24f6275296ab52e65951775ecf29406dec"}),
}


class MigrationError(RuntimeError):
    pass


def migrations(folder: Path = MIGRATIONS_DIR) -> list[tuple[str, Path]]:
    found = []
    for path in sorted(folder.glob("*.sql")):
        if not _NAME.match(path.name):
            raise MigrationError(f"{path}: migration files are named V<NNN>__<lowercase_name>.sql")
        found.append((path.name[1:4], path))
    return found


def migrate(params: dict | None = None, folder: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply the pending migrations; return the versions applied now (empty when up to date)."""
    from psycopg2 import sql

    conn = metrics_db.connect(params or config.params_from_env())
    applied_now = []
    try:
        with conn, conn.cursor() as cur:
            cur.execute("select pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            ledger = sql.Identifier(settings.METRICS_SCHEMA, "schema_migrations")
            # The warehouse's metrics role owns the schema but may not create schemas, and Postgres
            # checks that privilege before it sees `if not exists`: create only what is missing.
            cur.execute("select 1 from pg_namespace where nspname = %s", (settings.METRICS_SCHEMA,))
            schema_exists = cur.fetchone() is not None
            if not schema_exists:
                cur.execute(sql.SQL("create schema {}").format(sql.Identifier(settings.METRICS_SCHEMA)))
            cur.execute(
                sql.SQL(
                    "create table if not exists {} ("
                    " version text primary key, name text not null, checksum text not null,"
                    " applied_at timestamptz not null default now())"
                ).format(ledger)
            )
            cur.execute(sql.SQL("select version, name, checksum from {}").format(ledger))
            done = {v: (n, c) for v, n, c in cur.fetchall()}
            for version, path in migrations(folder):
                text = path.read_text()
                checksum = hashlib.sha256(text.encode()).hexdigest()
                if version in done:
                    if done[version][1] in COMMENT_ONLY_EDITS.get(version, ()):
                        cur.execute(
                            sql.SQL("update {} set checksum = %s where version = %s").format(ledger),
                            (checksum, version),
                        )
                        continue
                    if done[version][1] != checksum:
                        raise MigrationError(
                            f"{path} changed after it was applied (recorded checksum {done[version][1][:12]}); "
                            "never edit an applied migration: add V<next>__<name>.sql"
                        )
                    continue
                cur.execute(_CREATE_SCHEMA.sub("", text) if schema_exists else text)
                cur.execute(
                    sql.SQL("insert into {} (version, name, checksum) values (%s, %s, %s)").format(ledger),
                    (version, path.name, checksum),
                )
                applied_now.append(version)
    finally:
        conn.close()
    return applied_now


def main() -> int:
    params = config.params_from_env()
    target = f"{params['host']}:{params['port']}/{params['dbname']}"
    try:
        applied = migrate(params)
    except MigrationError as exc:
        print(f"error: metrics schema: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a metrics database that is down must not stop the stack
        print(
            f"warning: metrics schema not migrated: {target} unreachable ({type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}); runs go on without metrics",
            file=sys.stderr,
        )
        return 0
    print(f"metrics schema on {target}: " + (f"applied {', '.join(applied)}" if applied else "up to date"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
