{#-
    Sales by product.

    Incremental, by difference (as daily_revenue): a daily build does not regroup every purchase.
    Each purchase int_purchase_changes lists counts -1 for the product it had before the build,
    with its status and amounts then (state 'before'), and +1 for its product now (its row in
    int_purchases_enriched, if it is still there); the sums are added to the table's figures of
    the products the day touched, whose make, model, year and price are read again from staging.
    A product whose own record changed (new, re-priced, quarantined or back from the quarantine:
    int_purchase_changes lists it, and then every one of its purchases) is summed from its
    purchases now, not from the table's row: a product back from the quarantine has no row there
    while its purchases stayed in int_purchases_enriched. A touched product that left staging is
    deleted (post-hook), as a full build would not have it. Counts and sums are exact: the result
    equals a full build's (tests/transform/test_dbt_incremental.py).
-#}
{{
    config(
        materialized='incremental',
        unique_key='product_id',
        incremental_strategy='merge',
        on_schema_change='fail',
        post_hook="{% if is_incremental() %}
            delete from {{ this }}
            where product_id = any(array(
                select changes.product_id from {{ ref('int_purchase_changes') }} as changes
                where changes.product_id is not null and not exists (
                    select from {{ ref('stg_shop__products') }} as products
                    where products.product_id = changes.product_id
                )
            ))
        {% endif %}",
    )
}}

-- depends_on: {{ ref('int_purchase_changes') }}

with

{% if is_incremental() %}

    -- listed: the product's own record changed, so every one of its purchases is listed
    changed_products as (
        select
            changes.product_id,
            bool_or(changes.purchase_id is null) as listed
        from {{ ref('int_purchase_changes') }} as changes
        where changes.product_id is not null
        group by changes.product_id
    ),

    products as (
        select * from {{ ref('stg_shop__products') }}
        where product_id in (select changed_products.product_id from changed_products)
    ),

    purchases_now as (
        select
            product_id,
            order_status,
            gross_amount,
            refund_amount,
            net_amount
        from {{ ref('int_purchases_enriched') }}
        where purchase_id = any(array(  -- through the purchase_id index, one probe per key
            select changes.purchase_id from {{ ref('int_purchase_changes') }} as changes
            where changes.purchase_id is not null
        ))
    ),

    contributions as (
        select
            1 as sign,
            product_id,
            order_status,
            gross_amount,
            refund_amount,
            net_amount
        from purchases_now
        where product_id is not null
        union all
        select
            -1 as sign,
            changes.product_id,
            changes.order_status,
            changes.gross_amount,
            changes.refund_amount,
            changes.net_amount
        from {{ ref('int_purchase_changes') }} as changes
        inner join changed_products
            on changes.product_id = changed_products.product_id and not changed_products.listed
        where changes.state = 'before'
    ),

    sales_changes as (
        select
            product_id,
            coalesce(sum(sign) filter (where order_status in ('purchased', 'returned')), 0) as units_sold,
            coalesce(sum(sign) filter (where order_status = 'returned'), 0) as units_returned,
            sum(sign * gross_amount) as gross_revenue,
            sum(sign * refund_amount) as refunded_amount,
            sum(sign * net_amount) as net_revenue
        from contributions
        group by product_id
    ),

    sales as (
        select
            changed_products.product_id,
            coalesce(held.units_sold, 0) + coalesce(sales_changes.units_sold, 0) as units_sold,
            coalesce(held.units_returned, 0) + coalesce(sales_changes.units_returned, 0) as units_returned,
            coalesce(held.gross_revenue, 0) + coalesce(sales_changes.gross_revenue, 0) as gross_revenue,
            coalesce(held.refunded_amount, 0) + coalesce(sales_changes.refunded_amount, 0) as refunded_amount,
            coalesce(held.net_revenue, 0) + coalesce(sales_changes.net_revenue, 0) as net_revenue
        from changed_products
        left join {{ this }} as held
            on changed_products.product_id = held.product_id and not changed_products.listed
        left join sales_changes on changed_products.product_id = sales_changes.product_id
    ),

{% else %}

    products as (
        select * from {{ ref('stg_shop__products') }}
    ),

    sales as (
        select
            product_id,
            count(*) filter (where order_status in ('purchased', 'returned')) as units_sold,
            count(*) filter (where order_status = 'returned') as units_returned,
            sum(gross_amount) as gross_revenue,
            sum(refund_amount) as refunded_amount,
            sum(net_amount) as net_revenue
        from {{ ref('int_purchases_enriched') }}
        group by product_id
    ),

{% endif %}

final as (
    select
        products.product_id,
        products.make,
        products.model_name,
        products.model_year,
        products.price,
        coalesce(sales.units_sold, 0)::bigint as units_sold,
        coalesce(sales.units_returned, 0)::bigint as units_returned,
        coalesce(sales.gross_revenue, 0)::numeric(14, 2) as gross_revenue,
        coalesce(sales.refunded_amount, 0)::numeric(14, 2) as refunded_amount,
        coalesce(sales.net_revenue, 0)::numeric(14, 2) as net_revenue,
        (sales.units_returned::numeric / nullif(sales.units_sold, 0))::numeric(6, 4) as return_rate
    from products
    left join sales on products.product_id = sales.product_id
)

select * from final
