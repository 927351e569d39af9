"""`services start | stop | status | url`: the embedded Postgres and S3 (services/stack.py); `upload`
(services/upload.py): local files into the stack's S3."""

from __future__ import annotations

import argparse

from include.pipeline import endpoints, settings
from include.pipeline.cli._common import say
from include.pipeline.services import stack


def print_urls() -> None:
    wh = endpoints.Warehouse.from_settings()
    print(f"  warehouse Postgres : {wh.uri(hide_password=True)}")
    print(
        f'                       (password: WAREHOUSE_PASSWORD in {settings.ENV_FILE}; psql "$(make -s warehouse-url)")'
    )
    exports = endpoints.S3.from_settings()
    print(f"  shop exports S3    : {exports.endpoint or '(not started)'}  bucket s3://{settings.EXPORTS_BUCKET}/")
    from include.pipeline.publish.lake import bucket as lake_bucket

    print(f"  lake (same S3)     : s3://{lake_bucket()}/marts/<mart>/ds=<ds>/, s3://{lake_bucket()}/artifacts/")
    print(f"                       (keys: S3_ACCESS_KEY, S3_SECRET_KEY in {settings.ENV_FILE})")


def status() -> int:
    """`make status`: 0 when the warehouse is up (or is yours), 3 when the embedded one is stopped."""
    if stack.postgres_is_yours():
        wh = endpoints.Warehouse.from_settings()
        print(f"postgres: yours (WAREHOUSE_HOST), {wh.host}:{wh.port}/{wh.database}: not started or stopped here")
        running = True
    else:
        found = stack.postgres().running_pid_and_port()
        print(f"postgres: {f'running (pid {found[0]}, port {found[1]})' if found else 'stopped'}")
        running = found is not None
    server = stack.s3()
    if server is None:
        print(f"s3: yours (S3_ENDPOINT), {settings.setting('S3_ENDPOINT')}: not started or stopped here")
    else:
        pid = server.running_pid()
        print(f"s3: {f'running (pid {pid}, {server.endpoint})' if pid and server.ports else 'stopped'}")
    if running:
        print_urls()
    return 0 if running else 3


def cmd_services(args: argparse.Namespace) -> int:
    if args.action == "start":
        stack.start_services()
        say("services are up")
        print_urls()
    elif args.action == "stop":
        for line in stack.stop_services():
            say(line)
    elif args.action == "url":
        print(endpoints.Warehouse.from_settings().uri())
    else:
        return status()
    return 0


def cmd_upload(args: argparse.Namespace) -> int:
    from include.pipeline.services.upload import upload

    upload(args.src, args.dest)  # an UploadError is a ServiceError: main() prints it in one line, exits 2
    return 0
