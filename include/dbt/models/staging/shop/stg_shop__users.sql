{#- The index on email: a daily `unique` test on it reads the day's e-mails through it (macro
    touched_rows); macro create_missing_indexes adds it to a table built before it. -#}
{{
    config(
        unique_key='customer_id',
        indexes=[
            {'columns': ['customer_id'], 'unique': true},
            {'columns': ['extracted_at']},
            {'columns': ['email']},
        ],
        pre_hook="{{ delete_newly_quarantined(source('shop', 'users'), 'customer_id') }}",
    )
}}

with

source as (
    {{ latest_clean_records(source('shop', 'users'), since_column='extracted_at') }}
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
        {{ parse_as('created_at', 'timestamptz') }} as created_at,
        {{ parse_as('updated_at', 'timestamptz') }} as updated_at,
        _airbyte_extracted_at::timestamp as extracted_at
    from source
)

select * from renamed
