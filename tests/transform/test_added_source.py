"""A user adds a source of their own, and the tests that used to pin the demo keep passing.

In a private copy of the repository: a second source and its connection appended to
connections.yaml (tests/support/declarations.py), its staging layer written by `make
scaffold-source`, a mart of its own over it and a column from it in an existing mart; then the
checks that pinned the demo's names and counts (the declaration, the dbt project's shape, the
rendered DAG, the staging layout, plan/apply on an Airbyte server, the incremental models) run in
that copy, as a user's `make test` would.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from include.pipeline import settings
from tests.support.declarations import with_source

pytestmark = pytest.mark.integration

# The files whose tests pinned the demo (issue: "5 test files needed edits and 10 platform tests
# still failed"), run in the copy.
CHECKS = [
    "tests/ingest/test_connections.py",
    "tests/transform/test_dbt_project.py",
    "tests/transform/test_cosmos_dag.py",
    "tests/transform/test_scaffold.py::test_every_declared_warehouse_stream_has_its_staging_model_and_quarantine",
    "tests/transform/test_dbt_incremental.py",
    "tests/observe/test_freshness_gate.py",
    "tests/airbyte_server/test_apply.py",
    "tests/airbyte_server/test_apply_replace.py",
    "tests/airbyte_server/test_s3_destination_apply.py",
]

REFUND_TOTALS_SQL = """\
with

refunds as (
    select * from {{ ref('stg_returns_desk__refunds') }}
),

totals as (
    select
        order_id,
        count(*) as refund_count,
        sum(amount) as refunded_amount
    from refunds
    where order_id is not null
    group by order_id
)

select * from totals
"""

WRAPPED = """\
with

mart as (
ORIGINAL
)

select
    mart.*,
    (select count(*) from {{ ref('stg_returns_desk__refunds') }})::bigint as refunds_on_file
from mart
"""

REFUND_TOTALS_YML = """\
version: 2

models:
  - name: refund_totals
    description: Refunds per order, from the returns desk's exports.
    columns:
      - name: order_id
        description: The order refunded (primary key).
        data_type: bigint
        constraints: [{type: not_null}, {type: primary_key}]
      - name: refund_count
        description: Refunds of the order.
        data_type: bigint
      - name: refunded_amount
        description: Amount refunded in dollars.
        data_type: numeric
"""


def copy_repository(dest: Path) -> None:
    """The checkout as it is (tracked files and new ones git does not ignore: a user's own
    models before they are committed) and links to the installed venvs."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=settings.REPO_ROOT, capture_output=True, check=True,
    ).stdout.split(b"\0")  # fmt: skip
    for name in filter(None, (f.decode() for f in files)):
        source = settings.REPO_ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    for venv in settings.REPO_ROOT.glob(".venv*"):
        (dest / venv.name).symlink_to(venv)


def add_mart_column(dest: Path, mart: str = "products") -> None:
    """A mart of the new source's own (`refund_totals`), and a column from it in an existing mart
    (`products.refunds_on_file`), each with its contract: the mart's SQL wrapped, whatever it is,
    and the column appended to its yml."""
    marts = dest / "include" / "dbt" / "models" / "marts"
    (marts / "refund_totals.sql").write_text(REFUND_TOTALS_SQL)
    (marts / "refund_totals.yml").write_text(REFUND_TOTALS_YML)
    model_sql = marts / f"{mart}.sql"
    model_sql.write_text(WRAPPED.replace("ORIGINAL", model_sql.read_text()))
    yml = marts / f"{mart}.yml"
    doc = yaml.safe_load(yml.read_text())
    [model] = [m for m in doc["models"] if m["name"] == mart]
    model["columns"].append({"name": "refunds_on_file", "description": "Refunds on file.", "data_type": "bigint"})
    yml.write_text(yaml.safe_dump(doc, sort_keys=False))


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("added-source") / "repo"
    copy_repository(dest)
    declaration = dest / "include" / "airbyte" / "connections.yaml"
    declaration.write_text(with_source(declaration.read_text()))
    env = {**os.environ, "DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    python = str(dest / ".venv" / "bin" / "python")
    scaffolded = subprocess.run(
        [python, "-m", "include.pipeline.cli", "scaffold-source", "--source", "returns_desk"],
        cwd=dest, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert scaffolded.returncode == 0, scaffolded.stderr
    add_mart_column(dest)
    project = str(dest / "include" / "dbt")
    subprocess.run(
        [str(dest / ".venv" / "bin" / "dbt"), "parse", "--quiet", "--project-dir", project, "--profiles-dir", project],
        cwd=dest, env=env, check=True, timeout=300,
    )  # fmt: skip
    return dest


def test_the_checks_that_pinned_the_demo_pass_with_a_source_of_the_users_own(copy, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "AIRFLOW_CONN_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *CHECKS, "-q", "-p", "no:randomly", "--basetemp", str(tmp_path / "t")],
        cwd=copy, env=env, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    assert passed > 50 and "failed" not in summary and "error" not in summary, summary
