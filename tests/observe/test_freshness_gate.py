"""The freshness gate against the real Postgres fixture: limits from the dbt manifest, a fresh run
passes at once, a stale one waits (reschedule: no slot held) then fails naming the streams and
their lag, in the message, in metrics and in the alert."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from types import SimpleNamespace

import pytest
from airflow.sdk import DAG
from psycopg2 import sql as psql

from include.pipeline.ingest.declaration import load_connections
from include.pipeline.observe import alerts, freshness
from include.pipeline.settings import DBT_MANIFEST
from include.pipeline.transform.scaffold import warehouse_streams
from tests.observe.receivers import SmtpReceiver, WebhookReceiver, connection_env

pytestmark = pytest.mark.integration

# every raw table a connection lands in the warehouse (the shop's, and a user's own sources')
TABLES = tuple(sorted(f"{s.schema}.{s.name}" for s in warehouse_streams(load_connections())))
SHOP = ("raw.products", "raw.purchases", "raw.users")  # the shop_to_warehouse connection's
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def raw(warehouse, sql, metrics_params, monkeypatch):
    """Raw tables of the dbt sources in the test database; the connections the gate reads them
    with (the destination's `warehouse_ingest`, dbt's `warehouse_transform`) point at it."""
    for conn_id in ("WAREHOUSE_INGEST", "WAREHOUSE_TRANSFORM"):
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id}",
            json.dumps({"conn_type": "postgres", "host": warehouse.host, "port": warehouse.port,
                        "login": warehouse.user, "password": warehouse.password, "schema": warehouse.database}),
        )  # fmt: skip
    sql("create schema raw")
    for table in TABLES:
        sql(
            psql.SQL("create table {} (id bigint, _airbyte_extracted_at timestamptz, _airbyte_meta jsonb)").format(
                psql.Identifier(*table.split("."))
            )
        )

    def load(extracted_at: dt.datetime, tables=TABLES):
        for table in tables:
            sql(
                psql.SQL("insert into {} values (1, %s, '{{\"changes\": []}}')").format(
                    psql.Identifier(*table.split("."))
                ),
                (extracted_at,),
            )

    return load


class TI(SimpleNamespace):
    """The task instance a sensor sees: ids, try, the ingest tasks' XComs, the first reschedule."""

    def xcom_pull(self, task_ids, key="return_value"):
        return self.xcoms.get(task_ids)

    def get_first_reschedule_date(self, context):
        return self.first_reschedule


def context(interval_end: dt.datetime, xcoms=None, first_reschedule=None, run_id="scheduled__gate") -> dict:
    ti = TI(dag_id="ecommerce_daily", run_id=run_id, task_id="freshness", try_number=1, map_index=-1,
            xcoms=xcoms or {}, first_reschedule=first_reschedule)  # fmt: skip
    return {"ti": ti, "task_instance": ti, "run_id": run_id, "dag": DAG("ecommerce_daily", schedule=None),
            "data_interval_start": interval_end - dt.timedelta(days=1), "data_interval_end": interval_end}  # fmt: skip


def test_limits_are_the_dbt_sources_thresholds_from_the_manifest():
    manifest = json.loads(DBT_MANIFEST.read_text())
    limits = {lim.table: lim for lim in freshness.source_limits()}
    assert set(limits) == set(TABLES)
    for node in manifest["sources"].values():
        declared = node.get("freshness") or node["config"]["freshness"]
        lim = limits[f"{node['schema']}.{node['identifier']}"]
        unit = freshness.PERIOD_SECONDS[declared["error_after"]["period"]]
        assert lim.error_after == declared["error_after"]["count"] * unit
        assert (
            lim.warn_after
            == declared["warn_after"]["count"] * freshness.PERIOD_SECONDS[declared["warn_after"]["period"]]
        )
        assert lim.loaded_at_field == "_airbyte_extracted_at"


