"""Grafana provisioning as code: parses, points at one datasource, and matches include/sql exactly.

Grafana cannot run here; the queries themselves run in test_metrics_e2e.py on a Postgres filled
by an end-to-end run.
"""

from __future__ import annotations

import json
import re

import yaml

from include.pipeline.observe import dashboards

PROVISIONING = dashboards.GRAFANA_DIR.parent


def test_the_datasource_is_postgres_with_every_value_from_the_environment():
    doc = yaml.safe_load((PROVISIONING / "datasources" / "metrics.yaml").read_text())
    (source,) = doc["datasources"]
    assert source["uid"] == dashboards.DATASOURCE_UID and source["type"] == dashboards.DATASOURCE["type"]
    for value in (source["url"], source["user"], source["jsonData"]["database"], source["secureJsonData"]["password"]):
        assert re.fullmatch(r"(\$\{METRICS_[A-Z_]+\}:?)+", value), f"{value!r}: no host, user or password in git"
    # Grafana only reads: the read-only role, never the metrics writer's (issue 11)
    assert source["user"] == "${METRICS_READER_USER}"
    assert source["secureJsonData"]["password"] == "${METRICS_READER_PASSWORD}"


def test_the_dashboard_provider_loads_the_generated_json_folder():
    doc = yaml.safe_load((PROVISIONING / "dashboards" / "stack.yaml").read_text())
    (provider,) = doc["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == "/etc/grafana/provisioning/dashboards"


def test_committed_dashboard_json_is_exactly_what_the_queries_generate():
    assert dashboards.main(["--check"]) == 0, "run `make dashboards-json` and commit the result"


def test_every_panel_runs_a_query_file_verbatim_and_every_query_file_has_a_panel():
    files = {
        p.path.relative_to(dashboards.QUERIES_DIR).as_posix(): p
        for items in dashboards.panels().values()
        for p in items
    }
    seen = set()
    for path in sorted(dashboards.GRAFANA_DIR.glob("*.json")):
        doc = json.loads(path.read_text())
        assert doc["uid"].startswith("stack-") and doc["panels"], path
        uids = set()
        for panel in doc["panels"]:
            source = panel["description"].removeprefix("Query: include/sql/dashboards/")
            assert source in files, f"{path.name}: panel {panel['title']!r} names no query file"
            (target,) = panel["targets"]
            assert target["rawSql"] == files[source].sql
            assert target["datasource"]["uid"] == panel["datasource"]["uid"] == dashboards.DATASOURCE_UID
            assert panel["type"] == files[source].panel
            uids.add(panel["id"])
            seen.add(source)
        assert len(uids) == len(doc["panels"]), f"{path.name}: panel ids are unique"
    assert seen == set(files), "every query file is on a dashboard"
    assert set(dashboards.TITLES) == {f.split("/")[0] for f in files}, "the five dashboards of the issue"


def test_a_query_file_without_its_header_is_refused_with_its_name(tmp_path):
    bad = tmp_path / "x.sql"
    bad.write_text("select 1\n")
    try:
        dashboards.load_panel(bad)
    except dashboards.QueryFileError as exc:
        assert "x.sql:1: missing the `-- title: ...` header line" in str(exc)
    else:
        raise AssertionError("a query file without a title must be refused")


def test_grafana_panels_never_stack_say_what_empty_means_and_show_labels_not_column_names():
    from include.pipeline.observe.labels import label

    for path in sorted(dashboards.GRAFANA_DIR.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            where = f"{path.name}: {panel['title']}"
            assert panel["fieldConfig"]["defaults"]["noValue"], where
            if panel["type"] == "timeseries":
                assert panel["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"] == "none", where
            renames = [t["options"]["renameByName"] for t in panel["transformations"] if t["id"] == "organize"]
            for renamed in renames:
                assert all(new == label(old) and "_" not in new for old, new in renamed.items()), where
    failures = dashboards.load_panel(dashboards.QUERIES_DIR / "pipeline_health" / "04_failures_by_task.sql")
    assert failures.empty == "no failed tries in 30 days"


def test_a_query_s_output_columns_are_read_off_its_last_select_list():
    sql = (
        "with a as (\n    select x as hidden\n    from t\n)\n\nselect\n    a.task_id,\n    case\n"
        "        when true then 'y'\n    end as what,\n    round(p::numeric, 2) as p50_seconds\nfrom a"
    )
    assert dashboards.output_columns(sql) == ["task_id", "what", "p50_seconds"]
