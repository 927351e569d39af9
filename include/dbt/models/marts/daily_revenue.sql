{#-
    Revenue by day of purchase.

    Incremental, by difference (as monthly_cohort_retention): a daily build does not regroup
    every purchase. Each purchase int_purchase_changes lists counts -1 on the day it had before
    the build, with its status and amounts then (state 'before'), and +1 on its day now (its row
    in int_purchases_enriched, if it is still there); the sums per day are added to the table's
    figures. `customer_count` (distinct customers a day) changes only for a (customer, day) pair
    of those purchases: -1 if the customer had a purchase that day before the build (one the
    build did not change, or a changed one as it was), +1 if it has one now, read from the
    customer's purchases in int_touched_purchases. A day left without purchases is deleted
    (post-hook), as a full build would not have it. Counts and sums are exact: the result equals
    a full build's (tests/transform/test_dbt_incremental.py).
-#}
{{
    config(
        materialized='incremental',
        unique_key='order_date',
        incremental_strategy='merge',
        on_schema_change='fail',
        post_hook="{% if is_incremental() %}delete from {{ this }} where order_count = 0{% endif %}",
    )
}}

-- depends_on: {{ ref('int_purchase_changes') }}
-- depends_on: {{ ref('int_touched_purchases') }}

with

{% if is_incremental() %}

    purchases_now as (
        select
            purchase_id,
            customer_id,
            order_date,
            order_status,
            gross_amount,
            refund_amount,
            net_amount
        from {{ ref('int_touched_purchases') }}
        where is_changed
    ),

    contributions as (
        select
            1 as sign,
            customer_id,
            order_date,
            order_status,
            gross_amount,
            refund_amount,
            net_amount
        from purchases_now
        where order_date is not null
        union all
        select
            -1 as sign,
            customer_id,
            order_date,
            order_status,
            gross_amount,
            refund_amount,
            net_amount
        from {{ ref('int_purchase_changes') }}
        where state = 'before' and order_date is not null
    ),

    sums as (
        select
            order_date,
            sum(sign) as order_count,
            coalesce(sum(sign) filter (where order_status = 'returned'), 0) as return_count,
            sum(sign * gross_amount) as gross_revenue,
            sum(sign * refund_amount) as refunded_amount,
            sum(sign * net_amount) as net_revenue
        from contributions
        group by order_date
    ),

    pairs as (
        select distinct
            customer_id,
            order_date
        from contributions
        where customer_id is not null
    ),

    -- every purchase now of a pair's customer on the pair's day (changed or not): the pair's
    -- customer is one int_purchase_changes lists, whose purchases int_touched_purchases holds
    pair_purchases as (
        select
            touched.customer_id,
            touched.order_date,
            touched.is_changed
        from {{ ref('int_touched_purchases') }} as touched
        inner join pairs
            on touched.customer_id = pairs.customer_id and touched.order_date = pairs.order_date
    ),

    presence as (
        select
            customer_id,
            order_date,
            bool_or(is_now) as is_now,
            bool_or(was_before) as was_before
        from (
            select
                customer_id,
                order_date,
                true as is_now,
                -- a purchase the build did not change was there before it, as it is
                not is_changed as was_before
            from pair_purchases
            union all
            select
                customer_id,
                order_date,
                false as is_now,
                true as was_before
            from {{ ref('int_purchase_changes') }}
            where state = 'before' and order_date is not null and customer_id is not null
        ) as found
        group by customer_id, order_date
    ),

    customer_changes as (
        select
            order_date,
            sum(is_now::integer - was_before::integer) as customer_count
        from presence
        group by order_date
    ),

    final as (
        select
            sums.order_date,
            (coalesce(held.order_count, 0) + sums.order_count)::bigint as order_count,
            (coalesce(held.customer_count, 0) + coalesce(customer_changes.customer_count, 0))::bigint
                as customer_count,
            (coalesce(held.return_count, 0) + sums.return_count)::bigint as return_count,
            (coalesce(held.gross_revenue, 0) + sums.gross_revenue)::numeric(14, 2) as gross_revenue,
            (coalesce(held.refunded_amount, 0) + sums.refunded_amount)::numeric(14, 2) as refunded_amount,
            (coalesce(held.net_revenue, 0) + sums.net_revenue)::numeric(14, 2) as net_revenue
        from sums
        left join {{ this }} as held on sums.order_date = held.order_date
        left join customer_changes on sums.order_date = customer_changes.order_date
    )

{% else %}

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

{% endif %}

select * from final
