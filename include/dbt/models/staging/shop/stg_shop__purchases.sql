{#- The index on customer_id: int_purchase_changes reads a changed customer's purchases through
    it; macro create_missing_indexes adds it to a table built before it. -#}
{{
    config(
        unique_key='purchase_id',
        indexes=[
            {'columns': ['purchase_id'], 'unique': true},
            {'columns': ['extracted_at']},
            {'columns': ['customer_id']},
        ],
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
        {{ parse_as('added_to_cart_at', 'timestamptz') }} as added_to_cart_at,
        {{ parse_as('purchased_at', 'timestamptz') }} as purchased_at,
        {{ parse_as('returned_at', 'timestamptz') }} as returned_at,
        {{ parse_as('created_at', 'timestamptz') }} as created_at,
        {{ parse_as('updated_at', 'timestamptz') }} as updated_at,
        _airbyte_extracted_at::timestamp as extracted_at
    from source
)

select * from renamed
