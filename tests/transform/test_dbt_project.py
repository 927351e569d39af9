"""The dbt project's shape, from its manifest: keys tested in every layer, contracts on every mart,
unit tests for the tricky logic, sources only in staging, freshness on raw."""

from __future__ import annotations

import pytest

from include.pipeline.ingest.declaration import load_connections
from include.pipeline.transform import scaffold

LAYERS = ("staging", "intermediate", "marts")


def models(manifest: dict, layer: str | None = None) -> list[dict]:
    return [
        n for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and (layer is None or n["fqn"][1] == layer)
    ]  # fmt: skip


def column_tests(manifest: dict, node_id: str) -> dict[str, set[str]]:
    """{column: {generic test names}} of the data tests attached to `node_id`."""
    out: dict[str, set[str]] = {}
    for n in manifest["nodes"].values():
        if n["resource_type"] == "test" and n.get("attached_node") == node_id and n.get("test_metadata"):
            out.setdefault(n.get("column_name") or "", set()).add(n["test_metadata"]["name"])
    return out


def test_every_layer_has_models(manifest):
    """Staging: a model per stream connections.yaml lands in the warehouse and a quarantine per
    source (stg_<source>__<stream>, as `make scaffold-source` writes them); the shop's own
    intermediate model and marts are there (a user's marts may follow)."""
    names = {layer: sorted(n["name"] for n in models(manifest, layer)) for layer in LAYERS}
    streams = scaffold.warehouse_streams(load_connections())
    expected = {s.model for s in streams} | {f"stg_{s.source}__quarantined_records" for s in streams}
    assert names["staging"] == sorted(expected)
    assert "int_purchases_enriched" in names["intermediate"]
    assert {"customers", "daily_revenue", "monthly_cohort_retention", "orders", "products"} <= set(names["marts"])


def enforced(node: dict) -> dict[str, set[str]]:
    """{column: {constraint types}} the database enforces on `node` (an enforced contract's
    column constraints; Postgres enforces not_null and primary_key), {} without a contract."""
    if not node["config"].get("contract", {}).get("enforced"):
        return {}
    return {name: {c["type"] for c in col.get("constraints", [])} for name, col in node["columns"].items()}


def unique_indexes(node: dict) -> list[tuple[str, ...]]:
    """The column lists of `node`'s unique indexes (its `indexes` config): Postgres refuses a
    duplicate as it is written."""
    return [tuple(i["columns"]) for i in node["config"].get("indexes") or [] if i.get("unique")]


def keys(manifest: dict, node: dict) -> list[tuple[str, ...]]:
    """`node`'s keys held unique and not null, by data tests or by the database: a column tested
    unique (or with a unique index) and not_null, a primary-key constraint of an enforced contract
    (on a column, or the model's on several), columns tested together by unique_combination_of_columns (or with a unique index on them) and
    each not_null."""
    tests = column_tests(manifest, node["unique_id"])
    not_null = {c for c, names in tests.items() if "not_null" in names}
    not_null |= {c for c, types in enforced(node).items() if types & {"not_null", "primary_key"}}
    unique = {(c,) for c, names in tests.items() if "unique" in names} | set(unique_indexes(node))
    found = [u for u in unique if set(u) <= not_null]
    found += [(c,) for c, types in enforced(node).items() if "primary_key" in types]
    if node["config"].get("contract", {}).get("enforced"):  # a model-level (compound) primary key
        found += [tuple(c["columns"]) for c in node.get("constraints") or [] if c["type"] == "primary_key"]
    if "unique_combination_of_columns" in tests.get("", set()):
        found.append(("<tested combination>",))
    return found


@pytest.mark.parametrize("layer", LAYERS)
def test_every_model_has_a_primary_key_tested_or_enforced(manifest, layer):
    """Unique and not null: by data tests, or by the database (a unique index, or a primary-key
    constraint of an enforced contract, which every keyed mart has)."""
    for node in models(manifest, layer):
        tests = column_tests(manifest, node["unique_id"])
        assert keys(manifest, node), f"{node['name']}: no key held unique and not null ({tests})"


def test_the_snapshot_keeps_one_current_row_per_customer(manifest):
    snapshot = manifest["nodes"]["snapshot.ecommerce.customers_snapshot"]
    assert snapshot["config"]["strategy"] == "check" and snapshot["config"]["unique_key"] == "customer_id"
    tests = column_tests(manifest, snapshot["unique_id"])
    assert ("dbt_scd_id",) in keys(manifest, snapshot)  # its unique index, and not_null
    assert "one_current_row_per_key" in tests["customer_id"]


def test_every_mart_enforces_a_contract_with_typed_described_columns(manifest):
    for node in models(manifest, "marts"):
        assert node["config"]["contract"]["enforced"], node["name"]
        assert node["columns"], node["name"]
        for name, column in node["columns"].items():
            assert column.get("data_type"), f"{node['name']}.{name} has no data_type"
            assert column.get("description"), f"{node['name']}.{name} has no description"


def test_orders_is_incremental_replacing_by_order_id(manifest):
    """`by_key` (macros/incremental_by_key.sql): the day's keys deleted through the key's index, then
    inserted, as a merge on the key would leave them."""
    orders = manifest["nodes"]["model.ecommerce.orders"]["config"]
    assert (orders["materialized"], orders["unique_key"], orders["incremental_strategy"]) == (
        "incremental", "order_id", "by_key",
    )  # fmt: skip
    assert orders["on_schema_change"] == "fail"


