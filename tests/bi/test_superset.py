"""`make bi` for real: Superset from .venv-superset over the session's end-to-end stack, its
dashboards imported from include/bi/assets. One Superset start for the module (tests/bi/conftest.py).
"""

from __future__ import annotations

import datetime as dt
import decimal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import psycopg2
import pytest
import yaml
from psycopg2 import sql

from include.pipeline.settings import ROLES, read_env_file, role_password_key
from tests.support import REPO_ROOT

pytestmark = pytest.mark.e2e

ASSETS = REPO_ROOT / "include" / "bi" / "assets"
CHART_SQL = REPO_ROOT / "include" / "bi" / "sql"
CHROMIUM = Path("/usr/bin/chromium")


def chart_files() -> dict[str, dict]:
    return {p.stem: yaml.safe_load(p.read_text()) for p in sorted((ASSETS / "charts").glob("*.yaml"))}


def _cell(value):
    """A value as the chart data API writes it: times as epoch milliseconds, numbers as floats."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if isinstance(value, dt.datetime):
        value = value.timestamp() * 1000
    if isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool):
        return float(f"{float(value):.12g}")  # 12 significant digits: float sums differ in the last bits
    return value


def _rows(rows) -> list[tuple]:
    return sorted((tuple(_cell(v) for v in row) for row in rows), key=repr)


def api_charts(superset) -> dict[str, int]:
    status, body = superset.request("/api/v1/chart/?q=(columns:!(id,uuid,slice_name),page_size:100)")
    assert status == 200, body
    return {r["uuid"]: r["id"] for r in body["result"]}


def chart_data(superset, chart_id: int) -> tuple[int, dict]:
    return superset.request(f"/api/v1/chart/{chart_id}/data/?force=true")


def test_superset_answers_health_on_127_0_0_1_only_and_refuses_anonymous_calls(superset):
    port = int(superset.env["BI_PORT"])
    listening = {
        c.laddr.ip for c in psutil.net_connections(kind="tcp") if c.status == "LISTEN" and c.laddr.port == port
    }
    assert listening == {"127.0.0.1"}, listening
    for path in ("/api/v1/chart/", "/api/v1/dashboard/", "/api/v1/database/", "/api/v1/chart/1/data/"):
        status, _ = superset.request(path, anonymous=True)
        assert status == 401, f"anonymous GET {path}: {status}"


def test_every_chart_s_data_api_answers_the_rows_of_the_sql_it_stands_for(superset, stack):
    ids = api_charts(superset)
    files = chart_files()
    assert len(files) >= 3 and set(ids) >= {c["uuid"] for c in files.values()}
    for stem, chart in files.items():
        expected = stack.sql((CHART_SQL / f"{stem}.sql").read_text())
        assert expected, f"{stem}: its SQL returns rows after a demo run"
        status, body = chart_data(superset, ids[chart["uuid"]])
        assert status == 200, f"{stem}: {status} {body}"
        (result,) = body["result"]
        shown = [tuple(row[c] for c in result["colnames"]) for row in result["data"]]
        assert _rows(shown) == _rows(expected), f"{stem}: the chart's rows differ from include/bi/sql/{stem}.sql"


def test_the_shop_and_pipeline_dashboards_hold_their_charts(superset):
    status, body = superset.request("/api/v1/dashboard/?q=(page_size:100)")
    assert status == 200, body
    titles = {d["dashboard_title"]: d["id"] for d in body["result"]}
    assert {"Shop", "Pipeline"} <= set(titles)
    for title, dashboard_id in titles.items():
        status, charts = superset.request(f"/api/v1/dashboard/{dashboard_id}/charts")
        assert status == 200 and len(charts["result"]) >= 3, f"{title}: {charts}"


def test_the_warehouse_login_reads_marts_and_metrics_only_and_is_no_superuser(superset, stack):
    status, body = superset.request("/api/v1/database/")
    assert status == 200, body
    (listed,) = body["result"]
    status, body = superset.request(f"/api/v1/database/{listed['id']}/connection")
    assert status == 200, body
    assert "//warehouse_reader:" in body["result"]["sqlalchemy_uri"], body
    wh = stack.warehouse()
    password = read_env_file(stack.root / ".env")[role_password_key("reader")]
    conn = psycopg2.connect(host=wh.host, port=wh.port, user=ROLES["reader"], password=password, dbname=wh.database)
    try:
        with conn.cursor() as cur:
            cur.execute("select rolsuper, rolcreaterole, rolcreatedb from pg_roles where rolname = current_user")
            assert cur.fetchone() == (False, False, False)
            cur.execute("select count(*) from marts.daily_revenue")
            assert cur.fetchone()[0] > 0
            cur.execute("select table_name from information_schema.tables where table_schema = 'raw' limit 1")
            raw = cur.fetchone()
        table = raw[0] if raw else stack.sql("select tablename from pg_tables where schemaname = 'raw' limit 1")[0][0]
        with conn.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute(sql.SQL("select 1 from raw.{} limit 1").format(sql.Identifier(table)))
    finally:
        conn.close()


def test_a_mart_column_renamed_without_updating_its_chart_fails_the_chart_s_data_api(superset, stack):
    """What the rows test above would report, shown on the real thing: the column a chart reads is
    renamed in the warehouse (committed, as a dbt change would), and the chart's data API errs."""
    files = chart_files()
    stem, chart = next((s, c) for s, c in files.items() if c["params"].get("x_axis") == "order_date")
    chart_id = api_charts(superset)[chart["uuid"]]
    stack.sql("alter table marts.daily_revenue rename column net_revenue to net_revenue_renamed")
    try:
        status, body = chart_data(superset, chart_id)
    finally:
        stack.sql("alter table marts.daily_revenue rename column net_revenue_renamed to net_revenue")
    assert status >= 400, f"{stem}: a renamed column must fail its chart, got {status} {str(body)[:300]}"
    assert "net_revenue" in str(body), body
    assert chart_data(superset, chart_id)[0] == 200


