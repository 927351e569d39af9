with

source as (
    select * from {{ source('faker', 'products') }}
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
        id::bigint as product_id,
        make::varchar as make,
        model::varchar as model_name,
        year::integer as model_year,
        price::numeric(12, 2) as price,
        created_at::timestamp as created_at,
        updated_at::timestamp as updated_at,
        _airbyte_extracted_at::timestamp as extracted_at
    from latest
    where extraction_rank = 1 and record_problem is null
)

select * from renamed
