"""What the runtime tells the Airflow task: log lines and the write path's seconds per stream.

The task (include/pipeline/ingest/embedded.py) reads the runtime's stdout line by line into its log;
the last line is `RESULT <json>` (main.py). Kept apart so every module can log without importing main.
"""

from __future__ import annotations

PROGRESS_EVERY = 25_000  # records between progress lines in the task log
# Seconds each stream spent loading (COPY into its stage table, then stage -> final table): the
# write path's own share of the sync, reported per stream in RESULT as `load_seconds`.
LOAD_SECONDS: dict[str, float] = {}


def log(message: str) -> None:
    print(f"[embedded-airbyte] {message}", flush=True)


# Records read per stream in this sync (every RECORD the connector sent for it): RESULT's `records`.
RECORDS: dict[str, int] = {}
