{#-
    Incremental: a daily build deletes and recomputes only the days int_purchase_changes touches
    (the day a changed purchase had before the change and the day it has after), so a late record
    or a change to an old order rewrites its own day, whatever its age.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{% if is_incremental() %}
            delete from {{ this }}
            where order_date in (select order_date from {{ ref('int_purchase_changes') }})
        {% endif %}",
    )
}}

-- depends_on: {{ ref('int_purchase_changes') }}

with

purchases as (
    select * from {{ ref('int_purchases_enriched') }}
    {% if is_incremental() %}
        where order_date in (select changes.order_date from {{ ref('int_purchase_changes') }} as changes)
    {% endif %}
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
