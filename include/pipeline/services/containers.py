"""The container form of the stack (docker-compose.yaml): its secrets and its one-off init step.

`python -m include.pipeline.services.containers env` (`make compose-env`) adds to `.env` every
secret compose needs that is missing (the ones `make setup` makes, plus Airflow's metadata-DB
password, Fernet key, API and JWT secrets, the Redis and Grafana passwords). Compose reads them
as `${VAR:?...}`: it refuses to start without them, and no default password exists anywhere.

`... containers init` is the `airflow-init` service: the same steps as `make settings` on the
laptop (warehouse roles from include/sql/warehouse, `airflow db migrate`, airflow_settings.yaml,
the metrics schema from include/sql/metrics). The buckets, and one MinIO user per stage with its
policy, come before it from the `minio-setup` service (compose/minio-setup.sh, MinIO's `mc`).
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

from include.pipeline import env_file, settings

# What compose needs beyond settings.GENERATED_SECRETS, and how each one is made.
COMPOSE_SECRETS: dict[str, Callable[[], str]] = {
    "AIRFLOW_DB_PASSWORD": lambda: secrets.token_urlsafe(24),
    # Fernet: url-safe base64 of 32 random bytes (what cryptography's Fernet.generate_key() returns)
    "AIRFLOW_FERNET_KEY": lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    "AIRFLOW_JWT_SECRET": lambda: secrets.token_urlsafe(32),
    "AIRFLOW_API_SECRET_KEY": lambda: secrets.token_urlsafe(32),
    "REDIS_PASSWORD": lambda: secrets.token_urlsafe(24),
    "GRAFANA_ADMIN_PASSWORD": lambda: secrets.token_urlsafe(24),
    "SUPERSET_SECRET_KEY": lambda: secrets.token_urlsafe(32),  # profile bi (docs/bi.md)
    "SUPERSET_ADMIN_PASSWORD": lambda: secrets.token_urlsafe(24),
}
# One MinIO user per stage (compose/minio-setup.sh makes them, airflow_settings.yaml the Airflow
# connections that hold them): an access key of 20 characters and a secret of 40, the longest
# MinIO accepts for every kind of key.
S3_STAGES = ("EXPORTS_WRITER", "EXPORTS_READER", "LAKE_WRITER", "LAKE_READER")
for _stage in S3_STAGES:
    COMPOSE_SECRETS[f"S3_{_stage}_ACCESS_KEY"] = lambda: secrets.token_hex(10)
    COMPOSE_SECRETS[f"S3_{_stage}_SECRET_KEY"] = lambda: secrets.token_urlsafe(30)


def ensure_compose_env(path: Path = settings.ENV_FILE) -> list[str]:
    """Add the missing secrets of `make setup` and of compose to `path`; return the keys added.

    Values already in the file are kept (the Postgres volume was initialised with them). Same
    discipline as env_file.ensure_env_file: one writer at a time, the file replaced whole, 0600.
    """
    import fcntl

    from include.pipeline.private_files import write_private

    added = env_file.ensure_env_file(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        existing = settings.read_env_file(path)
        missing = [key for key in COMPOSE_SECRETS if not existing.get(key)]
        if missing:
            lines = path.read_text().rstrip("\n").splitlines()
            lines += [f"{key}={COMPOSE_SECRETS[key]()}" for key in missing]
            write_private(path, "\n".join(lines) + "\n")
        return added + missing
    finally:
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["env"]:
        added = ensure_compose_env()
        print(f"==> {settings.ENV_FILE}: " + (f"generated {', '.join(added)}" if added else "every secret is set"))
        return 0
    if args == ["init"]:
        from include.pipeline.services.airflow_init import migrate_and_load_settings

        migrate_and_load_settings()
        return 0
    print("usage: python -m include.pipeline.services.containers env|init", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
