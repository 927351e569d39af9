with

source as (
    select * from {{ source('faker', 'users') }}
),

latest as (
    select
        *,
        row_number() over (partition by id order by _airbyte_extracted_at desc) as _row_rank
    from source
),

renamed as (
    select
        id as customer_id,
        name as customer_name,
        email,
        age,
        gender,
        nationality,
        address ->> 'city' as city,
        address ->> 'state' as state,
        address ->> 'country_code' as country_code,
        created_at,
        updated_at,
        _airbyte_extracted_at as extracted_at
    from latest
    where _row_rank = 1
)

select * from renamed