def test_a_missing_manifest_and_a_bad_period_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"dbt manifest .*nothing.json is missing: run `make setup`"):
        freshness.source_limits(tmp_path / "nothing.json")
    bad = json.loads(DBT_MANIFEST.read_text())
    uid = next(iter(bad["sources"]))
    node = bad["sources"][uid]
    (node.get("freshness") or node["config"]["freshness"])["error_after"]["period"] = "fortnight"
    node["freshness"] = node.get("freshness") or node["config"]["freshness"]
    (tmp_path / "m.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=rf"{uid}: freshness period 'fortnight' is not one of minute, hour, day"):
        freshness.source_limits(tmp_path / "m.json")


def test_the_gate_reschedules_and_holds_no_worker_slot_by_default():
    gate = freshness.FreshnessGate()
    assert gate.mode == "reschedule" and gate.task_id == "freshness"
    assert gate.poke_interval == 300 and gate.timeout == 3600


def test_a_fresh_run_passes_the_gate_at_the_first_check(raw, sql):
    raw(NOW - dt.timedelta(minutes=5))
    gate = freshness.FreshnessGate(mode="poke", poke_interval=5, timeout=30)
    started = time.monotonic()
    gate.execute(context(interval_end=NOW - dt.timedelta(hours=1)))
    assert time.monotonic() - started < 5  # no wait: one check
    checks = sql("select table_name, is_stale, synced_this_run from metrics.freshness_checks order by 1")
    assert checks == [(t, False, False) for t in TABLES]
    assert sql("select count(*) from metrics.freshness where not is_stale") == [(len(TABLES),)]


def test_tables_this_runs_sync_reported_are_current_even_with_old_extractions(raw, sql):
    """A sync that found nothing new (products never change) leaves old _airbyte_extracted_at."""
    raw(NOW - dt.timedelta(days=10))
    embedded = {"connection": "shop_to_warehouse", "streams": {"users": {"records": 3}, "products": {"records": 0},
                                                               "purchases": {"records": 0}}}  # fmt: skip
    others = [t for t in TABLES if t not in SHOP]  # a user's own sources: fresh
    raw(NOW - dt.timedelta(minutes=5), tables=others)
    gate = freshness.FreshnessGate(mode="reschedule", poke_interval=60, timeout=600)
    gate.execute(context(NOW, xcoms={"ingest.shop_to_warehouse": embedded}))
    assert sql("select count(*) from metrics.freshness_checks where synced_this_run and not is_stale") == [(3,)]
    # the platform engine reports totals only: every stream of the connection counts as synced
    platform = {"connection": "shop_to_warehouse", "engine": "platform", "status": "succeeded", "streams": {}}
    assert freshness.FreshnessGate().synced_tables(
        context(NOW, xcoms={"ingest.shop_to_warehouse": platform}), freshness.declared_streams()
    ) == set(SHOP)


def test_a_stale_run_waits_then_fails_naming_the_streams_and_their_lag_in_message_metrics_and_alert(
    raw, sql, monkeypatch
):
    """users and purchases were last extracted 72 h before the interval's end (error_after: 50 h)."""
    raw(NOW - dt.timedelta(hours=72), tables=("raw.users", "raw.purchases"))
    raw(NOW - dt.timedelta(minutes=1), tables=[t for t in TABLES if t not in ("raw.users", "raw.purchases")])
    gate = freshness.FreshnessGate(mode="poke", poke_interval=0.5, timeout=2)
    ctx = context(NOW)
    started = time.monotonic()
    with pytest.raises(Exception) as failed:
        gate.execute(ctx)
    waited = time.monotonic() - started
    assert type(failed.value).__name__ == "AirflowSensorTimeout"
    message = str(failed.value)
    assert waited >= 2, waited
    assert message.startswith("stale raw data: 2 stream(s) did not cover the data interval within 2 s: ")
    assert "raw.purchases: newest extraction" in message and "raw.users: newest extraction" in message
    assert "is 72.0 h behind" in message and "limit 50.0 h (error_after of dbt source shop.users)" in message
    assert "raw.products" not in message
    # every check is a row: the wait shows on the dashboard
    checks = sql(
        "select table_name, count(*), bool_and(is_stale), round((max(behind_seconds) / 3600)::numeric, 1)"
        " from metrics.freshness_checks group by 1 order by 1"
    )
    assert [c[0] for c in checks] == list(TABLES)
    n = checks[0][1]
    assert n >= 3 and all(c[1] == n for c in checks)
    by_table = {c[0]: c[2:] for c in checks}
    assert by_table["raw.purchases"] == (True, 72.0) and by_table["raw.users"] == (True, 72.0)
    assert by_table["raw.products"][0] is False
    assert [r for r in sql("select table_name, max_lag_seconds, is_stale from metrics.freshness order by 1") if r[0] in SHOP] == [
        ("raw.products", 50 * 3600.0, False), ("raw.purchases", 50 * 3600.0, True), ("raw.users", 50 * 3600.0, True),
    ]  # fmt: skip

    # the stale-data alert: one message per channel, with the lag
    with SmtpReceiver("alerts", secrets.token_hex(8)) as box, WebhookReceiver() as hook:
        for key, value in connection_env(box, hook, secrets.token_hex(8)).items():
            monkeypatch.setenv(key, value)
        alerts.PipelineNotifier("task_failed")(ctx | {"exception": failed.value})
        assert len(box.messages) == 1 and len(hook.posts) == 1
        assert "raw data stale" in box.messages[0]["subject"]
        post = hook.posts[0]["json"]
        assert post["event"] == "stale_data" and "raw.users: newest extraction" in post["text"]
        assert "72.0 h behind" in post["text"]


def test_a_stale_gate_in_reschedule_mode_asks_to_be_rescheduled_then_times_out_with_the_lag(raw):
    raw(NOW - dt.timedelta(hours=60))
    gate = freshness.FreshnessGate(mode="reschedule", poke_interval=60, timeout=600)
    with pytest.raises(Exception) as waiting:
        gate.execute(context(NOW))
    assert type(waiting.value).__name__ == "AirflowRescheduleException"  # the slot is freed until then
    gate = freshness.FreshnessGate(mode="reschedule", poke_interval=60, timeout=600)
    with pytest.raises(Exception) as timed_out:
        gate.execute(context(NOW, first_reschedule=NOW - dt.timedelta(minutes=11)))
    assert type(timed_out.value).__name__ == "AirflowSensorTimeout"
    assert f"{len(TABLES)} stream(s)" in str(timed_out.value) and "60.0 h behind" in str(timed_out.value)


def test_a_larger_error_after_in_the_manifest_lets_the_same_data_pass(raw, tmp_path):
    """The limit is read from the manifest, not copied: change it there and the verdict follows."""
    raw(NOW - dt.timedelta(hours=72))
    manifest = json.loads(DBT_MANIFEST.read_text())
    for node in manifest["sources"].values():
        node["freshness"] = {"warn_after": {"count": 4, "period": "day"}, "error_after": {"count": 4, "period": "day"}}
        node.get("config", {}).pop("freshness", None)
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    gate = freshness.FreshnessGate(mode="poke", poke_interval=5, timeout=10, manifest_path=tmp_path / "manifest.json")
    gate.execute(context(NOW))  # no timeout: 72 h < 4 days
