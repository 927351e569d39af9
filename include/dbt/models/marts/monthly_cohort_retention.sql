{#-
    Customers grouped by the month of their first purchase (the cohort); for each later month,
    how many of them purchased again. Month 0 is the cohort's own month (retention 1.0).

    Incremental: a daily build deletes and recomputes only the cohorts the day's changes touch
    (macro touched_cohorts: the old and new cohort of each customer whose purchases changed).
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{% if is_incremental() %}
            delete from {{ this }} where cohort_month in (
                {{ touched_cohorts(ref('int_purchases_enriched'), ref('int_purchase_changes')) }}
            )
        {% endif %}",
    )
}}

-- depends_on: {{ ref('int_purchase_changes') }}

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
    {% if is_incremental() %}
        having min(activity_month) in (
            {{ touched_cohorts(ref('int_purchases_enriched'), ref('int_purchase_changes')) }}
        )
    {% endif %}
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
