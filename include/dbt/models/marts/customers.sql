{#-
    Incremental: a daily build deletes and recomputes only the customers int_purchase_changes
    lists (their profile changed, or one of their purchases did, before or after the change).
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{% if is_incremental() %}
            delete from {{ this }}
            where customer_id = any(array(select customer_id from {{ ref('int_purchase_changes') }} where customer_id is not null))
        {% endif %}",
    )
}}

-- depends_on: {{ ref('int_purchase_changes') }}

with

{#- on an increment, the changed customers' rows are read through the customer_id indexes, one
    probe per key (`= any(array(...))`: Postgres estimates a few values; a semi-join hashes a scan
    of every customer and purchase, in each parallel worker, for a day's few percent) #}
{%- set changed_customers -%}
    select distinct changes.customer_id from {{ ref('int_purchase_changes') }} as changes
    where changes.customer_id is not null
{%- endset %}

customers as (
    select * from {{ ref('stg_shop__users') }}
    {% if is_incremental() %}
        where customer_id = any(array({{ changed_customers }}))
    {% endif %}
),

purchases as (
    select * from {{ ref('int_purchases_enriched') }}
    {% if is_incremental() %}
        where customer_id = any(array({{ changed_customers }}))
    {% endif %}
),

customer_orders as (
    select
        customer_id,
        count(*) filter (where order_status in ('purchased', 'returned')) as order_count,
        count(*) filter (where order_status = 'returned') as return_count,
        sum(net_amount) as lifetime_value,
        min(purchased_at) as first_order_at,
        max(purchased_at) as last_order_at
    from purchases
    group by customer_id
),

joined as (
    select
        customers.customer_id,
        customers.customer_name,
        customers.email,
        customers.city,
        customers.state,
        customers.country_code,
        coalesce(customer_orders.order_count, 0) as order_count,
        coalesce(customer_orders.return_count, 0) as return_count,
        coalesce(customer_orders.lifetime_value, 0)::numeric(14, 2) as lifetime_value,
        customer_orders.first_order_at,
        customer_orders.last_order_at
    from customers
    left join customer_orders on customers.customer_id = customer_orders.customer_id
),

final as (
    select
        *,
        (case
            when order_count = 0 then 'prospect'
            when return_count = order_count then 'returner'
            when lifetime_value >= {{ var('high_value_lifetime_value', 50000) }} then 'high_value'
            when order_count > 1 then 'repeat'
            else 'one_time'
        end)::varchar as customer_segment
    from joined
)

select * from final
