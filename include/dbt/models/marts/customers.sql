with

customers as (
    select * from {{ ref('stg_faker__users') }}
),

purchases as (
    select * from {{ ref('stg_faker__purchases') }}
),

products as (
    select * from {{ ref('stg_faker__products') }}
),

orders as (
    select
        purchases.customer_id,
        count(*) filter (where purchases.purchased_at is not null) as order_count,
        count(*) filter (where purchases.returned_at is not null) as return_count,
        coalesce(
            sum(products.price) filter (
                where purchases.purchased_at is not null and purchases.returned_at is null
            ),
            0
        ) as lifetime_value,
        min(purchases.purchased_at) as first_order_at,
        max(purchases.purchased_at) as last_order_at
    from purchases
    left join products on purchases.product_id = products.product_id
    group by purchases.customer_id
),

final as (
    select
        customers.customer_id,
        customers.customer_name,
        customers.email,
        customers.country_code,
        coalesce(orders.order_count, 0) as order_count,
        coalesce(orders.return_count, 0) as return_count,
        coalesce(orders.lifetime_value, 0)::numeric(14, 2) as lifetime_value,
        orders.first_order_at,
        orders.last_order_at
    from customers
    left join orders on customers.customer_id = orders.customer_id
)

select * from final
