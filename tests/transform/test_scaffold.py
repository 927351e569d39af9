"""`make scaffold-source`: a source's dbt staging layer written from connections.yaml, which lints,
builds, dedupes, quarantines and merges incrementally; and the shipped project follows the same
layout for every source the declaration lands in the warehouse."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from psycopg2 import sql

from include.pipeline import settings
from include.pipeline.cli import main as cli
from include.pipeline.ingest.declaration import load_connections
from include.pipeline.transform import lint, scaffold
from tests.support.dbt import Dbt
from tests.support.declarations import write_with_source
from tests.support.postgres import new_database


def test_every_declared_warehouse_stream_has_its_staging_model_and_quarantine(manifest):
    """Derived from connections.yaml: a user's source without its staging layer fails here, naming
    the command that writes it."""
    streams = scaffold.warehouse_streams(load_connections())
    assert streams
    readers: dict[str, set[str]] = {}
    for node in manifest["nodes"].values():
        for dep in node["depends_on"]["nodes"]:
            readers.setdefault(dep, set()).add(node["name"])
    for s in streams:
        source_id = f"source.ecommerce.{s.source}.{s.name}"
        assert source_id in manifest["sources"], (
            f"{s.source}.{s.name}: no dbt source (make scaffold-source SOURCE={s.source})"
        )
        models = readers.get(source_id, set()) - {
            n for n in readers.get(source_id, set()) if n.startswith(("source_", "not_null_"))
        }
        assert models == {s.model, f"stg_{s.source}__quarantined_records"}, (source_id, models)


def test_scaffold_refuses_an_unknown_source_and_a_source_with_no_warehouse_connection(tmp_path, capsys):
    assert cli(["scaffold-source", "--source", "nope"]) == 2
    declared = ", ".join(sorted(load_connections().sources))
    assert f"no source named 'nope' (declared: {declared})" in capsys.readouterr().err
    config = load_connections()
    lake_only = config.model_copy(
        update={"connections": tuple(c for c in config.connections if c.destination.type != "postgres")}
    )
    with pytest.raises(scaffold.ScaffoldError, match="no connection lands source 'shop' in a Postgres destination"):
        scaffold.plan(lake_only, "shop")


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory, postgres_server):
    """A copy of the dbt project with the returns_desk source scaffolded, its raw tables filled with
    the cases below, built twice (the second build incremental, after a day's extractions)."""
    root = tmp_path_factory.mktemp("scaffold")
    (root / "include").mkdir()
    shutil.copytree(settings.DBT_PROJECT_DIR, root / "include" / "dbt", ignore=shutil.ignore_patterns("target", "logs"))
    shutil.copy(settings.REPO_ROOT / ".sqlfluff", root)
    declaration = write_with_source(root)
    out: dict = {"root": root}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(settings, "DBT_PROJECT_DIR", root / "include" / "dbt")
        out["runs"] = [
            cli_output(["scaffold-source", "--source", "returns_desk", "--file", str(declaration)]) for _ in range(2)
        ]
        mp.setattr(settings, "REPO_ROOT", root)  # sqlfluff runs in the copy
        out["lint"] = lint.main(["include/dbt/models/staging/returns_desk"])

    target = new_database(postgres_server)
    conn = target.connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("create schema raw")
        for s in scaffold.warehouse_streams(load_connections(declaration)):
            cur.execute(scaffold.raw_table_sql(s))
        insert(cur, "refunds", [
            # key 1 twice: the later extraction wins; key 4 flagged by the loader; one without a key
            ({"refund_id": 1, "amount": 5, "reason": "old"}, "01:00", []),
            ({"refund_id": 1, "amount": 7.5, "reason": "late", "paid": True, "details": {"by": "desk"}}, "02:00", []),
            ({"refund_id": 2, "order_id": 20, "amount": 1}, "02:00", []),
            ({"refund_id": 4, "amount": None}, "02:00", [{"field": "amount", "change": "NULLED", "reason": "DESTINATION_TYPECAST_ERROR"}]),
            ({"refund_id": None, "amount": 3}, "02:00", []),
        ])  # fmt: skip
        insert(cur, "refund_lines", [
            ({"refund_id": 1, "order": 1, "sku": "a", "note": "x"}, "02:00", []),
            ({"refund_id": 1, "order": 2, "sku": "b"}, "02:00", []),
            ({"refund_id": 2, "order": 1, "sku": "c"}, "02:00", []),
            ({"refund_id": 2, "order": None, "sku": "d"}, "02:00", []),
        ])  # fmt: skip
        insert(cur, "refund_notes", [({"note": "n1"}, "02:00", []), ({"note": "n1"}, "02:00", [])])
    dbt = Dbt(target, root / "work", root / "include" / "dbt")
    select = ["--select", "path:models/staging/returns_desk"]
    out["build_1"] = dbt("build", *select, check=False)
    out["day_1"] = state(conn)
    with conn.cursor() as cur:  # the next day: key 2 changes, key 1's newest extraction is flagged, a new line
        insert(cur, "refunds", [
            ({"refund_id": 2, "order_id": 20, "amount": 2}, "day2", []),
            ({"refund_id": 1, "amount": None}, "day2", [{"field": "amount", "change": "NULLED", "reason": "DESTINATION_TYPECAST_ERROR"}]),
        ])  # fmt: skip
        insert(cur, "refund_lines", [({"refund_id": 3, "order": 1, "sku": "e"}, "day2", [])])
        insert(cur, "refund_notes", [({"note": "n2"}, "day2", [])])
    out["build_2"] = dbt("build", *select, check=False)
    out["day_2"] = state(conn)
    conn.close()
    return out


def cli_output(argv: list[str]) -> str:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert cli(argv) == 0
    return buffer.getvalue()


_raw_ids = iter(range(1, 1_000_000))


def insert(cur, stream: str, rows: list[tuple[dict, str, list]]) -> None:
    """Raw rows as the loader lands them: the record's columns, a raw id, the extraction time, meta."""
    for record, at, changes in rows:
        extracted = "2026-01-02 " + at if at != "day2" else "2026-01-03 02:00"
        values = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in record.items()}
        columns = [*values, "_airbyte_raw_id", "_airbyte_extracted_at", "_airbyte_meta"]
        statement = sql.SQL("insert into raw.{} ({}) values ({})").format(
            sql.Identifier(stream),
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        )
        meta = json.dumps({"changes": changes})
        cur.execute(statement, [*values.values(), f"raw-{next(_raw_ids):04d}", extracted, meta])


