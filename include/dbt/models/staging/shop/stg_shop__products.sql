{{
    config(
        unique_key='product_id',
        indexes=[{'columns': ['product_id'], 'unique': true}, {'columns': ['extracted_at']}],
        pre_hook="{{ delete_newly_quarantined(source('shop', 'products'), 'product_id') }}",
    )
}}

with

source as (
    {{ latest_clean_records(source('shop', 'products'), since_column='extracted_at') }}
),

renamed as (
    select
        id::bigint as product_id,
        make::varchar as make,
        model::varchar as model_name,
        year::integer as model_year,
        price::numeric(12, 2) as price,
        {{ parse_as('created_at', 'timestamptz') }} as created_at,
        {{ parse_as('updated_at', 'timestamptz') }} as updated_at,
        _airbyte_extracted_at::timestamp as extracted_at
    from source
)

select * from renamed
