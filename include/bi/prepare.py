"""Ready Superset's metadata for a start, in one process (each `superset` command pays the app's
start): migrate it (`superset db upgrade`), sync roles and permissions (`superset init`), set the
admin's password from SUPERSET_ADMIN_PASSWORD, import include/bi/assets (Superset's export format,
unzipped). Run by Superset's own interpreter (.venv-superset) from include/bi/run.py, with the
environment it builds.

The database file keeps no host, port or password: its `sqlalchemy_uri` is rewritten to the
warehouse this stack runs (BI_WAREHOUSE_*, the read-only reader role) before the import. The import
overwrites what the files define, so the files are the truth and a second start changes nothing.
"""

import os
import sys
import time
from pathlib import Path
from urllib.parse import quote

import yaml

ASSETS = Path(os.environ["BI_ASSETS"])
ADMIN = "admin"


def warehouse_uri(password: bool) -> str:
    env = os.environ
    secret = quote(env["BI_WAREHOUSE_PASSWORD"], safe="") if password else "XXXXXXXXXX"
    return (
        f"postgresql+psycopg2://{quote(env['BI_WAREHOUSE_USER'], safe='')}:{secret}"
        f"@{env['BI_WAREHOUSE_HOST']}:{env['BI_WAREHOUSE_PORT']}/{env['BI_WAREHOUSE_DB']}"
    )


def contents() -> dict[str, str]:
    """{"<path>": yaml text} as an exported ZIP holds them below its folder, the database pointed here."""
    files = {}
    for path in sorted(ASSETS.rglob("*.yaml")):
        name = path.relative_to(ASSETS).as_posix()
        text = path.read_text()
        if name.startswith("databases/"):
            doc = yaml.safe_load(text)
            doc["sqlalchemy_uri"] = warehouse_uri(password=False)  # masked: the password goes beside
            text = yaml.safe_dump(doc, sort_keys=False)
        files[name] = text
    return files


def migrate() -> None:
    import superset
    from flask_migrate import upgrade

    upgrade(directory=str(Path(superset.__file__).parent / "migrations"))


def sync_roles_and_admin() -> None:
    from superset.extensions import appbuilder, security_manager

    appbuilder.add_permissions(update_perms=True)
    security_manager.sync_role_definitions()
    password = os.environ["SUPERSET_ADMIN_PASSWORD"]
    admin = security_manager.find_user(username=ADMIN)
    if admin is None:
        role = security_manager.find_role("Admin")
        if not security_manager.add_user(ADMIN, "Admin", "Stack", "admin@localhost", role, password=password):
            raise RuntimeError("could not create Superset's admin user")
    else:
        security_manager.reset_password(admin.id, password)  # .env is the truth


def import_assets() -> str:
    from flask import g
    from superset.commands.dashboard.importers.v1 import ImportDashboardsCommand
    from superset.extensions import security_manager

    g.user = security_manager.find_user(username=ADMIN)  # the owner of what is imported, as `superset import-*` does
    files = contents()
    passwords = {name: os.environ["BI_WAREHOUSE_PASSWORD"] for name in files if name.startswith("databases/")}
    ImportDashboardsCommand(files, passwords=passwords, overwrite=True).run()
    counts = {
        kind: sum(n.startswith(f"{kind}/") for n in files) for kind in ("databases", "datasets", "charts", "dashboards")
    }
    return ", ".join(f"{n} {kind}" for kind, n in counts.items())


def main() -> int:
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        for step, run in (("metadata migrated", migrate), ("roles and admin", sync_roles_and_admin)):
            started = time.monotonic()
            run()
            print(f"==> superset: {step} ({time.monotonic() - started:.1f} s)", flush=True)
        started = time.monotonic()
        imported = import_assets()
        print(f"==> superset: imported include/bi/assets: {imported} ({time.monotonic() - started:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
