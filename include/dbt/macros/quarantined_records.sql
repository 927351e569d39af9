{#-
    The raw records of a source that staging leaves out, with the reason: the latest extraction of
    a key when Airbyte flagged it or a value does not parse (`unparseable_value`: `column_name` and
    `bad_value` say which, macro parse_as), and every record without a (whole) key. One row per
    raw record.
    `streams`: {stream: primary key column(s)}, every stream of the source (connections.yaml; a
    stream without a primary key is keyed on `_airbyte_raw_id`); `make scaffold-source` writes it. The key is kept as text (`record_key`,
    the columns of a compound key joined by '|'; null when a key column is missing), so any key
    type fits.

    Incremental (the model's config: materialized incremental, post_hook quarantine_post_hooks):
    a daily run reads only the raw records extracted at or after the time the last run read raw
    through (`quarantine_read_through`, kept in the table's comment) and appends the records
    quarantined among them that the table does not hold yet; its post-hooks then delete the rows
    a newer extraction of their key superseded (clean again, or quarantined anew) and move the
    mark. As a table (the scaffold's default) it reads every raw record on each run.
-#}
{% macro quarantined_records(source_name, streams) -%}
    {%- set since = quarantine_read_through() if is_incremental() else none %}
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
        from ({{ latest_extraction(source(source_name, stream), key_columns, since=since) }}) as latest
        where record_problem is not null and record_problem != 'missing_primary_key'
        {%- if since is not none %}
            and not exists (select from {{ this }} as held where held.raw_record_id = latest._airbyte_raw_id::varchar)
        {%- endif %}
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
        from {{ source(source_name, stream) }} as raw_record
        where ({% for key in keys %}{{ key }} is null{% if not loop.last %} or {% endif %}{% endfor %})
        {%- if since is not none %}
            and raw_record._airbyte_extracted_at >= {{ since }}
            and not exists (
                select from {{ this }} as held where held.raw_record_id = raw_record._airbyte_raw_id::varchar
            )
        {%- endif %}
        {% if not loop.last %}union all{% endif %}
    {%- endfor %}
{%- endmacro %}


{#- SQL: the extraction time the quarantine model last read its raw tables through (its table's
    comment, `raw read through <timestamp>`), or -infinity (read everything). A literal when dbt
    executes (as macro newest_extraction: Postgres reads the records since through raw's
    `_airbyte_extracted_at` index), else a scalar subquery (evaluated once per statement). -#}
{% macro quarantine_read_through() -%}
    {%- set mark -%}
        (select coalesce(
            substring(obj_description('{{ this }}'::regclass, 'pg_class') from 'raw read through (.+)$')::timestamp,
            '-infinity'::timestamp
        ))
    {%- endset -%}
    {%- if execute -%}
        {%- set value = run_query('select ' ~ mark ~ '::text').columns[0].values()[0] -%}
        {{ return("'" ~ value ~ "'::timestamp") }}
    {%- endif -%}
    {{ return(mark) }}
{%- endmacro %}


{#- The incremental quarantine model's post-hooks, as hook strings rendered when the model runs
    (where `this` is the model's table): delete the rows superseded since the mark
    (quarantine_delete_superseded), then move the mark (quarantine_mark_read). -#}
{% macro quarantine_post_hooks(source_name, streams) -%}
    {%- set args = "('" ~ source_name ~ "', " ~ streams ~ ")" -%}
    {{ return(["{{ quarantine_delete_superseded" ~ args ~ " }}", "{{ quarantine_mark_read" ~ args ~ " }}"]) }}
{%- endmacro %}


{#- Delete the rows whose key has an extraction newer than the row since the mark: the newest
    extraction of a key is the one quarantined, or none is. One pass over the raw records since
    the mark, grouped by key and joined by hash (not a probe of raw per quarantined row). Nothing
    to do on a full build: it read only each key's newest extraction. -#}
{% macro quarantine_delete_superseded(source_name, streams) -%}
    {%- if is_incremental() %}
    delete from {{ this }} as held
    using (
        {%- for stream, key_columns in streams.items() %}
        select
            '{{ stream }}'::varchar as stream_name,
            concat_ws('|', {% for key in quoted(key_columns) %}{{ key }}::text{% if not loop.last %}, {% endif %}{% endfor %})::varchar as record_key,
            max(_airbyte_extracted_at)::timestamp as newest
        from {{ source(source_name, stream) }}
        where _airbyte_extracted_at >= {{ quarantine_read_through() }}
        group by 1, 2
        {%- if not loop.last %}
        union all
        {%- endif %}
        {%- endfor %}
    ) as newer
    where held.stream_name = newer.stream_name
        and held.record_key = newer.record_key
        and newer.newest > held.extracted_at
    {%- else %}
    select 'a full build holds only the newest extraction of each key: nothing superseded'
    {%- endif %}
{%- endmacro %}


{#- Mark the table read through the newest extraction in the source's raw tables. -#}
{% macro quarantine_mark_read(source_name, streams) -%}
    do $quarantine$ begin
        execute format('comment on table {{ this }} is %L', 'raw read through ' || (
            select coalesce(max(newest), '-infinity'::timestamp)::text from (
                {%- for stream in streams %}
                select max(_airbyte_extracted_at)::timestamp as newest from {{ source(source_name, stream) }}
                {%- if not loop.last %} union all{% endif %}
                {%- endfor %}
            ) as raw_tables
        ));
    end $quarantine$
{%- endmacro %}
