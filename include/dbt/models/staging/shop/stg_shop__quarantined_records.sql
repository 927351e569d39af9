{#-
    The shop's raw records that staging leaves out, with the reason (macro quarantined_records).
    Incremental: a daily run reads only the raw records extracted since the last one and appends
    the newly quarantined; its post-hooks delete the rows a newer extraction superseded and mark
    how far raw was read (macro quarantine_post_hooks). Every stream of the source with its
    primary key, as connections.yaml declares them.
-#}
{%- set streams = {
    'users': ['id'],
    'products': ['id'],
    'purchases': ['id'],
} -%}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    indexes=[{'columns': ['raw_record_id']}],
    post_hook=quarantine_post_hooks('shop', streams),
) }}

{{ quarantined_records('shop', streams) }}