def test_datasets_in_the_repo_name_only_columns_the_warehouse_has(stack):
    """The static half: a mart column renamed in dbt without updating include/bi/assets fails here."""
    for path in sorted((ASSETS / "datasets").rglob("*.yaml")):
        dataset = yaml.safe_load(path.read_text())
        columns = {
            name
            for (name,) in stack.sql(
                "select column_name from information_schema.columns where table_schema = %s and table_name = %s",
                (dataset["schema"], dataset["table_name"]),
            )
        }
        assert dataset["schema"] in ("marts", "metrics"), f"{path.name}: marts and metrics only"
        missing = {c["column_name"] for c in dataset["columns"]} - columns
        assert not missing, (
            f"{path.relative_to(REPO_ROOT)}: {sorted(missing)} not in {dataset['schema']}.{dataset['table_name']}"
        )


def test_a_second_import_changes_nothing(superset):
    before = api_charts(superset)
    status, body = superset.request("/api/v1/dashboard/?q=(page_size:100)")
    dashboards_before = sorted(d["id"] for d in body["result"])
    proc = subprocess.run(
        [str(REPO_ROOT / ".venv-superset" / "bin" / "python"), str(REPO_ROOT / "include" / "bi" / "prepare.py")],
        env=superset.env | {"SUPERSET_SECRET_KEY": read_env_file(superset.stack.root / ".env")["SUPERSET_SECRET_KEY"],
                            "SUPERSET_ADMIN_PASSWORD": superset.password, **_bi_env(superset)},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert api_charts(superset) == before
    status, body = superset.request("/api/v1/dashboard/?q=(page_size:100)")
    assert sorted(d["id"] for d in body["result"]) == dashboards_before


def _bi_env(superset) -> dict[str, str]:
    """The environment include/bi/run.py gives Superset's processes, for this stack."""
    code = "import json, sys; from include.bi import run; print(json.dumps(run.superset_env(int(sys.argv[1]))))"
    out = subprocess.run(
        [sys.executable, "-c", code, superset.env["BI_PORT"]], cwd=REPO_ROOT, env=superset.env,
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    import json

    return json.loads(out)


def test_the_shop_dashboard_renders_its_charts_in_chromium_and_calls_nothing_outside(superset):
    assert CHROMIUM.exists(), "Debian's chromium is missing: apt-get install -y chromium (.ci/run does it)"
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    outside, answered = [], []
    started = time.monotonic()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )  # fmt: skip
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1400})
            local = (superset.url, "data:", "blob:")
            # Superset's menu holds a tracking pixel (scarf.sh): the page's CSP ('self' only) must stop it
            page.on("requestfailed", lambda r: None if r.url.startswith(local) else outside.append((r.url, r.failure)))
            page.on("response", lambda r: None if r.url.startswith(local) else answered.append(r.url))
            for attempt in range(3):  # the login page is a React app: a submit before it is ready is lost
                page.goto(f"{superset.url}/login/", wait_until="networkidle")
                page.fill("input[name=username], #username", "admin")
                page.fill("input[name=password], #password", superset.password)
                page.keyboard.press("Enter")
                try:
                    page.wait_for_url(lambda u: "/login" not in u, timeout=30_000)
                    break
                except PlaywrightTimeout:
                    assert attempt < 2, f"admin could not log in through the page: {page.url}"
            for slug in ("shop", "pipeline"):
                page.goto(f"{superset.url}/superset/dashboard/{slug}/")
                page.wait_for_function(
                    "() => document.querySelectorAll('.chart-container canvas, .chart-container table, .chart-container svg').length >= 4",
                    timeout=120_000,
                )
                page.wait_for_timeout(1500)
                errors = page.locator(".ant-alert-error, [data-test='chart-error']").all_inner_texts()
                page.screenshot(path=str(superset.stack.root / f"superset-{slug}.png"), full_page=True)
                assert errors == [], f"{slug}: {errors}"
        finally:
            browser.close()
    print(f"superset dashboards rendered in {time.monotonic() - started:.1f} s")
    assert answered == [], f"the page called out of the machine: {answered[:5]}"
    # nor did the server: every connection of Superset's processes stays on this machine
    server = psutil.Process(superset.proc.pid)
    remote = {
        c.raddr.ip
        for p in [server, *server.children(recursive=True)]
        for c in p.net_connections(kind="inet")
        if c.raddr
    }
    assert remote <= {"127.0.0.1", "::1"}, remote
    assert all("csp" in (failure or "").lower() for _, failure in outside), outside[:5]
