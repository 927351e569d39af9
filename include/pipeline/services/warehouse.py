"""Set up the warehouse's roles and grants from include/sql/warehouse/V<NNN>__<name>.sql, idempotently.

Runs as the superuser (WAREHOUSE_USER), the one thing the superuser is for: every stage then
connects as its own role (settings.ROLES). Each file is applied once, in version order, in one
transaction holding an advisory lock, and recorded with its checksum in public.warehouse_migrations;
a recorded file whose content changed is an error (add a new version). Then each role gets its
password from .env (WAREHOUSE_<JOB>_PASSWORD): a password is never written in a migration.

The same for the embedded Postgres and any other (docker compose, a managed server):
`python -m include.pipeline.services.warehouse` migrates the database of the WAREHOUSE_* settings.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping
from pathlib import Path

from psycopg2 import sql

from include.pipeline import endpoints, settings
from include.pipeline.observe.schema import MigrationError, migrations

MIGRATIONS_DIR = settings.REPO_ROOT / "include" / "sql" / "warehouse"
VERSION_TABLE = sql.Identifier("public", "warehouse_migrations")
_LOCK_KEY = 0x57524853  # "WRHS": the advisory lock of warehouse migrations


def role_passwords() -> dict[str, str]:
    """{role name: password} of every job's role, from the settings (.env)."""
    out = {}
    for job, role in settings.ROLES.items():
        password = settings.setting(settings.role_password_key(job))
        if not password:
            raise RuntimeError(
                f"{settings.role_password_key(job)} is not set: run `make setup` to generate it into {settings.ENV_FILE}"
            )
        out[role] = password
    return out


def migrate(params: Mapping, passwords: Mapping[str, str] | None = None, folder: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply the pending migrations to the database of `params` (psycopg2 connect() keywords, as
    a superuser) and set the roles' `passwords`; return the versions applied now."""
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(**{"connect_timeout": 10, **params})
    applied_now = []
    try:
        with conn, conn.cursor() as cur:
            cur.execute("select pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            cur.execute(
                sql.SQL(
                    "create table if not exists {} ("
                    " version text primary key, name text not null, checksum text not null,"
                    " applied_at timestamptz not null default now())"
                ).format(VERSION_TABLE)
            )
            cur.execute(sql.SQL("select version, checksum from {}").format(VERSION_TABLE))
            done = dict(cur.fetchall())
            for version, path in migrations(folder):
                text = path.read_text()
                checksum = hashlib.sha256(text.encode()).hexdigest()
                if version in done:
                    if done[version] != checksum:
                        raise MigrationError(
                            f"{path} changed after it was applied (recorded checksum {done[version][:12]}); "
                            "never edit an applied migration: add V<next>__<name>.sql"
                        )
                    continue
                cur.execute(text)
                cur.execute(
                    sql.SQL("insert into {} (version, name, checksum) values (%s, %s, %s)").format(VERSION_TABLE),
                    (version, path.name, checksum),
                )
                applied_now.append(version)
            for role, password in (passwords or {}).items():
                cur.execute(sql.SQL("alter role {} with login password %s").format(sql.Identifier(role)), (password,))
    finally:
        conn.close()
    return applied_now


def admin_params(wh: endpoints.Warehouse | None = None) -> dict:
    wh = wh or endpoints.Warehouse.from_settings()
    return {"host": wh.host, "port": wh.port, "user": wh.user, "password": wh.password, "dbname": wh.database}


def main() -> int:
    import psycopg2

    wh = endpoints.Warehouse.from_settings()
    try:
        applied = migrate(admin_params(wh), role_passwords())
    except (MigrationError, RuntimeError) as exc:
        print(f"error: warehouse roles: {exc}", file=sys.stderr)
        return 2
    except psycopg2.Error as exc:  # cannot connect, or a privilege the setup needs: one line, no traceback
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        hint = ""
        if isinstance(exc, psycopg2.errors.InsufficientPrivilege):
            hint = (
                "; nothing was changed. The setup needs a superuser, or a role that owns the database, has CREATEROLE"
                " and can SET ROLE to the four warehouse_* roles (docs/your-services.md)"
            )
        print(
            f"error: warehouse roles on {wh.host}:{wh.port}/{wh.database} as {wh.user}: {first}{hint}", file=sys.stderr
        )
        return 2
    print(
        f"warehouse roles on {wh.host}:{wh.port}/{wh.database}: "
        + (f"applied {', '.join(applied)}" if applied else "up to date")
        + f"; passwords set for {', '.join(settings.ROLES.values())}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
