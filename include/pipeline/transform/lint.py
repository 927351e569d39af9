"""`make lint`'s SQL half: sqlfluff with the dbt templater over include/dbt (config: .sqlfluff).

The dbt templater compiles the project, and dbt opens a connection to the profile's database
while compiling (it lists relations), so a fresh clone with nothing running would fail with
"dbt tried to connect to the database". This starts a throwaway embedded Postgres (0.5 s, a
generated password, 127.0.0.1, deleted afterwards) unless WAREHOUSE_HOST/WAREHOUSE_PORT point at
a server already, then runs `sqlfluff lint` with the profile in include/dbt/profiles.yml.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

from include.pipeline import settings


def main(argv: list[str]) -> int:
    paths = argv or [str(settings.DBT_PROJECT_DIR)]
    sqlfluff = Path(sys.executable).with_name("sqlfluff")
    env = {**os.environ, "DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    command = [str(sqlfluff), "lint", *paths]
    if os.environ.get("WAREHOUSE_PORT") and os.environ.get("WAREHOUSE_PASSWORD"):
        return subprocess.run(command, env=env, cwd=settings.REPO_ROOT, check=False).returncode

    from include.pipeline.services.postgres import EmbeddedPostgres

    with tempfile.TemporaryDirectory(prefix="sqlfluff-pg-") as tmp:
        server = EmbeddedPostgres(Path(tmp), password=secrets.token_urlsafe(16))
        port = server.start()
        try:
            env.update(
                WAREHOUSE_HOST="127.0.0.1",
                WAREHOUSE_PORT=str(port),
                WAREHOUSE_USER=server.superuser,
                WAREHOUSE_PASSWORD=server.password,
                WAREHOUSE_DB="postgres",
            )
            return subprocess.run(command, env=env, cwd=settings.REPO_ROOT, check=False).returncode
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
