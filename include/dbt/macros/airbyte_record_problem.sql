{#-
    Why a raw record cannot be trusted, or null when it can. Airbyte (Destinations V2) reports in
    `_airbyte_meta.changes` every value it had to null or truncate (e.g. a wrong type), and
    platform versions may add `errors`. Staging keeps only records for which this is null; the
    quarantine models keep the others, so nothing is dropped silently.
    `key_columns`: the stream's primary key, one column or a list (a compound key).
-#}
{% macro airbyte_record_problem(meta_column='_airbyte_meta', key_columns='id') -%}
    case
        when {% for key in as_list(key_columns) %}{{ adapter.quote(key) }} is null{% if not loop.last %} or {% endif %}{% endfor %}
            then 'missing_primary_key'
        when jsonb_array_length(
            coalesce(({{ meta_column }})::jsonb -> 'changes', '[]'::jsonb)
        ) > 0 then 'airbyte_changes'
        when jsonb_array_length(
            coalesce(({{ meta_column }})::jsonb -> 'errors', '[]'::jsonb)
        ) > 0 then 'airbyte_errors'
    end
{%- endmacro %}


{#- A column name or a list of them, as a list: macros take a primary key either way. The key
    macros quote each column (adapter.quote), so a key named like a SQL word (`order`) works. -#}
{% macro as_list(columns) -%}
    {%- if columns is string -%}{{ return([columns]) }}{%- else -%}{{ return(columns | list) }}{%- endif -%}
{%- endmacro %}
