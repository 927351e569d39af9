"""Transform: the dbt project in include/dbt, rendered into Airflow tasks by Cosmos."""
