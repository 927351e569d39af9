"""The project's command line: `python -m include.pipeline.cli <command>` (the Makefile calls it).

setup-runtime   generate .env secrets, install the PyAirbyte runtime and connector venvs, dbt parse
services        start | stop | status | url of the embedded services: Postgres, S3 (prints their URLs)
upload SRC DEST copy a local file or folder into the stack's S3 at DEST=s3://<bucket>/<prefix>/ (services/upload.py)
settings        load airflow_settings.yaml into Airflow
airflow ...     run any airflow command with the project's environment
demo            services + db migrate + settings + the daily DAG, one line per task, a summary (--days N, --full-refresh, --reset-ingest)
up              services + Airflow (api-server, scheduler, dag-processor, triggerer) on 127.0.0.1
check-connections / catalogs   validate include/airbyte/connections.yaml / refresh stream snapshots
scaffold-source --source NAME  write the dbt staging layer of a source from connections.yaml (never overwrites)
airbyte-plan / airbyte-apply   show / make the changes that bring an Airbyte server to connections.yaml

One module per responsibility: venvs.py (setup-runtime), services.py, airflow.py (settings,
airflow, up), supervisor.py (up's process supervisor), demo.py with dag_test.py, report.py and
summary.py, connections.py. The embedded services themselves: services/stack.py; the
environment every child gets: environments.stack_env().
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from include.pipeline.services import ServiceError


def parser() -> argparse.ArgumentParser:
    from include.pipeline.cli import airflow, connections, demo, services, venvs

    top = argparse.ArgumentParser(
        prog="stack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = top.add_subparsers(dest="command", required=True)
    p = sub.add_parser("setup-runtime")
    p.add_argument("--no-env", action="store_true", help="do not generate .env (a container image build)")
    p.set_defaults(func=venvs.cmd_setup_runtime)
    p = sub.add_parser("services")
    p.add_argument("action", choices=["start", "stop", "status", "url"])
    p.set_defaults(func=services.cmd_services)
    p = sub.add_parser("upload", help="copy a local file or folder into the stack's S3")
    p.add_argument("src", help="a file or a folder (copied recursively, keeping relative paths)")
    p.add_argument("dest", help="s3://<bucket>/<prefix>/ (the bucket is created when missing)")
    p.set_defaults(func=services.cmd_upload)
    sub.add_parser("settings").set_defaults(func=airflow.cmd_settings)
    p = sub.add_parser("airflow")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=airflow.cmd_airflow)
    p = sub.add_parser("demo")
    p.add_argument("--date", help=f"last logical date YYYY-MM-DD (default: {demo.DEMO_DATE})")
    p.add_argument("--days", type=int, default=1, help="run N consecutive days ending at --date (default 1)")
    p.add_argument(
        "--full-refresh", action="store_true", help="rebuild dbt's incremental models (DAG param full_refresh=true)"
    )
    p.add_argument(
        "--reset-ingest",
        action="store_true",
        help="re-export and re-read every stream from scratch (DAG param reset_ingest=true)",
    )
    p.set_defaults(func=demo.cmd_demo)
    sub.add_parser("up").set_defaults(func=airflow.cmd_up)
    p = sub.add_parser("check-connections")
    p.add_argument("--file", default=None)
    p.set_defaults(func=connections.cmd_check_connections)
    sub.add_parser("catalogs").set_defaults(func=connections.cmd_catalogs)
    p = sub.add_parser("scaffold-source")
    p.add_argument("--source", required=True, help="a source of connections.yaml")
    p.add_argument("--file", default=None)
    p.set_defaults(func=connections.cmd_scaffold_source)
    for name in ("airbyte-plan", "airbyte-apply"):
        p = sub.add_parser(name)
        p.add_argument("--file", default=None)
        p.set_defaults(func=connections.cmd_airbyte)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as exc:
        print(f"error: `{' '.join(map(str, exc.cmd))}` failed with exit {exc.returncode}", file=sys.stderr)
        return exc.returncode or 1
    except KeyboardInterrupt:
        return 130
