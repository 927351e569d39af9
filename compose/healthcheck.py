"""Healthchecks of the Airflow containers, cheap enough to run every few seconds on a busy box.

`airflow jobs check` imports all of Airflow: 30-70 s of CPU per check on a loaded 2-core machine
(measured), longer than its own timeout. This reads the metadata DB with psycopg2 alone.

    python compose/healthcheck.py job TriggererJob      a running job of this host, heartbeat < 60 s old
    python compose/healthcheck.py url http://127.0.0.1:8080/api/v2/monitor/health      HTTP 2xx
    python compose/healthcheck.py listening 8793        something answers HTTP on that port (any status)

Arguments never contain spaces: podman's Docker API splits a CMD healthcheck's arguments on them.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.error
import urllib.request


def job(job_type: str) -> str | None:
    import psycopg2

    dsn = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("+psycopg2", "", 1)
    with psycopg2.connect(dsn, connect_timeout=5) as conn, conn.cursor() as cur:
        cur.execute(
            "select count(*) from job where job_type = %s and hostname = %s and state = 'running'"
            " and latest_heartbeat > now() - interval '60 seconds'",
            (job_type, socket.getfqdn()),
        )
        (alive,) = cur.fetchone()
    return None if alive else f"no running {job_type} of {socket.getfqdn()} with a heartbeat in the last 60 s"


def url(address: str, *, any_status: bool = False) -> str | None:
    try:
        with urllib.request.urlopen(address, timeout=5):  # noqa: S310 - 127.0.0.1 inside the container
            return None
    except urllib.error.HTTPError as exc:
        return None if any_status else f"{address}: HTTP {exc.code}"
    except OSError as exc:
        return f"{address}: {exc}"


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "job":
        problem = job(argv[1])
    elif len(argv) == 2 and argv[0] == "url":
        problem = url(argv[1])
    elif len(argv) == 2 and argv[0] == "listening":
        problem = url(f"http://127.0.0.1:{int(argv[1])}/", any_status=True)
    else:
        problem = "usage: healthcheck.py job <JobType> | url <http://...> | listening <port>"
    if problem:
        print(problem)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
