{#-
    The shop's raw records that staging leaves out, with the reason (macro quarantined_records).
    A table rebuilt on each run (one sort of each raw table): which records are quarantined
    depends on the newest extraction of every key. Every stream of the source with its primary
    key, as connections.yaml declares them.
-#}
{{ config(materialized='table') }}

{{ quarantined_records('shop', {
    'users': ['id'],
    'products': ['id'],
    'purchases': ['id'],
}) }}
