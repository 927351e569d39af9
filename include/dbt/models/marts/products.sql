with

products as (
    select * from {{ ref('stg_shop__products') }}
),

purchases as (
    select * from {{ ref('int_purchases_enriched') }}
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
