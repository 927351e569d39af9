"""The demo's simulated shop (shop.py) and its nightly exports (exports.py): test and demo data,
not part of the pipeline (include/pipeline). The DAG's `shop_export` step runs it only when a
source of connections.yaml declares a `simulator:` block."""
