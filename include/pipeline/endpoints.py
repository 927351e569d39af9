"""Where the warehouse Postgres and the S3 service are, and as whom: from the settings (the
environment, `.env`) and the state the embedded services recorded when they started."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from include.pipeline import settings

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection


@dataclass(frozen=True)
class Warehouse:
    """Connection facts of the warehouse Postgres (embedded or external)."""

    host: str
    port: int
    user: str
    password: str
    database: str

    @classmethod
    def from_settings(cls) -> Warehouse:
        """The warehouse as its superuser (WAREHOUSE_USER): setup commands only."""
        password = settings.setting("WAREHOUSE_PASSWORD")
        if not password:
            raise RuntimeError(
                f"WAREHOUSE_PASSWORD is not set: run `make setup` to generate {settings.ENV_FILE}, "
                "or export it for an external Postgres."
            )
        return cls.location(password)

    @classmethod
    def location(cls, password: str = "") -> Warehouse:
        """Where the warehouse is (host, port, superuser's name, database), with `password`."""
        state = settings.services_state().get("postgres", {})
        host = settings.setting("WAREHOUSE_HOST")
        # the embedded server's port only for the embedded server: a Postgres of your own
        # (WAREHOUSE_HOST set) is on WAREHOUSE_PORT, else on Postgres's 5432
        return cls(
            host=host or "127.0.0.1",
            port=int(settings.setting("WAREHOUSE_PORT") or (None if host else state.get("port")) or 5432),
            user=settings.setting("WAREHOUSE_USER") or "postgres",
            password=password,
            database=settings.setting("WAREHOUSE_DB") or "warehouse",
        )

    @classmethod
    def for_role(cls, job: str) -> Warehouse:
        """The warehouse as the login role of `job` (a key of settings.ROLES), with its generated password."""
        if job not in settings.ROLES:
            raise ValueError(f"no warehouse role for job {job!r}; the jobs are {', '.join(settings.ROLES)}")
        key = settings.role_password_key(job)
        password = settings.setting(key)
        if not password:
            raise RuntimeError(f"{key} is not set: run `make setup` to generate it into {settings.ENV_FILE}")
        where = cls.location()
        return cls(where.host, where.port, settings.ROLES[job], password, where.database)

    @classmethod
    def from_airflow_connection(cls, conn_id: str) -> Warehouse:
        """The warehouse of an Airflow Postgres connection (inside a task: the task's own roles)."""
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        conn = PostgresHook.get_connection(conn_id)
        return cls(conn.host, int(conn.port or 5432), conn.login, conn.password, conn.schema)

    def params(self, **extra: object) -> dict:
        """psycopg2 connect() keywords (a 10 s connect timeout unless `extra` sets one)."""
        return {
            "host": self.host, "port": self.port, "user": self.user, "password": self.password,
            "dbname": self.database, "connect_timeout": 10, **extra,
        }  # fmt: skip

    def connect(self, **extra: object) -> PgConnection:
        """A new psycopg2 connection (`extra`: connect() keywords such as connect_timeout)."""
        import psycopg2

        return psycopg2.connect(**self.params(**extra))

    def uri(self, *, hide_password: bool = False) -> str:
        password = "***" if hide_password else self.password
        return f"postgresql://{self.user}:{password}@{self.host}:{self.port}/{self.database}"


@dataclass(frozen=True)
class S3:
    """The S3 service holding the shop's export files (the embedded SeaweedFS, or S3_ENDPOINT)."""

    endpoint: str
    access_key: str
    secret_key: str

    @classmethod
    def from_settings(cls) -> S3:
        state = settings.services_state().get("s3", {})
        access_key, secret_key = settings.setting("S3_ACCESS_KEY"), settings.setting("S3_SECRET_KEY")
        if not access_key or not secret_key:
            raise RuntimeError(
                f"S3_ACCESS_KEY / S3_SECRET_KEY are not set: run `make setup` to generate {settings.ENV_FILE}, "
                "or export them for an external S3."
            )
        endpoint = settings.setting("S3_ENDPOINT") or state.get("endpoint") or ""
        return cls(endpoint=endpoint, access_key=access_key, secret_key=secret_key)

    @classmethod
    def for_identity(cls, identity: str) -> S3:
        """The S3 service as one stage's identity (a key of settings.S3_IDENTITIES), with its generated keys."""
        access_name, secret_name = settings.s3_key_names(identity)
        access_key, secret_key = settings.setting(access_name), settings.setting(secret_name)
        if not access_key or not secret_key:
            raise RuntimeError(
                f"{access_name} / {secret_name} are not set: run `make setup` to generate them into {settings.ENV_FILE}, "
                "or export the keys of that identity on your S3"
            )
        return cls(endpoint=cls.endpoint_from_settings(), access_key=access_key, secret_key=secret_key)

    @staticmethod
    def endpoint_from_settings() -> str:
        return settings.setting("S3_ENDPOINT") or settings.services_state().get("s3", {}).get("endpoint") or ""

    def env(self) -> dict[str, str]:
        return {"S3_ENDPOINT": self.endpoint, "S3_ACCESS_KEY": self.access_key, "S3_SECRET_KEY": self.secret_key}
