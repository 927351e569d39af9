"""`make dashboard` in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

Serves dashboard/app.py through the same entry point as `make dashboard` against the session's
end-to-end stack, then checks that every chart panel drew its marks, every stat and table panel
rendered, no panel failed, and the last run summary names the run.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from include.pipeline.observe import dashboards
from include.pipeline.services import find_free_port
from tests.support import REPO_ROOT
from tests.support.http import request

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


@pytest.fixture
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
    charts = sum(p.panel in ("timeseries", "barchart") for p in items)
    tables = sum(p.panel == "table" for p in items)
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
