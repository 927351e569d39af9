"""dbt docs and the build's artifacts kept with the run: `.local/artifacts/<run_id>/<kind>/`, and
staged in the lake for publish_artifacts (include/pipeline/publish/artifacts.py).

Cosmos runs dbt in a temporary copy of the project and then calls these callbacks with that copy's
path; the files are copied before the copy is deleted. The local copy is for a look on the machine
that ran dbt; the staged one reaches publish_artifacts on whichever worker it runs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from include.pipeline import settings
from include.pipeline.publish.artifacts import artifacts_dir
from include.pipeline.transform.docs_site import latest_docs_dir

DOCS_FILES = ("index.html", "manifest.json", "catalog.json", "run_results.json")


def stage(folder: Path, context: dict | None, kind: str) -> None:
    """Stage `folder` in the lake (the `lake` connection) for publish_artifacts. A failure is
    printed, not raised: dbt's work stands, and publish_artifacts then names what is missing."""
    from include.pipeline.publish import artifacts
    from include.pipeline.publish.tasks import lake_client

    context = context or {}
    dag = context.get("dag")
    dag_id, run_id = (dag.dag_id if dag else "dag"), str(context.get("run_id") or "manual")
    try:
        keys = artifacts.stage(lake_client(), folder, dag_id, run_id, kind)
    except Exception as exc:  # noqa: BLE001 - the lake down or refusing: said, and publish_artifacts fails on it
        print(f"WARNING: could not stage {folder} at {artifacts.staging_prefix(dag_id, run_id)}{kind}: {exc}")
        return
    print(f"{len(keys)} files staged at {artifacts.staging_prefix(dag_id, run_id)}{kind}/ in the lake")


def keep_docs(project_dir: str, context: dict | None = None, **_: object) -> Path:
    """Copy the generated docs out of `project_dir`/target (to the run's artifacts, and as the
    latest site the web UI serves); return the run's folder."""
    run_id = (context or {}).get("run_id") or "manual"
    target = Path(project_dir) / "target"
    missing = [name for name in DOCS_FILES[:3] if not (target / name).exists()]
    if missing:
        raise FileNotFoundError(f"dbt docs generate left no {', '.join(missing)} in {target}")
    out = artifacts_dir(str(run_id)) / "dbt_docs"
    out.mkdir(parents=True, exist_ok=True)
    for name in DOCS_FILES:
        if (target / name).exists():
            shutil.copy2(target / name, out / name)
    latest = latest_docs_dir(settings.LOCAL_DIR)
    latest.mkdir(parents=True, exist_ok=True)
    for name in DOCS_FILES:
        if (out / name).exists():
            shutil.copy2(out / name, latest / name)
    print(f"dbt docs kept in {out} and {latest} (the web UI's Browse > dbt Docs)")
    stage(out, context, "dbt_docs")
    return out


BUILD_FILES = ("run_results.json", "manifest.json")


def keep_build_artifacts(project_dir: str, context: dict | None = None, **_: object) -> Path | None:
    """Cosmos `callback` of the transform's `dbt build`: keep its run_results.json and manifest.json
    in .local/artifacts/<run_id>/dbt_build/ and stage them (publish reads the invocation id there)."""
    run_id = (context or {}).get("run_id") or "manual"
    target = Path(project_dir) / "target"
    present = [name for name in BUILD_FILES if (target / name).exists()]
    if not present:
        print(f"no dbt build artifacts in {target} to keep")
        return None
    out = artifacts_dir(str(run_id)) / "dbt_build"
    out.mkdir(parents=True, exist_ok=True)
    for name in present:
        shutil.copy2(target / name, out / name)
    print(f"dbt build artifacts ({', '.join(present)}) kept in {out}")
    stage(out, context, "dbt_build")
    return out
