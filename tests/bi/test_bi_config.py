"""`make bi` without starting Superset: the lock, the secrets, the config, the assets' integrity and
the compose profile `bi` (the containers cannot be built here in a test's time: tests/compose)."""

from __future__ import annotations

import os
import re
import runpy
import stat

import pytest
import yaml

from include.bi import run
from include.pipeline.settings import read_env_file
from tests.support import REPO_ROOT

ASSETS = REPO_ROOT / "include" / "bi" / "assets"


def _docs(folder: str) -> dict[str, dict]:
    return {p.relative_to(ASSETS).as_posix(): yaml.safe_load(p.read_text()) for p in (ASSETS / folder).rglob("*.yaml")}


def test_the_lock_pins_superset_6_1_and_the_compose_image_is_the_same_version():
    pins = dict(re.findall(r"^([a-z0-9-]+)==(\S+)", run.LOCK.read_text(), re.M))
    assert pins["apache-superset"] == "6.1.0"
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yaml").read_text())["services"]["superset"]
    assert compose["image"].endswith(f"apache/superset:{pins['apache-superset']}}}")
    assert compose["profiles"] == ["bi"]
    assert all(p.startswith("127.0.0.1:") for p in compose["ports"]), compose["ports"]
    assert "./include/bi:/opt/bi:ro" in compose["volumes"]
    assert compose["environment"]["SUPERSET_CONFIG_PATH"] == "/opt/bi/superset_config.py"
    assert compose["environment"]["BI_WAREHOUSE_USER"] == "warehouse_reader"


def test_secrets_are_generated_into_env_once_private_and_never_defaulted(tmp_path, monkeypatch):
    for key in run.SECRETS:
        monkeypatch.delenv(key, raising=False)
    env = tmp_path / ".env"
    env.write_text("WAREHOUSE_PASSWORD=kept\n")
    assert run.ensure_secrets(env) == list(run.SECRETS)
    first = read_env_file(env)
    assert first["WAREHOUSE_PASSWORD"] == "kept" and all(len(first[k]) >= 32 for k in run.SECRETS)
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert run.ensure_secrets(env) == [] and read_env_file(env) == first
    # Superset's config has no fallback: without the key it refuses to load
    monkeypatch.setenv("SUPERSET_HOME", str(tmp_path))
    with pytest.raises(KeyError, match="SUPERSET_SECRET_KEY"):
        runpy.run_path(str(run.CONFIG))
    monkeypatch.setenv("SUPERSET_SECRET_KEY", first["SUPERSET_SECRET_KEY"])
    config = runpy.run_path(str(run.CONFIG))
    assert config["SECRET_KEY"] == first["SUPERSET_SECRET_KEY"]
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/superset.db?check_same_thread=false"
    policy = config["TALISMAN_CONFIG"]["content_security_policy"]
    assert all("http" not in str(v) for v in policy.values()), "the page may load nothing from another host"
    assert config["PUBLIC_ROLE_LIKE"] is None


def test_the_server_binds_127_0_0_1_only():
    command = run.server_command(8123)
    assert command[command.index("--bind") + 1] == "127.0.0.1:8123"


def test_the_assets_hold_one_password_free_database_and_charts_that_resolve():
    (database,) = _docs("databases").values()
    assert "XXXXXXXXXX" in database["sqlalchemy_uri"] and "//warehouse_reader:" in database["sqlalchemy_uri"]
    datasets = _docs("datasets")
    assert {d["schema"] for d in datasets.values()} <= {"marts", "metrics"}
    assert {d["database_uuid"] for d in datasets.values()} == {database["uuid"]}
    charts = _docs("charts")
    dataset_uuids = {d["uuid"] for d in datasets.values()}
    for name, chart in charts.items():
        assert chart["dataset_uuid"] in dataset_uuids, name
        stem = name.removeprefix("charts/").removesuffix(".yaml")
        assert (REPO_ROOT / "include" / "bi" / "sql" / f"{stem}.sql").exists(), f"{name}: the SQL it stands for"
        columns = {
            c["column_name"] for d in datasets.values() if d["uuid"] == chart["dataset_uuid"] for c in d["columns"]
        }
        used = set(chart["params"].get("groupby", [])) | (
            {chart["params"]["x_axis"]} if "x_axis" in chart["params"] else set()
        )
        assert used <= columns, f"{name}: {sorted(used - columns)} is no column of its dataset"
    dashboards = {d["dashboard_title"]: d for d in _docs("dashboards").values()}
    assert set(dashboards) == {"Shop", "Pipeline"}
    chart_uuids = {c["uuid"] for c in charts.values()}
    for title, dashboard in dashboards.items():
        placed = {
            v["meta"]["uuid"]
            for v in dashboard["position"].values()
            if isinstance(v, dict) and v.get("type") == "CHART"
        }
        assert len(placed) >= 3 and placed <= chart_uuids, title


def test_make_password_prints_the_superset_login_too():
    makefile = (REPO_ROOT / "Makefile").read_text()
    recipe = makefile[makefile.index("\npassword:") : makefile.index("\ntest:")]
    assert "SUPERSET_ADMIN_PASSWORD" in recipe
    assert os.path.basename(str(run.VENV)) == ".venv-superset"
