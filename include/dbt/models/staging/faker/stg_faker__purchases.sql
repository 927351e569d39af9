with

source as (
    select * from {{ source('faker', 'purchases') }}
),

latest as (
    select
        *,
        {{ airbyte_record_problem() }} as record_problem,
        row_number() over (
            partition by id
            order by _airbyte_extracted_at desc, _airbyte_raw_id desc
        ) as extraction_rank
    from source
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
    from latest
    where extraction_rank = 1 and record_problem is null
)

select * from renamed
