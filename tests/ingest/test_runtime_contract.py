"""What the embedded runtime (include/airbyte_runtime/) relies on from the libraries it runs with.

An upgrade of PyAirbyte or airbyte-protocol-models that changes any of these fails here, naming
it, rather than in a sync. Checked in the runtime's own interpreter (.venv-airbyte), once for the
module: each test then reads its part of the answers.

- airbyte-protocol-models: the messages' fields the runtime reads, and that the fast RECORD path
  (messages.py) reads the same stream, data, emitted_at and namespace as the models;
- PyAirbyte's public API: get_source and the Source/cache calls main.py makes, StreamRecordHandler
  and the column names rows.py writes, the Airbyte types rows.py derives casts from;
- PyAirbyte's private names: the write path (postgres.py, stage.py) and the connector's start
  (early.py, messages.py, metadata_cache.py) override or call them, as PyAirbyte has no public
  hook there; each is pinned with the parameters the runtime passes.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from include.pipeline.ingest import embedded
from tests.support import REPO_ROOT

CHECK = r"""
import inspect, json, sys
sys.path.append(".")  # the repository, after the venv's own paths
out = {"protocol": [], "public": [], "private": []}

def need(area, ok, what):
    if not ok:
        out[area].append(what)

def has(area, owner, name, params=None):
    member = getattr(owner, name, None)
    where = f"{getattr(owner, '__name__', owner)}.{name}"
    if member is None:
        out[area].append(f"{where} is gone")
        return
    if params is not None:
        try:
            found = list(inspect.signature(member).parameters)
        except (TypeError, ValueError):
            found = []
        missing = [p for p in params if p not in found]
        need(area, not missing, f"{where} lost parameters {missing} (has {found})")

# -- airbyte-protocol-models ------------------------------------------------------------------------
import orjson
from airbyte_protocol.models import AirbyteCatalog, AirbyteMessage, AirbyteStreamStatus, ConnectorSpecification, Type
from include.airbyte_runtime import messages

for name in ("RECORD", "STATE", "LOG", "TRACE", "SPEC", "CATALOG"):
    need("protocol", hasattr(Type, name), f"Type.{name} is gone")
need("protocol", hasattr(AirbyteStreamStatus, "COMPLETE"), "AirbyteStreamStatus.COMPLETE is gone")
line = json.dumps({"type": "RECORD", "record": {"stream": "users", "namespace": "shop",
                   "data": {"id": 1, "Name": "é"}, "emitted_at": 1767225600123}}, separators=(",", ":"))
need("protocol", line.startswith(messages.RECORD_PREFIXES), "a compact RECORD line misses the fast path's prefixes")
model = AirbyteMessage.model_validate_json(line)
fast = orjson.loads(line)["record"]
need("protocol", model.type is Type.RECORD, "a RECORD line does not parse as Type.RECORD")
for field in ("stream", "data", "emitted_at", "namespace"):
    need("protocol", getattr(model.record, field) == fast[field], f"record.{field} differs from the fast path's")
trace = AirbyteMessage.model_validate_json(json.dumps({"type": "TRACE", "trace": {"type": "STREAM_STATUS",
    "emitted_at": 1, "stream_status": {"stream_descriptor": {"name": "users"}, "status": "COMPLETE"}}}))
need("protocol", trace.trace.stream_status.stream_descriptor.name == "users", "trace.stream_status.stream_descriptor.name")
need("protocol", trace.trace.stream_status.status is AirbyteStreamStatus.COMPLETE, "trace.stream_status.status")
log = AirbyteMessage.model_validate_json('{"type":"LOG","log":{"level":"ERROR","message":"m"}}')
need("protocol", str(log.log.level.value) == "ERROR" and log.log.message == "m", "log.level.value / log.message")
state = AirbyteMessage.model_validate_json(json.dumps({"type": "STATE", "state": {"type": "STREAM",
    "stream": {"stream_descriptor": {"name": "users"}, "stream_state": {"c": 1}}}}))
need("protocol", state.state.stream.stream_descriptor.name == "users", "state.stream.stream_descriptor.name")
spec = ConnectorSpecification.model_validate({"connectionSpecification": {"type": "object"}})
catalog = AirbyteCatalog.model_validate({"streams": [{"name": "users", "json_schema": {},
                                                      "supported_sync_modes": ["incremental"]}]})
need("protocol", "connectionSpecification" in spec.model_dump(mode="json", by_alias=True), "ConnectorSpecification")
need("protocol", catalog.streams[0].name == "users", "AirbyteCatalog.streams[].name")

# -- PyAirbyte, public ------------------------------------------------------------------------------
import airbyte
from airbyte import constants, exceptions, records, types
from airbyte.caches import PostgresCache
from airbyte.sources.base import Source
from include.airbyte_runtime import rows

has("public", airbyte, "get_source", ["name", "config", "local_executable", "install_if_missing"])
for name, params in {"select_streams": ["streams"], "set_cursor_key": ["stream_name", "cursor_key"],
                     "set_primary_key": ["stream_name", "primary_key"],
                     "read": ["cache", "streams", "write_strategy", "force_full_refresh"]}.items():
    has("public", Source, name, params)
fields = PostgresCache.model_fields
for name in ("host", "port", "username", "password", "database", "schema_name", "cache_dir"):
    need("public", name in fields, f"PostgresCache has no field {name}")
for name in ("PyAirbyteDataLossWarning", "AirbyteConnectorFailedError", "AirbyteSubprocessFailedError"):
    has("public", exceptions, name)
need("public", (constants.AB_RAW_ID_COLUMN, constants.AB_EXTRACTED_AT_COLUMN, constants.AB_META_COLUMN)
     == ("_airbyte_raw_id", "_airbyte_extracted_at", "_airbyte_meta"), "the Airbyte columns were renamed")
