{#- Raw records that staging leaves out (latest extraction per key only), with the reason. -#}
{%- set streams = ['users', 'products', 'purchases'] -%}

with

unioned as (
    {% for stream in streams %}
        select
            '{{ stream }}'::varchar as stream_name,
            _airbyte_raw_id::varchar as raw_record_id,
            id::bigint as record_id,
            ({{ airbyte_record_problem() }})::varchar as problem,
            _airbyte_meta::jsonb as airbyte_meta,
            _airbyte_extracted_at::timestamp as extracted_at,
            row_number() over (
                partition by id
                order by _airbyte_extracted_at desc, _airbyte_raw_id desc
            ) as extraction_rank
        from {{ source('faker', stream) }}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

quarantined as (
    select
        stream_name,
        raw_record_id,
        record_id,
        problem,
        airbyte_meta,
        extracted_at
    from unioned
    where problem is not null and (extraction_rank = 1 or record_id is null)
)

select * from quarantined
