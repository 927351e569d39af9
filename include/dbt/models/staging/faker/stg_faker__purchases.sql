with

source as (
    select * from {{ source('faker', 'purchases') }}
),

latest as (
    select
        *,
        row_number() over (partition by id order by _airbyte_extracted_at desc) as _row_rank
    from source
),

renamed as (
    select
        id as purchase_id,
        user_id as customer_id,
        product_id,
        added_to_cart_at,
        purchased_at,
        returned_at,
        created_at,
        updated_at,
        _airbyte_extracted_at as extracted_at
    from latest
    where _row_rank = 1
)

select * from renamed
