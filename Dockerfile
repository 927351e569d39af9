# One image for every Airflow component of docker-compose.yaml (api-server, scheduler,
# dag-processor, triggerer, celery workers, airflow-init). The same locks as `make setup`:
# requirements.txt into /opt/stack/.venv with uv, the PyAirbyte runtime and each connector in
# their own venvs, and the dbt manifest Cosmos renders the DAG from. No secret in any layer:
# every password comes from the environment at run time (docker-compose.yaml, `make compose-env`).
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ARG UV_VERSION=0.13.9
ARG AIRFLOW_UID=50000
# uv's cache while building: its default for root, kept between builds by the cache mounts below.
# A build arg, not ENV: nothing of it stays in the image. The tests point it at the host's uv cache
# mounted with `podman build -v` (filled by `make setup`), so the image installs from local wheels.
ARG UV_CACHE_DIR=/root/.cache/uv
ENV DO_NOT_TRACK=1 \
    SCARF_ANALYTICS=false \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false \
    AIRBYTE_OFFLINE_MODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_LINK_MODE=copy \
    STACK_REPO_ROOT=/opt/stack \
    STACK_LOCAL_DIR=/opt/stack/.local \
    AIRFLOW_HOME=/opt/stack/.local/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/stack/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/stack/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    AIRFLOW__USAGE_DATA_COLLECTION__ENABLED=False \
    AIRFLOW__COSMOS__ENABLE_TELEMETRY=False \
    AIRFLOW__COSMOS__ENABLE_WATCHER_RELIABLE_RETRY=False \
    PYTHONPATH=/opt/stack \
    PATH=/opt/stack/.venv/bin:$PATH

RUN pip install --no-cache-dir "uv==${UV_VERSION}" \
 && useradd --uid "${AIRFLOW_UID}" --create-home --home-dir /home/airflow --shell /bin/bash airflow
WORKDIR /opt/stack

# Airflow's environment: its own layer, rebuilt only when the lock changes.
COPY requirements.txt ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv venv -q --python python3.11 .venv \
 && uv pip sync -q --compile-bytecode --python .venv/bin/python requirements.txt

# The PyAirbyte runtime and connector venvs, offline-safe, and the dbt manifest (`make setup`'s
# steps, without generating .env; without Superset's venv: compose's profile `bi` has its own image).
COPY include ./include
RUN --mount=type=cache,target=/root/.cache/uv \
    STACK_SKIP_BI=1 python -m include.pipeline.cli setup-runtime --no-env \
 && rm -rf include/dbt/logs

COPY dags ./dags
COPY plugins ./plugins
COPY airflow_settings.yaml ./
COPY compose/healthcheck.py ./compose/
# The code, the DAGs and the dbt models stay root's, read-only to the runtime user: a task cannot
# rewrite what later tasks run (Cosmos runs dbt in a temporary copy: target/ and logs/ go there).
# Only .local (Airflow's home, the artifacts) is the runtime user's. Compiled here: the runtime user
# cannot write __pycache__ next to the code.
RUN mkdir -p "$AIRFLOW_HOME/logs" \
 && python -m compileall -q include dags plugins \
 && chmod -R u=rwX,go=rX include dags plugins compose airflow_settings.yaml \
 && chown -R airflow: .local \
 && chmod 700 .local "$AIRFLOW_HOME"

USER airflow
EXPOSE 8080
CMD ["airflow", "version"]
