"""An OpenLineage transport that appends every event, as one JSON line, to a file per day.

`.local/lineage/<YYYY-MM-DD>.jsonl` (the event's day, UTC): Airflow's tasks run in parallel
processes, so each line is written under an exclusive lock (a multi-kilobyte line written by two
processes at once would interleave). Readers (the dashboard's lineage page, the tests) read whole
lines. Configured by include/pipeline/lineage/config.py; any OpenLineage transport can replace it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

import attr
from openlineage.client.serde import Serde
from openlineage.client.transport.transport import Config, Transport


@attr.define
class JsonLinesConfig(Config):
    folder: str

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> JsonLinesConfig:
        if not params.get("folder"):
            raise ValueError("the JSON lines transport needs `folder` (where the .jsonl files go)")
        return cls(folder=str(params["folder"]))


class JsonLinesTransport(Transport):
    kind = "jsonlines"
    config_class = JsonLinesConfig

    def __init__(self, config: JsonLinesConfig) -> None:
        self.folder = Path(config.folder)

    def path_for(self, event) -> Path:
        day = str(getattr(event, "eventTime", "") or "")[:10] or "undated"
        return self.folder / f"{day}.jsonl"

    def emit(self, event) -> None:
        path = self.path_for(event)
        path.parent.mkdir(parents=True, exist_ok=True)
        line = (Serde.to_json(event) + "\n").encode()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
        finally:
            os.close(fd)  # closing releases the lock
