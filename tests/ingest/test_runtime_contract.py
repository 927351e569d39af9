"""What the embedded runtime (include/airbyte_runtime/) relies on from the libraries it runs with.

An upgrade of airbyte-protocol-models or jsonschema that changes any of these fails here, naming
it, rather than in a sync. Checked in the runtime's own interpreter (.venv-airbyte), once for the
module: each test then reads its part of the answers.

- airbyte-protocol-models: the messages and fields the runtime drives a connector with (RECORD on
  the fast path read as the models read it, STATE as stored and handed back, LOG, TRACE errors and
  stream statuses, SPEC and CATALOG answers);
- jsonschema: the config checked against the connector's spec;
- the warehouse layout PyAirbyte made (names, column types), which tables.py keeps: compared with
  PyAirbyte's public records/types modules while it is installed, so existing warehouses carry on.
The runtime imports no PyAirbyte module at all (the last test).
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
out = {"protocol": [], "jsonschema": [], "layout": []}

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

# -- the protocol messages the runtime drives the connector with (sync.py, state.py, metadata_cache.py) --
from airbyte_protocol.models import AirbyteStateMessage, AirbyteStateType
from include.airbyte_runtime import state as stored

error = AirbyteMessage.model_validate_json(json.dumps({"type": "TRACE", "trace": {"type": "ERROR", "emitted_at": 1,
    "error": {"message": "refused", "failure_type": "config_error"}}}))
need("protocol", error.trace.error is not None and error.trace.error.message == "refused", "trace.error.message")
need("protocol", error.trace.stream_status is None, "a TRACE error carries no stream_status")
log = AirbyteMessage.model_validate_json('{"type":"LOG","log":{"level":"ERROR","message":"m","stack_trace":"t"}}')
need("protocol", log.log.stack_trace == "t", "log.stack_trace")
need("protocol", state.state.type is AirbyteStateType.STREAM and stored.stream_of(state.state) == "users",
     "state.type / the stream a STATE message belongs to")
glob = AirbyteStateMessage.model_validate({"type": "GLOBAL", "global": {"stream_states": []}})
need("protocol", stored.stream_of(glob) == "_GLOBAL", "a GLOBAL state is stored as _GLOBAL")
dumped = json.loads(state.state.model_dump_json())
need("protocol", dumped["stream"]["stream_state"] == {"c": 1} and dumped["type"] == "STREAM",
     "AirbyteStateMessage.model_dump_json (the stored state_json)")
need("protocol", stored.without_nulls(dumped) == {"type": "STREAM", "stream": {"stream_descriptor": {"name": "users"},
     "stream_state": {"c": 1}}}, "the state handed back to the connector")
answers = "\n".join([json.dumps({"type": "SPEC", "spec": {"connectionSpecification": {"type": "object"}}}),
                     json.dumps({"type": "CATALOG", "catalog": {"streams": [{"name": "users", "json_schema": {},
                                 "supported_sync_modes": ["incremental"]}]}})])
need("protocol", messages.first_answer(answers, "SPEC")["connectionSpecification"] == {"type": "object"},
     "the SPEC message's spec")
need("protocol", messages.first_answer(answers, "CATALOG")["streams"][0]["name"] == "users",
     "the CATALOG message's catalog")
got = []
rest = list(messages.read_messages(iter([line + "\n", "a log line\n", '{"type":"LOG","log":{"level":"INFO","message":"x"}}']),
                                   lambda *record: got.append(record)))
need("protocol", got == [("users", {"id": 1, "Name": "\u00e9"}, 1767225600123)], "records reach the writer")
need("protocol", rest[0] == "a log line" and rest[1].type is Type.LOG, "non-record lines come out in order")

# -- jsonschema: the config is checked against the connector's spec (catalog.check_config) ---------
import jsonschema
from include.airbyte_runtime import catalog as configured

need("jsonschema", callable(getattr(jsonschema.validators, "validator_for", None)), "jsonschema.validators.validator_for")
need("jsonschema", callable(getattr(jsonschema.exceptions, "best_match", None)), "jsonschema.exceptions.best_match")
try:
    configured.check_config({"connector": "source-x", "config": {"key": 42}},
                            {"connectionSpecification": {"properties": {"key": {"type": "string"}}}})
    need("jsonschema", False, "a config its spec refuses was accepted")
except ValueError as e:
    need("jsonschema", "key fails type" in str(e) and "42" not in str(e), f"the refusal names where, not the value: {e}")

# -- PyAirbyte's layout, kept for the warehouses it wrote (tables.py); PyAirbyte is only compared with --
from airbyte import records, types
from include.airbyte_runtime import rows, tables

handler = records.StreamRecordHandler(json_schema={"properties": {}}, normalize_keys=True, prune_extra_fields=True)
for name in ("Id", "Hello World!", "1b", "x" * 70, "caf\u00e9", "a-b.c"):
    need("layout", tables.normalize(name) == handler.to_index_case(name)[:63], f"the name {name!r} normalizes otherwise")
need("layout", set(rows.CASTS) <= set(types.CONVERSION_MAP), "a cast for an Airbyte type PyAirbyte dropped")
definitions = [{"type": "integer"}, {"type": ["null", "number"]}, {"type": "boolean"}, {"type": "object"},
               {"type": "array", "items": {"type": "string"}}, {"type": "string", "format": "date-time"},
               {"type": "string", "format": "date"}, {"type": "string"}, {"type": "string", "airbyte_type": "integer"},
               {"type": "string", "format": "time"}, {"type": ["null", "string", "integer"]}, {},
               {"type": "string", "format": "date", "airbyte_type": "unknown_kind"}, {"type": "array", "airbyte_type": "x"}]
for definition in definitions:  # the column type PyAirbyte created is the one tables.py creates
    theirs = str(types.SQLTypeConverter().to_sql_type(definition))
    need("layout", tables.sql_type(definition) == theirs, f"column type of {definition}: PyAirbyte {theirs}, ours {tables.sql_type(definition)}")
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


def test_the_config_check_uses_jsonschema_s_public_api(contract):
    assert contract["jsonschema"] == []


def test_tables_keep_the_names_and_types_pyairbyte_gave_them(contract):
    assert contract["layout"] == []


RUNTIME = REPO_ROOT / "include" / "airbyte_runtime"


def test_each_runtime_module_holds_one_idea_in_a_few_hundred_lines():
    sizes = {path.name: len(path.read_text().splitlines()) for path in RUNTIME.glob("*.py")}
    assert {"connector.py", "messages.py", "catalog.py", "destination_postgres.py", "lake.py", "locks.py"} <= set(sizes)
    assert max(sizes.values()) <= 300, sizes


def test_the_runtime_does_not_import_pyairbyte():
    """The runtime drives connectors over the published protocol: PyAirbyte is no part of it."""
    import re

    pyairbyte = re.compile(r"^\s*(from airbyte(\.| import)|import airbyte\b)")
    users = {
        f"{path.name}:{n}"
        for path in RUNTIME.glob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pyairbyte.match(line)
    }
    assert users == set(), f"runtime modules import PyAirbyte: {sorted(users)}"
