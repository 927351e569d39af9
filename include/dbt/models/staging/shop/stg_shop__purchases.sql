{{
    config(
        unique_key='purchase_id',
        indexes=[{'columns': ['purchase_id'], 'unique': true}, {'columns': ['extracted_at']}],
        pre_hook="{{ delete_newly_quarantined(source('shop', 'purchases'), 'purchase_id') }}",
    )
}}

with

source as (
    {{ latest_clean_records(source('shop', 'purchases'), since_column='extracted_at') }}
),

renamed as (
    select
        id::bigint as purchase_id,
        user_id::bigint as customer_id,
        product_id::bigint as product_id,
        added_to_cart_at::timestamp as added_to_cart_at,
        purchased_at::timestamp as purchased_at,
        returned_at::timestamp as returned_at,
        created_at::timestamp as created_at,
        updated_at::timestamp as updated_at,
        _airbyte_extracted_at::timestamp as extracted_at
    from source
)

select * from renamed
