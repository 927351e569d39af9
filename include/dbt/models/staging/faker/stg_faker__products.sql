with

source as (
    select * from {{ source('faker', 'products') }}
),

latest as (
    select
        *,
        row_number() over (partition by id order by _airbyte_extracted_at desc) as _row_rank
    from source
),

renamed as (
    select
        id as product_id,
        make,
        model,
        year as model_year,
        price::numeric(12, 2) as price,
        created_at,
        updated_at,
        _airbyte_extracted_at as extracted_at
    from latest
    where _row_rank = 1
)

select * from renamed
