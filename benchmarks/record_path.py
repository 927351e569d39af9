"""CPU per record of the embedded runner's record path: PyAirbyte's own vs the fast one.

    .venv-airbyte/bin/python -P benchmarks/record_path.py <connector-output.jsonl> <catalog.json>

Reads a connector's saved `read` output (one Airbyte message per line) and times, in CPU seconds
of this process (so other load on the machine matters little), the work the runner does per
record before the rows reach Postgres:

- pydantic: PyAirbyte's path: `AirbyteMessage.model_validate_json`, a `StreamRecord`, a CSV row;
- runtime: the runtime's own path (include/airbyte_runtime): `messages.read_messages` (orjson for
  RECORD lines), `record_layout`/`record_row` over `tables.StreamKeys`, the same CSV row writer.

The CSV text goes to a null sink in both, so what loading it costs (the stage COPY) is left out.
Save an output with the connector itself, e.g. `.venv-source-faker/bin/source-faker read --config
config.json --catalog catalog.json > out.jsonl` (benchmarks/ingest_throughput.py builds both files).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(REPO_ROOT))  # after the venv's own paths: no folder of ours shadows a library
from include.airbyte_runtime import messages, rows, tables  # noqa: E402


def main() -> int:
    from airbyte.records import StreamRecord, StreamRecordHandler
    from airbyte_protocol.models import AirbyteMessage, Type

    lines = Path(sys.argv[1]).read_text().splitlines()
    catalog = json.loads(Path(sys.argv[2]).read_text())
    handlers = {
        s["stream"]["name"]: StreamRecordHandler(
            json_schema=s["stream"]["json_schema"], normalize_keys=True, prune_extra_fields=True
        )
        for s in catalog["streams"]
    }
    csv = rows.csv_field
    records = [line for line in lines if line.startswith(messages.RECORD_PREFIXES)]

    started = time.process_time()
    for line in records:
        message = AirbyteMessage.model_validate_json(line)
        assert message.type is Type.RECORD
        row = StreamRecord.from_record_message(message.record, stream_record_handler=handlers[message.record.stream])
        ",".join([csv(row.get(c)) for c in row])
    pydantic_s = time.process_time() - started

    layouts: dict = {}
    keys = {
        s["stream"]["name"]: tables.StreamKeys(s["stream"]["json_schema"]["properties"]) for s in catalog["streams"]
    }

    def take_record(stream: str, data: dict, emitted_at: int) -> None:
        key = (stream, tuple(data))
        layout = layouts.get(key) or layouts.setdefault(key, rows.record_layout(keys[stream], key[1]))
        ",".join([csv(v) for v in rows.record_row(layout, data, emitted_at)])

    started = time.process_time()
    for _ in messages.read_messages(iter(records), take_record):
        pass
    fast_s = time.process_time() - started

    n = len(records)
    print(f"{n} records")
    print(
        f"pydantic + StreamRecord + CSV: {pydantic_s:6.2f} CPU s, {pydantic_s / n * 1e6:6.1f} us/record, {n / pydantic_s:9,.0f} records/s"
    )
    print(
        f"runtime (orjson + row) + CSV:  {fast_s:6.2f} CPU s, {fast_s / n * 1e6:6.1f} us/record, {n / fast_s:9,.0f} records/s"
    )
    print(f"speed-up: {pydantic_s / fast_s:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
