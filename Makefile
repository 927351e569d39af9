# The stack's front door. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
# uv is installed with pip when absent; called as a module so PATH does not matter.
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
VENV := .venv
PY := $(VENV)/bin/python
STACK := $(PY) -m include.pipeline.cli
DATE ?=
DAYS ?= 3
FULL_REFRESH ?=
RESET_INGEST ?=
export STACK_UV := $(UV)
export DO_NOT_TRACK := 1

.PHONY: help setup services stop status warehouse-url settings demo up password test test-fast lint lock \
        check-connections scaffold-source catalogs clean airbyte-plan airbyte-apply

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-dev.txt
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install -q uv
	@test -x $(PY) || $(UV) venv -q --python 3.11 $(VENV)
	@echo "==> $(VENV): installing requirements-dev.txt"
	@$(UV) pip sync -q --compile-bytecode --python $(PY) requirements-dev.txt
	@touch $@

setup: $(VENV)/.installed ## Install everything (venvs, connectors, dbt manifest, .env secrets); fast when done
	@$(STACK) setup-runtime

services: setup ## Start the embedded services (Postgres, S3 for the shop exports; 127.0.0.1) and print their URLs
	@$(STACK) services start

stop: ## Stop the embedded services
	@if [ -x $(PY) ]; then $(STACK) services stop; else echo "==> nothing to stop ($(VENV) does not exist: make setup was never run)"; fi

status: ## Are the embedded services running?
	@$(STACK) services status

warehouse-url: ## Print the warehouse URL with its password (for psql "$(make -s warehouse-url)")
	@$(STACK) services url

settings: services ## Migrate Airflow's metadata DB and load airflow_settings.yaml
	@$(STACK) settings

demo: setup ## The daily pipeline for DAYS days (default 3) ending at DATE; FULL_REFRESH=1 rebuilds dbt's models, RESET_INGEST=1 re-reads every stream (on the first day)
	@$(STACK) demo $(if $(DATE),--date $(DATE)) --days $(DAYS)$(if $(FULL_REFRESH), --full-refresh)$(if $(RESET_INGEST), --reset-ingest)

up: setup ## Services + Airflow web UI on http://127.0.0.1:8080 (Ctrl-C to stop)
	@$(STACK) up

password: ## Print the Airflow web UI login (and Superset's, `make bi`)
	@echo "user: admin  password: $$(grep ^AIRFLOW_ADMIN_PASSWORD= .env | cut -d= -f2-)"
	@if grep -q ^SUPERSET_ADMIN_PASSWORD= .env 2>/dev/null; then echo "Superset (make bi)  user: admin  password: $$(grep ^SUPERSET_ADMIN_PASSWORD= .env | cut -d= -f2-)"; fi

test: setup ## Run the test suite (starts its own Postgres on a free port; needs Debian's chromium and podman: installed as root)
	@.ci/ensure-chromium
	@.ci/ensure-podman
	@$(PY) -m pytest

test-fast: setup ## The inner loop: every test but the whole DAG runs and the containers (pytest -m "not e2e and not compose"); CI runs `make test`
	@$(PY) -m pytest -m "not e2e and not compose" $(PYTEST_ARGS)

lint: $(VENV)/.installed ## ruff (with Airflow's AIR rules) and sqlfluff (dbt templater)
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(PY) -m include.pipeline.transform.lint

check-connections: $(VENV)/.installed ## Validate include/airbyte/connections.yaml
	@$(STACK) check-connections

airbyte-plan: $(VENV)/.installed ## Show what airbyte-apply would change on the Airbyte server (airbyte_default)
	@$(STACK) airbyte-plan

airbyte-apply: $(VENV)/.installed ## Create/update the declared sources, destinations, connections on Airbyte, by name
	@$(STACK) airbyte-apply

scaffold-source: $(VENV)/.installed ## Write the dbt staging models of a source of connections.yaml (SOURCE=<name>; never overwrites a file)
	@test -n "$(SOURCE)" || { echo "usage: make scaffold-source SOURCE=<a source of include/airbyte/connections.yaml>" >&2; exit 2; }
	@$(STACK) scaffold-source --source "$(SOURCE)"

catalogs: setup ## Refresh include/airbyte/catalogs from the installed connectors (`discover`)
	@$(STACK) catalogs

