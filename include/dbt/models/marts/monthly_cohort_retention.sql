{#-
    Customers grouped by the month of their first purchase (the cohort); for each later month,
    how many of them purchased again. Month 0 is the cohort's own month (retention 1.0).

    Incremental, by difference: a daily build does not regroup every customer. Each customer one
    of whose purchases int_purchase_changes lists counts -1 where it counted before the build
    (its cohort and active months then: its unchanged purchases and the changed ones as they were,
    state 'before') and +1 where it counts now; the sums are added to the table's counts, every
    cohort's size is its month 0 and the rates follow. A (cohort, month) no customer is active
    in any more is deleted (post-hook), as a full build would not have it. Counts are integers:
    the result equals a full build's exactly (tests/transform/test_dbt_incremental.py).
-#}
{{
    config(
        materialized='incremental',
        unique_key=['cohort_month', 'months_since_first_order'],
        incremental_strategy='merge',
        on_schema_change='fail',
        post_hook="{% if is_incremental() %}delete from {{ this }} where active_customers = 0{% endif %}",
    )
}}

-- depends_on: {{ ref('int_purchase_changes') }}
-- depends_on: {{ ref('int_touched_purchases') }}

with

{% if is_incremental() %}

    changed_customers as (
        select distinct customer_id from {{ ref('int_purchase_changes') }}
        where purchase_id is not null and customer_id is not null
    ),

    purchases_now as (
        select
            customer_id,
            is_changed,
            date_trunc('month', purchased_at at time zone 'UTC')::date as activity_month
        from {{ ref('int_touched_purchases') }}  -- every purchase of the customers listed
        where
            purchased_at is not null
            and customer_id in (select changed_customers.customer_id from changed_customers)
    ),

    -- the changed customers' months before the build: their unchanged purchases, as they are,
    -- and the changed ones as they were (order_date is purchased_at's UTC day)
    months_before as (
        select
            customer_id,
            activity_month
        from purchases_now
        where not is_changed
        union
        select
            customer_id,
            date_trunc('month', order_date)::date as activity_month
        from {{ ref('int_purchase_changes') }}
        where state = 'before' and order_date is not null and customer_id is not null
    ),

    months_after as (
        select distinct
            customer_id,
            activity_month
        from purchases_now
    ),

    contributions as (
        select
            customer_id,
            activity_month,
            -1 as sign
        from months_before
        union all
        select
            customer_id,
            activity_month,
            1 as sign
        from months_after
    ),

    cohorts as (
        select
            sign,
            activity_month,
            min(activity_month) over (partition by customer_id, sign) as cohort_month
        from contributions
    ),

    changes as (
        select
            cohort_month,
            (
                (extract(year from activity_month) - extract(year from cohort_month)) * 12
                + extract(month from activity_month) - extract(month from cohort_month)
            )::integer as months_since_first_order,
            sum(sign) as active_customers
        from cohorts
        group by 1, 2
    ),

    counts as (
        select
            coalesce(held.cohort_month, changes.cohort_month) as cohort_month,
            coalesce(held.months_since_first_order, changes.months_since_first_order) as months_since_first_order,
            coalesce(held.active_customers, 0) + coalesce(changes.active_customers, 0) as active_customers
        from {{ this }} as held
        full outer join changes
            on
                held.cohort_month = changes.cohort_month
                and held.months_since_first_order = changes.months_since_first_order
    ),

    sized as (
        select
            cohort_month,
            months_since_first_order,
            max(case when months_since_first_order = 0 then active_customers end)
                over (partition by cohort_month) as cohort_size,
            active_customers
        from counts
    ),

    final as (
        select
            cohort_month,
            months_since_first_order,
            cohort_size::bigint as cohort_size,
            active_customers::bigint as active_customers,
            -- null for a (cohort, month) left without customers: the post-hook deletes it
            (active_customers::numeric / nullif(cohort_size, 0))::numeric(6, 4) as retention_rate
        from sized
    )

{% else %}

    purchases as (
        select
            customer_id,
            date_trunc('month', purchased_at at time zone 'UTC')::date as activity_month
        from {{ ref('int_purchases_enriched') }}
        where purchased_at is not null
    ),

    cohorts as (
        select
            customer_id,
            min(activity_month) as cohort_month
        from purchases
        group by customer_id
    ),

    cohort_sizes as (
        select
            cohort_month,
            count(*) as cohort_size
        from cohorts
        group by cohort_month
    ),

    activity as (
        select distinct
            cohorts.cohort_month,
            purchases.customer_id,
            (
                (extract(year from purchases.activity_month) - extract(year from cohorts.cohort_month)) * 12
                + extract(month from purchases.activity_month) - extract(month from cohorts.cohort_month)
            )::integer as months_since_first_order
        from purchases
        inner join cohorts on purchases.customer_id = cohorts.customer_id
    ),

    final as (
        select
            activity.cohort_month,
            activity.months_since_first_order,
            cohort_sizes.cohort_size,
            count(*) as active_customers,
            (count(*)::numeric / cohort_sizes.cohort_size)::numeric(6, 4) as retention_rate
        from activity
        inner join cohort_sizes on activity.cohort_month = cohort_sizes.cohort_month
        group by activity.cohort_month, activity.months_since_first_order, cohort_sizes.cohort_size
    )

{% endif %}

select * from final
