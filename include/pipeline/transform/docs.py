"""dbt docs kept with the run's artifacts: `.local/artifacts/<run_id>/dbt_docs/`.

Cosmos's DbtDocsLocalOperator runs `dbt docs generate` in a temporary copy of the project and then
calls `keep_docs` with that copy's path; the files are copied before the copy is deleted. A later
publish step (the lake) uploads this folder.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from include.pipeline import settings

DOCS_FILES = ("index.html", "manifest.json", "catalog.json", "run_results.json")


def artifacts_dir(run_id: str) -> Path:
    """Where the artifacts of one DAG run live (the run id made safe as a folder name)."""
    return settings.LOCAL_DIR / "artifacts" / re.sub(r"[^A-Za-z0-9_.+-]", "_", run_id)


def keep_docs(project_dir: str, context: dict | None = None, **_: object) -> Path:
    """Copy the generated docs out of `project_dir`/target; return the folder written."""
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
    print(f"dbt docs kept in {out}")
    return out


BUILD_FILES = ("run_results.json", "manifest.json")


def keep_build_artifacts(project_dir: str, context: dict | None = None, **_: object) -> Path | None:
    """Cosmos `callback` of the transform's `dbt build`: keep its run_results.json and manifest.json
    in .local/artifacts/<run_id>/dbt_build/ (the publish step uploads them and reads the invocation id)."""
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
    return out
