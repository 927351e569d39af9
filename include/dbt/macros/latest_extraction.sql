{#-
    The latest extraction of every key of a raw Airbyte table (Destinations V2), with the reason it
    cannot be trusted (`record_problem`: macro airbyte_record_problem, else `unparseable_value` when
    a column the source's yml declares `parse_as` holds a value that does not parse, macro
    parse_as) or null: one row per key.
    `key_columns`: the stream's primary key as connections.yaml declares it, one column or a list.

    `distinct on` sorts the table once and keeps the first row of each key. It is plan-stable: a
    `row_number() ... = 1` filter is estimated at 1 row by Postgres, which then plans nested loops
    that re-run the window once per outer row (quadratic on a few thousand rows).

    In an incremental model (`since_column` given), only the extractions at or after the newest
    one already loaded are read (`>=`: a record landing with that same time stamp is merged again,
    never missed), so a daily run reads the day's records, not the whole history. `since` (SQL, a
    timestamp) reads the extractions at or after it instead. Both reach raw as a literal (macro
    newest_extraction), found through the index the runtime gives `_airbyte_extracted_at`.
-#}
{% macro latest_extraction(relation, key_columns='id', since_column=none, since=none) -%}
    {%- set keys = quoted(key_columns) | join(', ') -%}
    select distinct on ({{ keys }})
        *,
        coalesce(
            {{ airbyte_record_problem(key_columns=key_columns) }},
            case when ({{ unparseable(parsed_columns(relation)) }}) is not null then 'unparseable_value' end
        )::varchar as record_problem
    from {{ relation }}
    {%- if since is not none %}
        where _airbyte_extracted_at >= {{ since }}
    {%- elif since_column and is_incremental() %}
        where _airbyte_extracted_at >= {{ newest_extraction(this, since_column) }}
    {%- endif %}
    order by {{ keys }}, _airbyte_extracted_at desc, _airbyte_raw_id desc
{%- endmacro %}


{#-
    What every staging model reads: the latest extraction of each key, only when it can be trusted
    (record_problem is null). The others are in the source's quarantine model
    (stg_<source>__quarantined_records), so nothing is dropped silently.
-#}
{% macro latest_clean_records(relation, key_columns='id', since_column=none) -%}
    select latest.*
    from ({{ latest_extraction(relation, key_columns, since_column) }}) as latest
    where latest.record_problem is null
{%- endmacro %}


{#-
    Pre-hook of an incremental staging model: delete the keys whose newest extraction Airbyte
    flagged. A full build leaves them out (they are in the quarantine model); the incremental
    merge only adds and replaces rows, so without this the older, clean version would stay.
    `model_key`: the model's key column(s), in the order of `key_columns` (the raw key).
-#}
{% macro delete_newly_quarantined(relation, model_key, key_columns='id', since_column='extracted_at') -%}
    {%- if is_incremental() -%}
        {%- set flagged -%}
            select {% for key in quoted(key_columns) %}latest.{{ key }}{% if not loop.last %}, {% endif %}{% endfor %}
            from ({{ latest_extraction(relation, key_columns, since_column) }}) as latest
            where latest.record_problem is not null
        {%- endset -%}
        delete from {{ this }}
        {%- if as_list(model_key) | length == 1 %}
        {#- through the key's index, one probe per flagged key (a semi-join hashes every row) #}
        where {{ quoted(model_key)[0] }} = any(array({{ flagged }}))
        {%- else %}
        where ({{ quoted(model_key) | join(', ') }}) in ({{ flagged }})
        {%- endif %}
    {%- endif -%}
{%- endmacro %}


{#-
    SQL: the newest `column` (a timestamp) of `relation`, or -infinity when it is empty. When dbt
    executes, a literal it reads first: Postgres then estimates the few rows at or after it (from
    the column's index, past the statistics' last value) and reads them through the index. A
    subquery's value is unknown when the plan is made: Postgres guesses a third of the table
    and scans all of it (a day's staging then reads each raw table whole).
-#}
{% macro newest_extraction(relation, column='extracted_at') -%}
    {%- set newest -%}
        (select coalesce(max({{ column }}), '-infinity'::timestamp) from {{ relation }})
    {%- endset -%}
    {%- if execute -%}
        {%- set value = run_query('select ' ~ newest ~ '::text').columns[0].values()[0] -%}
        {{ return("'" ~ value ~ "'::timestamp") }}
    {%- endif -%}
    {{ return(newest) }}
{%- endmacro %}


{#- Each column of a key, quoted for SQL. -#}
{% macro quoted(columns) -%}
    {%- set out = [] -%}
    {%- for column in as_list(columns) -%}{%- do out.append(adapter.quote(column)) -%}{%- endfor -%}
    {{ return(out) }}
{%- endmacro %}
