{#-
    Incremental: replaces by order_id (strategy by_key) the purchases int_purchase_changes lists (their record,
    product or customer changed since the last build); the pre-hook deletes those whose purchase
    left staging (its newest extraction was quarantined; macro purchases_gone), as a full build
    would leave them out.
-#}
{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy='by_key',
        on_schema_change='fail',
        pre_hook="{% if is_incremental() %}
            delete from {{ this }}
            where order_id = any(array({{ purchases_gone(ref('int_purchase_changes')) }}))
        {% endif %}",
    )
}}

-- depends_on: {{ ref('int_purchase_changes') }}

with

purchases as (
    select * from {{ ref('int_purchases_enriched') }}
    {% if is_incremental() %}
        -- through the purchase_id index, one probe per key (see customers.sql)
        where purchase_id = any(array(
            select changes.purchase_id from {{ ref('int_purchase_changes') }} as changes
            where changes.purchase_id is not null
        ))
    {% endif %}
),

final as (
    select
        purchase_id as order_id,
        customer_id,
        product_id,
        order_status,
        added_to_cart_at,
        purchased_at,
        returned_at,
        order_date,
        unit_price,
        gross_amount,
        refund_amount,
        net_amount,
        updated_at,
        extracted_at
    from purchases
)

select * from final
