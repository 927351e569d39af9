{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy='merge',
        on_schema_change='fail',
    )
}}

with

purchases as (
    select * from {{ ref('int_purchases_enriched') }}
    {% if is_incremental() %}
        -- only what was extracted since the last build; merged on order_id
        where extracted_at > (select coalesce(max(extracted_at), '1970-01-01') from {{ this }})
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
