"""Observe: pipeline metrics in Postgres (schema in include/sql/metrics), written by the listener
plugin (plugins/metrics_listener.py), task callbacks and the freshness check; read by the Grafana
dashboards (grafana/provisioning) and the local dashboard (dashboard/app.py) through the same
queries in include/sql/dashboards."""
