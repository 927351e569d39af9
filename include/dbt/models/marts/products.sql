{#-
    Incremental: a daily build deletes and recomputes only the products int_purchase_changes lists
    (re-priced, or one of their purchases changed, before or after the change).
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{% if is_incremental() %}
            delete from {{ this }}
            where product_id = any(array(select product_id from {{ ref('int_purchase_changes') }} where product_id is not null))
        {% endif %}",
    )
}}

-- depends_on: {{ ref('int_purchase_changes') }}

with

products as (
    select * from {{ ref('stg_shop__products') }}
    {% if is_incremental() %}
        where product_id in (select changes.product_id from {{ ref('int_purchase_changes') }} as changes)
    {% endif %}
),

purchases as (
    select * from {{ ref('int_purchases_enriched') }}
    {% if is_incremental() %}
        where product_id in (select changes.product_id from {{ ref('int_purchase_changes') }} as changes)
    {% endif %}
),

sales as (
    select
        product_id,
        count(*) filter (where order_status in ('purchased', 'returned')) as units_sold,
        count(*) filter (where order_status = 'returned') as units_returned,
        sum(gross_amount) as gross_revenue,
        sum(refund_amount) as refunded_amount,
        sum(net_amount) as net_revenue
    from purchases
    group by product_id
),

final as (
    select
        products.product_id,
        products.make,
        products.model_name,
        products.model_year,
        products.price,
        coalesce(sales.units_sold, 0) as units_sold,
        coalesce(sales.units_returned, 0) as units_returned,
        coalesce(sales.gross_revenue, 0)::numeric(14, 2) as gross_revenue,
        coalesce(sales.refunded_amount, 0)::numeric(14, 2) as refunded_amount,
        coalesce(sales.net_revenue, 0)::numeric(14, 2) as net_revenue,
        (sales.units_returned::numeric / nullif(sales.units_sold, 0))::numeric(6, 4) as return_rate
    from products
    left join sales on products.product_id = sales.product_id
)

select * from final
