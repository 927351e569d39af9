{#-
    Customers grouped by the month of their first purchase (the cohort); for each later month,
    how many of them purchased again. Month 0 is the cohort's own month (retention 1.0).
-#}

with

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

select * from final
