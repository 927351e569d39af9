{#-
    Why a raw record cannot be trusted, or null when it can. Airbyte (Destinations V2) reports in
    `_airbyte_meta.changes` every value it had to null or truncate (e.g. a wrong type), and
    platform versions may add `errors`. Staging keeps only records for which this is null; the
    quarantine model keeps the others, so nothing is dropped silently.
-#}
{% macro airbyte_record_problem(meta_column='_airbyte_meta', key_column='id') -%}
    case
        when {{ key_column }} is null then 'missing_primary_key'
        when jsonb_array_length(
            coalesce(({{ meta_column }})::jsonb -> 'changes', '[]'::jsonb)
        ) > 0 then 'airbyte_changes'
        when jsonb_array_length(
            coalesce(({{ meta_column }})::jsonb -> 'errors', '[]'::jsonb)
        ) > 0 then 'airbyte_errors'
    end
{%- endmacro %}