def test_the_intermediate_model_and_the_marts_over_it_recompute_only_what_a_day_changed(manifest):
    """Issue 27: int_purchases_enriched and every model reading it are incremental, each reading
    the day's changed keys from int_purchase_changes (a table of the day's changes, itself rebuilt
    each run); the guard that they equal a full rebuild is test_dbt_incremental. (A mart of the
    user's own source, not reading it, may stay a table.) A work table (meta `work_table`, such as
    int_touched_purchases: the day's slice the customer-level marts read) is a table rebuilt each
    run from the day's changes, not a history to keep."""
    changes, enriched = "model.ecommerce.int_purchase_changes", "model.ecommerce.int_purchases_enriched"
    assert manifest["nodes"][changes]["config"]["materialized"] == "table"
    over = [n for n in models(manifest) if n["unique_id"] == enriched or enriched in n["depends_on"]["nodes"]]
    assert enriched in {n["unique_id"] for n in over} and any(n["fqn"][1] == "marts" for n in over)
    work = [n for n in over if n["config"].get("meta", {}).get("work_table")]
    for node in work:
        assert node["config"]["materialized"] == "table", node["name"]
        assert changes in node["depends_on"]["nodes"], node["name"]
    for node in (n for n in over if n not in work):
        assert node["config"]["materialized"] == "incremental", node["name"]
        assert node["config"]["on_schema_change"] == "fail", node["name"]
        assert changes in node["depends_on"]["nodes"], node["name"]


def test_orders_has_a_primary_key_constraint_like_the_other_keyed_marts(manifest):
    for name in ("orders", "customers", "products", "daily_revenue"):
        node = manifest["nodes"][f"model.ecommerce.{name}"]
        keyed = [
            c
            for c, col in node["columns"].items()
            if any(c["type"] == "primary_key" for c in col.get("constraints", []))
        ]
        assert len(keyed) == 1, f"{name}: {keyed}"


def test_staging_dedupes_once_into_incremental_tables_indexed_on_their_key(manifest):
    """Plan-stable staging (issue 8): deduped once, by one macro (latest_clean_records over
    latest_extraction), into tables whose rows of the day's keys are replaced (strategy `by_key`,
    a merge on the primary key), indexed on it and on extracted_at (the incremental cutoff)."""
    keys = {  # the shop's models rename their keys; a scaffolded model keeps the declared names
        "stg_shop__users": "customer_id",
        "stg_shop__products": "product_id",
        "stg_shop__purchases": "purchase_id",
    }
    for stream in scaffold.warehouse_streams(load_connections()):
        name = stream.model
        node = manifest["nodes"][f"model.ecommerce.{name}"]
        config = node["config"]
        key = keys.get(name) or list(stream.model_key)
        key = key[0] if isinstance(key, list) and len(key) == 1 else key
        assert (config["materialized"], config["unique_key"], config["incremental_strategy"]) == (
            "incremental", key, "by_key",
        ), name  # fmt: skip
        indexes = [(tuple(i["columns"]), bool(i.get("unique"))) for i in config["indexes"]]
        unique = (key,) if isinstance(key, str) else tuple(key)
        assert (unique, True) in indexes and (("extracted_at",), False) in indexes, name
        assert "macro.ecommerce.latest_clean_records" in node["depends_on"]["macros"], name
        for copy in ("row_number", "distinct on", "record_problem"):  # the dedupe lives in the macro only
            assert copy not in node["raw_code"], f"{name} carries its own dedupe ({copy!r})"
    for node in manifest["nodes"].values():
        if node["resource_type"] == "model":
            assert node["config"]["materialized"] in ("table", "incremental"), node["name"]
            assert any("analyze" in h["sql"] for h in node["config"]["post-hook"]), node["name"]


def test_unit_tests_cover_the_status_segment_and_cohort_logic(manifest):
    tested = {u["depends_on"]["nodes"][0].split(".")[-1] for u in manifest["unit_tests"].values()}
    assert {"int_purchases_enriched", "monthly_cohort_retention", "customers"} <= tested


def test_relationships_and_accepted_values_are_declared(manifest):
    names = [n["test_metadata"]["name"] for n in manifest["nodes"].values() if n.get("test_metadata")]
    assert names.count("relationships") >= 4
    assert names.count("accepted_values") >= 4
    assert {"accepted_range", "not_before", "unique_combination_of_columns", "one_current_row_per_key"} <= set(names)


def test_only_staging_models_read_sources(manifest):
    for node in models(manifest):
        reads_source = any(d.startswith("source.") for d in node["depends_on"]["nodes"])
        assert reads_source == (node["fqn"][1] == "staging"), node["name"]


def test_sources_have_freshness_on_the_extraction_time_and_described_columns(manifest):
    sources = manifest["sources"].values()
    declared = scaffold.warehouse_streams(load_connections())
    assert {(s["source_name"], s["name"]) for s in sources} == {(s.source, s.name) for s in declared}
    for source in sources:
        assert source["loaded_at_field"] == "_airbyte_extracted_at"
        assert source["freshness"]["warn_after"]["count"] and source["freshness"]["error_after"]["count"]
        assert all(c.get("description") for c in source["columns"].values()), source["name"]