handler = records.StreamRecordHandler(json_schema={"properties": {"Id": {}}}, normalize_keys=True,
                                      prune_extra_fields=True)
need("public", "id" in handler.index_keys and handler.to_index_case("Id") == "id", "StreamRecordHandler keys")
need("public", set(rows.CASTS) <= set(types.CONVERSION_MAP), "a cast for an Airbyte type PyAirbyte dropped")
definitions = [{"type": "integer"}, {"type": ["null", "number"]}, {"type": "boolean"}, {"type": "object"},
               {"type": "array", "items": {"type": "string"}}, {"type": "string", "format": "date-time"},
               {"type": "string", "format": "date"}, {"type": "string"}, {"type": "string", "airbyte_type": "integer"}]
for definition in definitions:  # the column PyAirbyte creates is the type the casts assume
    need("public", types._get_airbyte_type(definition)[0] == rows.airbyte_type(definition),
         f"Airbyte type of {definition}: PyAirbyte {types._get_airbyte_type(definition)[0]}, ours {rows.airbyte_type(definition)}")

# -- PyAirbyte, private names the runtime overrides or calls -----------------------------------------
from airbyte._connector_base import ConnectorBase
from airbyte._executors import base as executors
from airbyte._processors.sql.postgres import PostgresSqlProcessor
from airbyte._writers.file_writers import FileWriterBase

need("private", hasattr(executors, "subprocess") and hasattr(executors.subprocess, "Popen"),
     "airbyte._executors.base no longer starts connectors with its module's subprocess.Popen (early.py)")
has("private", executors, "_stream_from_subprocess")
has("private", ConnectorBase, "_execute", ["args", "stdin", "progress_tracker"])
has("private", ConnectorBase, "_peek_airbyte_message", ["message"])
has("private", ConnectorBase, "_print_info_message")
for owner, name in ((ConnectorBase, "_spec"), (Source, "_discovered_catalog")):
    need("private", f"self.{name}" in inspect.getsource(owner), f"{owner.__name__}.{name} is gone (metadata_cache.py)")
for name, params in {
    "_write_files_to_new_table": ["files", "stream_name", "batch_id"],
    "_emulated_merge_temp_table_to_final_table": ["stream_name", "temp_table_name", "final_table_name"],
    "_append_temp_table_to_final_table": ["temp_table_name", "final_table_name", "stream_name"],
    "_swap_temp_table_with_final_table": ["stream_name", "temp_table_name", "final_table_name"],
    "_get_sql_column_definitions": ["stream_name"],
    "_create_table_for_loading": ["stream_name", "batch_id"],
    "_drop_temp_table": ["table_name", "if_exists"],
    "process_airbyte_messages": ["messages", "write_strategy", "progress_tracker"],
    "process_record_message": ["record_msg", "stream_record_handler", "progress_tracker"],
}.items():
    has("private", PostgresSqlProcessor, name, params)
has("private", FileWriterBase, "_open_new_file", ["file_path"])
has("private", FileWriterBase, "_write_record_dict", ["record_dict", "open_file_writer"])
has("private", FileWriterBase, "_new_batch", ["stream_name", "progress_tracker"])
need("private", "_active_batches" in inspect.getsource(FileWriterBase), "FileWriterBase._active_batches is gone")
need("private", hasattr(FileWriterBase, "MAX_BATCH_SIZE"), "FileWriterBase.MAX_BATCH_SIZE is gone")
need("private", "_sql_processor_class" in PostgresCache.__private_attributes__ or
     hasattr(PostgresCache, "_sql_processor_class"), "PostgresCache._sql_processor_class is gone")
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def contract() -> dict:
    proc = subprocess.run(
        [str(embedded.runtime_python()), "-P", "-c", CHECK], capture_output=True, text=True, cwd=REPO_ROOT,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "DO_NOT_TRACK": "1", "AIRBYTE_OFFLINE_MODE": "1"},
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, f"the contract check failed to run:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_protocol_messages_carry_the_fields_the_runtime_reads(contract):
    assert contract["protocol"] == []


def test_pyairbyte_s_public_api_the_runtime_calls_is_unchanged(contract):
    assert contract["public"] == []


def test_pyairbyte_s_private_names_the_write_path_overrides_are_unchanged(contract):
    assert contract["private"] == []


RUNTIME = REPO_ROOT / "include" / "airbyte_runtime"
# The runtime's modules that still reach PyAirbyte's private names (no public hook: see their
# docstrings and docs/ingest.md); the test above pins each name they use.
PRIVATE_USERS = {"early.py", "main.py", "messages.py", "metadata_cache.py", "postgres.py", "stage.py"}


def test_each_runtime_module_holds_one_idea_in_a_few_hundred_lines():
    sizes = {path.name: len(path.read_text().splitlines()) for path in RUNTIME.glob("*.py")}
    assert {"connector.py", "messages.py", "catalog.py", "postgres.py", "lake.py", "locks.py", "main.py"} <= set(sizes)
    assert max(sizes.values()) <= 400, sizes


def test_only_the_named_modules_reach_pyairbyte_private_names():
    import re

    private = re.compile(
        r"from airbyte\._|import airbyte\._|noqa: SLF001|\b(source|processor|writer|batch)\._[a-z]"
        r"|self\._(peek_airbyte_message|print_info_message|last_log_messages)\b"
    )
    users = {
        path.name
        for path in RUNTIME.glob("*.py")
        if any(private.search(line) and "_run_exitfuncs" not in line for line in path.read_text().splitlines())
    }
    assert users == PRIVATE_USERS, f"a new module reaches PyAirbyte's private names: {sorted(users - PRIVATE_USERS)}"
