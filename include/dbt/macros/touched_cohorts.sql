{#-
    SQL: the cohorts (month of a customer's first purchase) a daily build must recompute in
    monthly_cohort_retention: for every customer one of whose purchases int_purchase_changes
    lists, the cohort it had before the build and the one it has after. Before: its unchanged
    purchases (as they are now) and the changed ones as they were (state 'before').
    `enriched` and `changes`: the relations of int_purchases_enriched and int_purchase_changes.
-#}
{% macro touched_cohorts(enriched, changes) -%}
    with

    changed_customers as (
        select distinct customer_id from {{ changes }}
        where purchase_id is not null and customer_id is not null
    ),

    months_after as (
        select
            purchase_id,
            customer_id,
            date_trunc('month', purchased_at at time zone 'UTC')::date as activity_month
        from {{ enriched }}
        where purchased_at is not null
            and customer_id in (select changed_customers.customer_id from changed_customers)
    ),

    months_before as (
        select customer_id, activity_month from months_after
        where not exists (  -- an anti-join (`not in` probes the list per row past work_mem)
            select from {{ changes }} as changed where changed.purchase_id = months_after.purchase_id
        )
        union all
        select customer_id, date_trunc('month', order_date)::date from {{ changes }}
        where state = 'before' and order_date is not null
    )

    select min(activity_month) as cohort_month from months_after group by customer_id
    union
    select min(activity_month) from months_before group by customer_id
{%- endmacro %}
