with

purchases as (
    select * from {{ ref('int_purchases_enriched') }}
),

final as (
    select
        order_date,
        count(*) as order_count,
        count(distinct customer_id) as customer_count,
        count(*) filter (where order_status = 'returned') as return_count,
        sum(gross_amount)::numeric(14, 2) as gross_revenue,
        sum(refund_amount)::numeric(14, 2) as refunded_amount,
        sum(net_amount)::numeric(14, 2) as net_revenue
    from purchases
    where order_date is not null
    group by order_date
)

select * from final