def state(conn) -> dict:
    with conn.cursor() as cur:
        out = {}
        cur.execute("select refund_id, amount, reason, paid, details from staging.stg_returns_desk__refunds order by 1")
        out["refunds"] = cur.fetchall()
        cur.execute("select refund_id, order_key, sku, note from staging.stg_returns_desk__refund_lines order by 1, 2")
        out["lines"] = cur.fetchall()
        cur.execute("select note from staging.stg_returns_desk__refund_notes order by 1")
        out["notes"] = [n for (n,) in cur.fetchall()]
        cur.execute(
            "select source_name, stream_name, record_key, problem from staging.stg_returns_desk__quarantined_records"
            " order by 2, 3 nulls last"
        )
        out["quarantine"] = cur.fetchall()
        return out


def test_scaffold_writes_each_file_once_and_never_overwrites(scaffolded):
    first, second = scaffolded["runs"]
    folder = "include/dbt/models/staging/returns_desk"
    root = scaffolded["root"]
    written = sorted(
        str(Path(line.split()[1]).relative_to(root)) for line in first.splitlines() if line.startswith("wrote")
    )
    assert written == sorted(
        f"{folder}/{name}" for name in (
            "_returns_desk__sources.yml", "_returns_desk__models.yml", "stg_returns_desk__refunds.sql",
            "stg_returns_desk__refund_lines.sql", "stg_returns_desk__refund_notes.sql",
            "stg_returns_desk__quarantined_records.sql",
        )
    )  # fmt: skip
    assert "returns_desk: 6 file(s) written, 0 skipped" in first
    assert "returns_desk: 0 file(s) written, 6 skipped" in second


def test_the_scaffolded_models_pass_the_projects_sql_lint(scaffolded):
    assert scaffolded["lint"] == 0


def test_the_scaffolded_models_build_with_their_tests(scaffolded):
    for build in ("build_1", "build_2"):
        proc = scaffolded[build]
        assert proc.returncode == 0, proc.stdout[-6000:]
        assert "ERROR=0" in proc.stdout and "PASS=" in proc.stdout
    # the keyless records warn at the source (they are in the quarantine), the run goes on
    assert "WARN=2" in scaffolded["build_1"].stdout


def test_staging_keeps_the_latest_clean_record_per_key_typed_as_declared(scaffolded):
    day_1 = scaffolded["day_1"]
    assert [(r[0], float(r[1]), r[2], r[3], r[4]) for r in day_1["refunds"]] == [
        (1, 7.5, "late", True, {"by": "desk"}), (2, 1.0, None, None, None),
    ]  # fmt: skip
    assert day_1["lines"] == [(1, 1, "a", "x"), (1, 2, "b", None), (2, 1, "c", None)]
    assert day_1["notes"] == ["n1", "n1"], "a stream without a key keeps every record"


def test_flagged_and_keyless_records_are_quarantined_whatever_the_key(scaffolded):
    assert scaffolded["day_1"]["quarantine"] == [
        ("returns_desk", "refund_lines", None, "missing_primary_key"),  # compound key: `order` missing
        ("returns_desk", "refunds", "4", "airbyte_changes"),
        ("returns_desk", "refunds", None, "missing_primary_key"),
    ]


def test_the_incremental_build_merges_changes_and_moves_newly_flagged_keys_to_quarantine(scaffolded):
    day_2 = scaffolded["day_2"]
    assert [(r[0], float(r[1])) for r in day_2["refunds"]] == [(2, 2.0)]
    assert ("returns_desk", "refunds", "1", "airbyte_changes") in day_2["quarantine"]
    assert day_2["lines"][-1] == (3, 1, "e", None) and len(day_2["lines"]) == 4
    assert day_2["notes"] == ["n1", "n1", "n2"]
