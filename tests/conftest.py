"""Registers the suite's fixtures (tests/support): a real Postgres and S3 (the same embedded
servers the stack uses) on 127.0.0.1, whole stacks, dbt, the fake Airbyte API, metrics.

Helpers are imported from tests.support, never from a conftest.
"""

pytest_plugins = [
    "tests.support.postgres",
    "tests.support.s3",
    "tests.support.stack",
    "tests.support.dbt",
    "tests.support.airbyte",
    "tests.support.metrics",
]
