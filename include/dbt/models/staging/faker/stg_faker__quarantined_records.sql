{#-
    Raw records that staging leaves out, with the reason: the latest extraction of a key when
    Airbyte flagged it, and every record without a key. A table rebuilt on each run (one sort of
    each raw table): which records are quarantined depends on the newest extraction of every key.
-#}
{{ config(materialized='table') }}
{%- set streams = ['users', 'products', 'purchases'] -%}

with

unioned as (
    {% for stream in streams %}
        select
            '{{ stream }}'::varchar as stream_name,
            _airbyte_raw_id::varchar as raw_record_id,
            id::bigint as record_id,
            record_problem as problem,
            _airbyte_meta::jsonb as airbyte_meta,
            _airbyte_extracted_at::timestamp as extracted_at
        from ({{ latest_extraction(source('faker', stream)) }}) as latest
        where record_problem is not null and id is not null
        union all
        select
            '{{ stream }}'::varchar as stream_name,
            _airbyte_raw_id::varchar as raw_record_id,
            null::bigint as record_id,
            'missing_primary_key'::varchar as problem,
            _airbyte_meta::jsonb as airbyte_meta,
            _airbyte_extracted_at::timestamp as extracted_at
        from {{ source('faker', stream) }}
        where id is null
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select * from unioned
