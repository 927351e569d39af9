{#-
    What daily_revenue and monthly_cohort_retention recompute a day from: every purchase, as
    int_purchases_enriched holds it after the build, of each customer int_purchase_changes lists
    (its profile changed, or one of its purchases did, before or after the change), and each
    purchase it lists. A narrow table both marts scan, read here once: each of them used to read
    the same purchases through int_purchases_enriched's customer_id index on its own, and at 10M
    orders a day's ~1.4M purchases of ~1M customers lie on nearly every page of a table larger
    than Postgres's shared buffers (docs/benchmarks.md). `customers` reads its own through the
    index: it starts as soon as int_purchases_enriched is built, while this table is being made,
    instead of after it (the day's longest chain of models at 10M).

    Empty unless int_purchase_changes is an increment (macro purchase_changes_mark): a first
    build and --full-refresh build the marts whole from int_purchases_enriched.
-#}
{#- a bitmap scan, not an index scan (`set local`: this build's transaction only): Postgres takes
    `= any(array(...))` for a few values and would read the ~1.1M purchases of a 10M-order day in
    the index's customer order, a heap page at random for each; a bitmap reads their pages once,
    in the table's order (10M: 6.5 -> 4.9 s). -#}
{{ config(
    materialized='table',
    indexes=[{'columns': ['purchase_id'], 'unique': true}],
    pre_hook="set local enable_indexscan = off",
) }}

{%- set changes = ref('int_purchase_changes') %}
{%- set increment = false %}
{%- if execute and adapter.get_relation(changes.database, changes.schema, changes.identifier) is not none %}
    {%- set mark = run_query("select obj_description('" ~ changes ~ "'::regclass, 'pg_class')").columns[0].values()[0] %}
    {%- set increment = (mark or '').startswith('increment of') %}
{%- endif %}

{#- a changed purchase's customer now is in int_purchase_changes (its 'after' row): its other
    purchases are read with the customer's; those with no customer, by purchase_id. Both reads
    `= any(array(...))`: Postgres estimates a few values and probes the index. `is_changed`: the
    purchase is one int_purchase_changes lists (what the marts add now and subtract as it was;
    the others were there before the build as they are), found by one hash join here, not by a
    probe per purchase in each mart. -#}
with

changed as (
    select distinct changes.purchase_id from {{ changes }} as changes
    where changes.purchase_id is not null
)

select
    purchases.purchase_id,
    purchases.customer_id,
    purchases.order_date,
    purchases.purchased_at,
    purchases.order_status,
    purchases.gross_amount,
    purchases.refund_amount,
    purchases.net_amount,
    changed.purchase_id is not null as is_changed
from {{ ref('int_purchases_enriched') }} as purchases
left join changed on purchases.purchase_id = changed.purchase_id
where
    {% if increment -%}
        purchases.customer_id = any(array(
            select distinct changes.customer_id from {{ changes }} as changes
            where changes.customer_id is not null
        ))
    {%- else -%}
        false
    {%- endif %}
union all
select
    purchase_id,
    customer_id,
    order_date,
    purchased_at,
    order_status,
    gross_amount,
    refund_amount,
    net_amount,
    true as is_changed
from {{ ref('int_purchases_enriched') }}
where
    customer_id is null
    {% if increment -%}
        and purchase_id = any(array(
            select changes.purchase_id from {{ changes }} as changes
            where changes.state = 'after' and changes.customer_id is null and changes.purchase_id is not null
        ))
    {%- else -%}
        and false
    {%- endif %}
