{#-
    The raw records of a source that staging leaves out, with the reason: the latest extraction of
    a key when Airbyte flagged it or a value does not parse (`unparseable_value`: `column_name` and
    `bad_value` say which, macro parse_as), and every record without a (whole) key. One row per
    raw record.
    `streams`: {stream: primary key column(s)}, every stream of the source (connections.yaml; a
    stream without a primary key is keyed on `_airbyte_raw_id`); `make scaffold-source` writes it. The key is kept as text (`record_key`,
    the columns of a compound key joined by '|'; null when a key column is missing), so any key
    type fits.
-#}
{% macro quarantined_records(source_name, streams) -%}
    {%- for stream, key_columns in streams.items() %}
        {%- set keys = quoted(key_columns) %}
        {%- set parsed = parsed_columns(source(source_name, stream)) %}
        {%- set record_key -%}
            concat_ws('|', {% for key in keys %}{{ key }}::text{% if not loop.last %}, {% endif %}{% endfor %})::varchar
        {%- endset %}
        select
            '{{ source_name }}'::varchar as source_name,
            '{{ stream }}'::varchar as stream_name,
            _airbyte_raw_id::varchar as raw_record_id,
            {{ record_key }} as record_key,
            record_problem as problem,
            (case when record_problem = 'unparseable_value' then {{ unparseable(parsed) }} end)::varchar
                as column_name,
            (case when record_problem = 'unparseable_value' then {{ unparseable(parsed, 'value') }} end)::varchar
                as bad_value,
            _airbyte_meta::jsonb as airbyte_meta,
            _airbyte_extracted_at::timestamp as extracted_at
        from ({{ latest_extraction(source(source_name, stream), key_columns) }}) as latest
        where record_problem is not null and record_problem != 'missing_primary_key'
        union all
        select
            '{{ source_name }}'::varchar as source_name,
            '{{ stream }}'::varchar as stream_name,
            _airbyte_raw_id::varchar as raw_record_id,
            null::varchar as record_key,
            'missing_primary_key'::varchar as problem,
            null::varchar as column_name,
            null::varchar as bad_value,
            _airbyte_meta::jsonb as airbyte_meta,
            _airbyte_extracted_at::timestamp as extracted_at
        from {{ source(source_name, stream) }}
        where {% for key in keys %}{{ key }} is null{% if not loop.last %} or {% endif %}{% endfor %}
        {% if not loop.last %}union all{% endif %}
    {%- endfor %}
{%- endmacro %}