.PHONY: bench
bench: setup ## Benchmark the stack at 100k and 1M orders under the real scheduler (SIZES="100000 1000000"; ~45 min; 10M on its own: SIZES=10000000, ~1 h)
	@$(PY) benchmarks/scale.py --sizes $(or $(SIZES),100000 1000000)

.PHONY: bench-dbt
bench-dbt: setup ## dbt alone on a synthetic shop in raw (CUSTOMERS=1100000): initial build, a day of 1% new + 1% changed, a full rebuild; the day/full ratio (~15 min)
	@$(PY) benchmarks/dbt_scale.py --customers $(or $(CUSTOMERS),1100000) --share 0.02 --days 1

.PHONY: compose-env compose-up compose-down compose-logs
# docker compose v2, else docker-compose, else podman-compose (docs/containers.md); evaluated when used
COMPOSE = $(shell if docker compose version >/dev/null 2>&1; then echo "docker compose"; \
            elif command -v docker-compose >/dev/null 2>&1; then echo docker-compose; else echo podman-compose; fi)

compose-env: $(VENV)/.installed ## Generate the secrets docker-compose.yaml needs into .env (missing ones only)
	@$(PY) -m include.pipeline.services.containers env

compose-up: compose-env ## Build the image and start the stack as containers (PROFILES="celery grafana bi", WORKERS=2)
	@$(COMPOSE) $(foreach p,$(PROFILES),--profile $(p)) up -d --build $(if $(filter celery,$(PROFILES)),--scale airflow-worker=$(or $(WORKERS),2))
	@echo "Airflow on http://127.0.0.1:$${AIRFLOW_PORT:-8080}  user: admin  password: \`make password\`"

compose-down: ## Stop the containers (their volumes stay; VOLUMES=1 deletes them too)
	@$(COMPOSE) --profile celery --profile grafana --profile bi down $(if $(VOLUMES),-v)

compose-logs: ## Follow the containers' logs (SERVICE=airflow-scheduler for one)
	@$(COMPOSE) logs -f --tail=100 $(SERVICE)

.PHONY: dashboard dashboards-json
dashboard: setup ## Local dashboard (Streamlit) on http://127.0.0.1:8501 over include/sql/dashboards (DASHBOARD_PORT)
	@$(PY) -m include.pipeline.observe.serve

dashboards-json: $(VENV)/.installed ## Regenerate grafana/provisioning/dashboards/*.json from include/sql/dashboards
	@$(PY) -m include.pipeline.observe.dashboards

.PHONY: bi
bi: setup ## Apache Superset over the marts and metrics on http://127.0.0.1:8088 (BI_PORT; Ctrl-C to stop; docs/bi.md)
	@$(PY) -m include.bi.run

lock: ## Re-resolve every requirements lock file (after editing a *.in file)
	$(UV) pip compile -q requirements-dev.in -o requirements-dev.txt --python-version 3.11
	$(UV) pip compile -q requirements.in -c requirements-dev.txt -o requirements.txt --python-version 3.11
	# A connector whose PyPI metadata is broken gets <connector>.overrides.txt (uv --override) beside its .in
	for f in include/airbyte/requirements/*.in; do o=$${f%.in}.overrides.txt; \
	  $(UV) pip compile -q $$f -o $${f%.in}.txt --python-version 3.11 $$(test -f $$o && echo --override $$o); done
	$(UV) pip compile -q include/bi/requirements/superset.in -o include/bi/requirements/superset.txt --python-version 3.11

.PHONY: upload
upload: $(VENV)/.installed ## Copy local files into the stack's S3: make upload SRC=<file or folder> DEST=s3://<bucket>/<prefix>/
	@$(STACK) upload "$(SRC)" "$(DEST)"

.PHONY: lake-sql
lake-sql: $(VENV)/.installed ## DuckDB over the lake: a view per mart over its committed partitions (SQL="select ..." runs one query)
	@$(PY) -m include.pipeline.publish.lake_sql $(if $(SQL),--sql "$(SQL)")

clean: stop ## Stop services and delete local state (.local: warehouse data, Airflow DB, logs); works on a fresh clone
	rm -rf .local include/dbt/target include/dbt/logs
