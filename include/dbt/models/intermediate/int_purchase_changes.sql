{#-
    The purchases a daily build must recompute, each with the keys it had before the build
    (`state` 'before': its row in int_purchases_enriched as it stands, with its status and
    amounts, which daily_revenue subtracts) and after it ('after': its staged record), plus the customers and products whose record changed (purchase_id null). The
    incremental models downstream recompute only these keys: a purchase moved to another customer
    or day changes both the old and the new customer's, day's and cohort's figures.

    A purchase changes when its record, its product or its customer was extracted since the
    newest extraction int_purchases_enriched holds (`>=`: a record landing with that same time
    stamp is read again, never missed), or when its key left staging for the quarantine.

    It runs before int_purchases_enriched (which refs it), so it reads that table by name, as the
    last build left it. With no such table yet (a first build), every staged key is a change; on
    `--full-refresh` nothing is (every model downstream is rebuilt whole). Its comment says which
    of these this build computed, and the dbt invocation (macro purchase_changes_mark): a daily
    build's data tests read only the rows these keys touch (macro get_where_subquery).
-#}
{{ config(
    materialized='table',
    indexes=[{'columns': ['purchase_id']}],
    post_hook="{{ purchase_changes_mark() }}",
) }}

{%- set enriched = adapter.get_relation(this.database, this.schema, 'int_purchases_enriched') if execute else none %}
{#- a literal (macro newest_extraction): read through staging's extracted_at indexes -#}
{%- set since = "'-infinity'::timestamp" if enriched is none else newest_extraction(enriched) %}

with

customers as (
    select * from {{ ref('stg_shop__users') }}
),

products as (
    select * from {{ ref('stg_shop__products') }}
),

quarantined as (
    select * from {{ ref('stg_shop__quarantined_records') }}
),

-- keys whose newest extraction was quarantined since: they left staging
left_staging as (
    select
        quarantined.stream_name,
        quarantined.record_key::bigint as record_key
    from quarantined
    where
        quarantined.extracted_at >= {{ since }}
        and quarantined.record_key ~ '^[0-9]+$'
),

changed_customers as (
    select customers.customer_id from customers
    where customers.extracted_at >= {{ since }}
    union
    select left_staging.record_key as customer_id from left_staging
    where left_staging.stream_name = 'users'
),

changed_products as (
    select products.product_id from products
    where products.extracted_at >= {{ since }}
    union
    select left_staging.record_key as product_id from left_staging
    where left_staging.stream_name = 'products'
),

-- staging's purchases read where they are used, not through a CTE: a CTE read several times is
-- materialized, and every read of it scans all its rows (no index).
-- unions and semi-joins, not `or ... in (subquery)`: an `or` keeps Postgres from a hash join, and
-- past work_mem it probes the subquery once per purchase (quadratic)
changed_purchases as (
    select purchases.purchase_id from {{ ref('stg_shop__purchases') }} as purchases
    where purchases.extracted_at >= {{ since }}
    union
    select purchases.purchase_id from {{ ref('stg_shop__purchases') }} as purchases
    where {{ among_keys(
        'purchases.customer_id', 'select changed_customers.customer_id from changed_customers', enriched
    ) }}
    union
    select purchases.purchase_id from {{ ref('stg_shop__purchases') }} as purchases
    where purchases.product_id in (select changed_products.product_id from changed_products)
),

after_build as (
    select
        purchase_id,
        customer_id,
        product_id,
        (purchased_at at time zone 'UTC')::date as order_date
    from {{ ref('stg_shop__purchases') }}
    where {{ among_keys('purchase_id', 'select changed_purchases.purchase_id from changed_purchases', enriched) }}
),

before_build as (
    {% if enriched is none %}
        select
            purchase_id,
            customer_id,
            product_id,
            order_date,
            null::varchar as order_status,
            null::numeric(14, 2) as gross_amount,
            null::numeric(14, 2) as refund_amount,
            null::numeric(14, 2) as net_amount
        from after_build
        where false
    {% else %}
        select
            purchase_id,
            customer_id,
            product_id,
            order_date,
            order_status,
            gross_amount,
            refund_amount,
            net_amount
        from {{ enriched }}
        where purchase_id = any(array(
            select changed_purchases.purchase_id from changed_purchases
            union
            select left_staging.record_key from left_staging
            where left_staging.stream_name = 'purchases'
        ))
    {% endif %}
),

final as (
    select
        purchase_id,
        customer_id,
        product_id,
        order_date,
        null::varchar as order_status,
        null::numeric(14, 2) as gross_amount,
        null::numeric(14, 2) as refund_amount,
        null::numeric(14, 2) as net_amount,
        'after'::varchar as state
    from after_build
    union all
    select
        purchase_id,
        customer_id,
        product_id,
        order_date,
        order_status,
        gross_amount,
        refund_amount,
        net_amount,
        'before'::varchar as state
    from before_build
    union all
    select
        null::bigint as purchase_id,
        customer_id,
        null::bigint as product_id,
        null::date as order_date,
        null::varchar as order_status,
        null::numeric(14, 2) as gross_amount,
        null::numeric(14, 2) as refund_amount,
        null::numeric(14, 2) as net_amount,
        'after'::varchar as state
    from changed_customers
    union all
    select
        null::bigint as purchase_id,
        null::bigint as customer_id,
        product_id,
        null::date as order_date,
        null::varchar as order_status,
        null::numeric(14, 2) as gross_amount,
        null::numeric(14, 2) as refund_amount,
        null::numeric(14, 2) as net_amount,
        'after'::varchar as state
    from changed_products
)

select * from final
{% if flags.FULL_REFRESH %}
    where false
{% endif %}
