with

source as (
    select * from {{ source('faker', 'users') }}
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
        id::bigint as customer_id,
        name::varchar as customer_name,
        email::varchar as email,
        title::varchar as title,
        age::integer as age,
        gender::varchar as gender,
        nationality::varchar as nationality,
        occupation::varchar as occupation,
        (address ->> 'street_number')::varchar as street_number,
        (address ->> 'street_name')::varchar as street_name,
        (address ->> 'city')::varchar as city,
        (address ->> 'state')::varchar as state,
        (address ->> 'province')::varchar as province,
        (address ->> 'postal_code')::varchar as postal_code,
        (address ->> 'country_code')::varchar as country_code,
        created_at::timestamp as created_at,
        updated_at::timestamp as updated_at,
        _airbyte_extracted_at::timestamp as extracted_at
    from latest
    where extraction_rank = 1 and record_problem is null
)

select * from renamed
