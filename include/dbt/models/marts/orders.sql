{#-
    Incremental: replaces by order_id (strategy by_key) the purchases int_purchase_changes lists (their record,
    product or customer changed since the last build); the pre-hook deletes those whose purchase
    left the intermediate model (its newest extraction was quarantined), as a full build would
    leave them out.
-#}
{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy='by_key',
        on_schema_change='fail',
        pre_hook="{% if is_incremental() %}
            delete from {{ this }} as orders
            where orders.order_id in (select purchase_id from {{ ref('int_purchase_changes') }})
                and not exists (
                    select from {{ ref('int_purchases_enriched') }} as purchases
                    where purchases.purchase_id = orders.order_id
                )
        {% endif %}",
    )
}}

-- depends_on: {{ ref('int_purchase_changes') }}

with

purchases as (
    select * from {{ ref('int_purchases_enriched') }}
    {% if is_incremental() %}
        where purchase_id in (select changes.purchase_id from {{ ref('int_purchase_changes') }} as changes)
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
