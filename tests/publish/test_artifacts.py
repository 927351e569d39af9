"""The run's dbt artifacts reach publish_artifacts through the lake, wherever each task runs: the
producer's callbacks on one "worker" (its own .local), publish on another with an empty .local,
against the session's real S3 (SeaweedFS). The Celery side of the same: tests/compose."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from include.pipeline import settings
from include.pipeline.publish import artifacts, tasks
from include.pipeline.transform import docs

RUN_ID = "scheduled__2026-01-03T00:00:00+00:00"


@pytest.fixture
def lake_env(s3_server, monkeypatch):
    """A bucket of its own as the lake, the `lake` connection's client pointed at the real S3."""
    monkeypatch.setenv("LAKE_BUCKET", f"lake-{uuid.uuid4().hex[:10]}")
    monkeypatch.setattr(tasks, "lake_client", s3_server.client)
    return s3_server.client()


def dbt_target(root: Path, invocation_id: str) -> Path:
    """A dbt project copy as Cosmos leaves it after `dbt build` and `dbt docs generate`."""
    target = root / "target"
    target.mkdir(parents=True)
    (target / "run_results.json").write_text(json.dumps({"metadata": {"invocation_id": invocation_id}}))
    for name in ("manifest.json", "catalog.json"):
        (target / name).write_text("{}")
    (target / "index.html").write_text("<html>docs</html>")
    return root


def test_artifacts_made_on_one_worker_are_published_from_another(lake_env, tmp_path, monkeypatch):
    dag = SimpleNamespace(dag_id=f"dag_{uuid.uuid4().hex[:6]}")
    context = {"run_id": RUN_ID, "dag": dag}
    project = dbt_target(tmp_path / "project", "inv-42")

    monkeypatch.setattr(settings, "LOCAL_DIR", tmp_path / "worker-a")  # the producer's worker
    docs.keep_build_artifacts(str(project), context)
    docs.keep_docs(str(project), context)
    assert (tmp_path / "worker-a" / "artifacts").is_dir()

    monkeypatch.setattr(settings, "LOCAL_DIR", tmp_path / "worker-b")  # publish's: nothing local
    assert tasks._invocation_id(dag.dag_id, RUN_ID) == "inv-42"  # publish_mart, from the staged build
    result = tasks.publish_artifacts.function(run_id=RUN_ID, dag=dag)

    prefix = artifacts.final_prefix(dag.dag_id, RUN_ID)
    assert result == {"prefix": prefix, "files": 6}
    bucket = settings.setting("LAKE_BUCKET")
    published = {o.object_name for o in lake_env.list_objects(bucket, prefix=prefix, recursive=True)}
    assert {prefix + "dbt_build/run_results.json", prefix + "dbt_docs/index.html"} <= published, published
    staged = list(lake_env.list_objects(bucket, prefix=artifacts.STAGING + "/", recursive=True))
    assert staged == []  # moved, not copied
    assert tasks._invocation_id(dag.dag_id, RUN_ID) == "inv-42"  # a retried publish_mart: from the published
    # a retry of publish_artifacts after the move finds them published
    assert tasks.publish_artifacts.function(run_id=RUN_ID, dag=dag) == result
    assert not (tmp_path / "worker-b" / "artifacts").exists()


def test_publish_artifacts_names_the_staging_prefix_when_nothing_was_staged(lake_env, tmp_path, monkeypatch):
    monkeypatch.setattr(settings, "LOCAL_DIR", tmp_path)
    lake_env.make_bucket(settings.setting("LAKE_BUCKET"))
    dag = SimpleNamespace(dag_id="no_artifacts")
    with pytest.raises(
        FileNotFoundError, match=r"artifacts/_staging/no_artifacts/scheduled__2026-01-03T00_00_00\+00_00/"
    ):
        tasks.publish_artifacts.function(run_id=RUN_ID, dag=dag)


def test_a_lake_that_refuses_does_not_fail_the_dbt_build(tmp_path, monkeypatch, capsys):
    """Staging is the callbacks' second job: dbt's work stands, the warning names where it failed."""

    def refusing():
        raise PermissionError("AccessDenied")

    monkeypatch.setattr(tasks, "lake_client", refusing)
    monkeypatch.setattr(settings, "LOCAL_DIR", tmp_path / "local")
    out = docs.keep_build_artifacts(str(dbt_target(tmp_path / "project", "inv-1")), {"run_id": "r1"})
    assert (out / "run_results.json").exists()
    assert "could not stage" in capsys.readouterr().out


def test_publish_reads_the_build_that_made_the_mart_from_its_table_comment(warehouse, sql):
    """publish.<mart> runs once its mart and tests passed, before the build ends and writes its
    run_results.json: the invocation id comes from the comment the marts' post-hook writes."""
    project = (settings.DBT_PROJECT_DIR / "dbt_project.yml").read_text()
    assert tasks.INVOCATION_COMMENT in project, "every mart's post-hook writes the comment publish reads"
    sql('create schema "Marts"; create table "Marts"."my mart" (id int); create table "Marts".plain (id int)')
    sql(f"""comment on table "Marts"."my mart" is '{tasks.INVOCATION_COMMENT}inv-7'""")
    sql("""comment on table "Marts".plain is 'a description of its own'""")
    conn = warehouse.connect()
    try:
        assert tasks._built_by(conn, "Marts", "my mart") == "inv-7"
        assert tasks._built_by(conn, "Marts", "plain") is None  # another comment: not an invocation
        assert tasks._built_by(conn, "Marts", "missing") is None
    finally:
        conn.close()
