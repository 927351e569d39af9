"""`make dashboard` in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

Serves dashboard/app.py through the same entry point as `make dashboard` against the session's
end-to-end stack, then checks that every chart panel drew its marks, every stat and table panel
rendered, no panel failed, and the last run summary names the run; and that the figures shown are
the ones the panels' SQL returns, written for people (labels, integers, no `None`), p50 beside p95.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from include.pipeline.observe import dashboards, display
from include.pipeline.observe.labels import label
from include.pipeline.services import find_free_port
from tests.support import REPO_ROOT
from tests.support.http import request

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


@pytest.fixture(scope="module")
def dashboard_url(stack):
    port = find_free_port()
    env = {**stack.env, "DASHBOARD_PORT": str(port)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "include.pipeline.observe.serve"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            if request(f"{url}/_stcore/health", timeout=2).body == "ok":
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read() if proc.poll() is not None else ""
                raise AssertionError(f"`make dashboard` did not come up on {url}:\n{out[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_the_dashboard_renders_every_chart_in_headless_chromium(dashboard_url, stack):
    assert CHROMIUM.exists(), "Debian's chromium is missing: apt-get install -y chromium (.ci/run does it)"
    from playwright.sync_api import sync_playwright

    items = [p for group in dashboards.panels().values() for p in group]
    # a panel whose query returns no row says so instead of drawing: only the others are looked for
    drawn_panels = [p for p in items if stack.sql(f"select exists ({p.sql})")[0][0]]
    charts = sum(p.panel in ("timeseries", "barchart") for p in drawn_panels)
    tables = sum(p.panel == "table" for p in drawn_panels)
    started = time.monotonic()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(dashboard_url, wait_until="domcontentloaded")
            page.wait_for_function(
                "n => document.querySelectorAll('[data-testid=\"stVegaLiteChart\"] svg').length >= n",
                arg=charts, timeout=90_000,
            )  # fmt: skip
            # Streamlit draws panels as their queries return: charts can be done while the tables
            # are still loading, so wait for every table and stat as well as every chart.
            page.wait_for_function(
                "n => document.querySelectorAll('[data-testid=\"stDataFrame\"]').length >= n"
                " && document.querySelectorAll('[data-testid=\"stMetric\"]').length >= 2",
                arg=tables, timeout=90_000,
            )  # fmt: skip
            page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=60_000)
            drawn = page.eval_on_selector_all(
                '[data-testid="stVegaLiteChart"]',
                "els => els.map(e => Array.from(e.querySelectorAll('g[class*=\"role-mark\"]'))"
                ".reduce((n, g) => n + g.children.length, 0))",
            )
            failures = page.locator('[data-testid="stException"], [data-testid="stAlert"]').all_inner_texts()
            text = page.locator("body").inner_text()
            rendered_tables = page.locator('[data-testid="stDataFrame"]').count()
            stats = page.locator('[data-testid="stMetric"]').count()
        finally:
            browser.close()
    print(
        f"dashboard: {len(drawn)} charts with {drawn} marks, {rendered_tables} tables, {stats} stats in {time.monotonic() - started:.1f} s"
    )
    assert failures == [], failures
    assert len(drawn) == charts and all(n > 0 for n in drawn), f"every chart drew marks: {drawn}"
    assert rendered_tables == tables
    assert stats >= 2
    # the summary names the newest run recorded, whichever it is (other e2e tests run DAGs on this stack)
    [(dag_id, run_id, state)] = stack.sql(
        "select dag_id, run_id, state from metrics.dag_runs order by coalesce(end_date, updated_at) desc limit 1"
    )
    assert "Last run" in text and dag_id in text and run_id in text and state in text, text[:2000]
    for name in ("Pipeline health", "Business KPIs"):
        assert name in text


def _panel_rows(stack, panel: dashboards.Panel):
    import pandas as pd

    rows = stack.sql(panel.sql)
    return display.chartable(pd.DataFrame(rows, columns=panel.columns))


def _bar(path: str) -> tuple[float, float]:
    """(x, height) of a Vega bar mark drawn as `M x,y h w v h h -w Z`."""
    x, _y, _w, height = map(float, re.match(r"M([-\d.]+),([-\d.]+)h([-\d.]+)v([-\d.]+)", path).groups())
    return x, height


def test_the_dashboard_shows_the_figures_its_sql_returns(dashboard_url, stack):
    from playwright.sync_api import sync_playwright

    items = [p for name in ("pipeline_health", "business", "ingestion", "dbt", "freshness", "lake")
             for p in dashboards.panels()[name]]  # fmt: skip
    frames = {p.path: _panel_rows(stack, p) for p in items}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(
                viewport={"width": 2560, "height": 7000}
            )  # every panel and column in view (the grid draws only visible columns)
            page.goto(dashboard_url, wait_until="domcontentloaded")
            tables = sum(p.panel == "table" and not frames[p.path].empty for p in items)
            page.wait_for_function(
                "n => document.querySelectorAll('[data-testid=\"stDataFrame\"] table').length >= n",
                arg=tables, timeout=90_000,
            )  # fmt: skip
            page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=60_000)
            text = page.locator("body").inner_text()
            shown_tables = page.eval_on_selector_all(
                '[data-testid="stDataFrame"] table',
                "ts => ts.map(t => Array.from(t.querySelectorAll('tr')).map("
                "r => Array.from(r.querySelectorAll('th, td')).map(c => c.innerText.trim())))",
            )
            metrics = page.eval_on_selector_all(
                '[data-testid="stMetric"]',
                "ms => ms.map(m => [m.querySelector('[data-testid=\"stMetricLabel\"]').innerText.trim(),"
                " m.querySelector('[data-testid=\"stMetricValue\"]').innerText.trim()])",
            )
            marks = page.eval_on_selector_all(
                '[data-testid="stVegaLiteChart"]',
                "cs => cs.map(c => Array.from(c.querySelectorAll('g[class*=\"role-mark\"] > path'))"
                ".map(m => [m.getAttribute('aria-label') || '', m.getAttribute('d') || '']))",
            )
            page.screenshot(path=str(REPO_ROOT / ".local" / "dashboard-figures.png"), full_page=True)
        finally:
            browser.close()

    assert "None" not in text.split(), "a missing value is written as a dash, not None"
    expected_metrics, expected_tables, charts = [], [], []
    for panel in items:
        frame = frames[panel.path]
        assert panel.title in text
        if frame.empty:
            assert f"{panel.empty.capitalize()}." in text, f"{panel.path.name}: says what an empty result means"
        elif panel.panel == "stat":
            expected_metrics += [display.stat(c, frame[c].iloc[0], panel.unit) for c in frame.columns]
        elif panel.panel == "table":
            expected_tables.append((panel, [[label(c) for c in frame.columns], *display.table(frame).values.tolist()]))
        else:
            charts.append((panel, frame))
    assert [tuple(m) for m in metrics] == expected_metrics
    assert len(shown_tables) == len(expected_tables)
    for (panel, expected), shown in zip(expected_tables, shown_tables, strict=True):
        assert shown[0] == expected[0], f"{panel.path.name}: headings for people"
        assert len(shown) > 1 and shown[1:] == expected[1 : len(shown)], f"{panel.path.name}: the SQL's rows"
    assert len(marks) == len(charts)
    for (panel, frame), drawn in zip(charts, marks, strict=True):
        if panel.slug == "02_run_duration_percentiles" and len(frame) == 1:
            # one day: two bars side by side (distinct x), each as tall as its own value
            by_series = {
                series: _bar(d)
                for aria, d in drawn
                for series in ("p50 (s)", "p95 (s)")
                if aria.endswith(f"color: {series}")
            }
            (x50, h50), (x95, h95) = by_series["p50 (s)"], by_series["p95 (s)"]
            p50, p95 = frame["p50_seconds"].iloc[0], frame["p95_seconds"].iloc[0]
            assert x50 != x95, "p50 and p95 side by side, not stacked or overlaid"
            assert abs(h50 / h95 - p50 / p95) < 0.01, (h50, h95, p50, p95)
        if panel.panel == "barchart":
            value = frame.columns[1]
            pattern = re.compile(rf"{re.escape(label(value))}: ([-\d.,]+)")
            drawn_values = sorted(float(pattern.search(aria).group(1).replace(",", "")) for aria, _ in drawn)
            assert drawn_values == pytest.approx(sorted(frame[value].astype(float)), rel=1e-3), panel.path.name
