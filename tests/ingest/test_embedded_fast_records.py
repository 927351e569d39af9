"""The embedded runner's fast record path writes the row PyAirbyte's StreamRecord would.

The runner skips StreamRecord for speed (see include/airbyte_runtime/rows.py); this
compares the two, in the embedded runtime's own interpreter (.venv-airbyte), on the cases where
StreamRecord's rules matter: keys in another case than the schema, keys outside the schema
(pruned), missing keys (NULL), a data key named like an Airbyte column (overwritten), nested values.
"""

from __future__ import annotations

import json
import os
import subprocess

from include.pipeline.ingest import embedded
from tests.support import REPO_ROOT

COMPARE = r"""
import importlib.util, json, sys
from types import SimpleNamespace
import sys
# the repository after the venv's own paths: no folder of ours shadows a library
sys.path.append(".")
from include.airbyte_runtime import rows as runner
from airbyte.records import StreamRecord, StreamRecordHandler

schema = {"properties": {"id": {}, "Name": {}, "camelCase": {}, "amount": {}, "nested": {}}}
handler = StreamRecordHandler(json_schema=schema, normalize_keys=True, prune_extra_fields=True)
cases = json.loads(sys.stdin.read())
out = []
for data in cases:
    emitted_at = 1767225600123
    layout = runner.record_layout(handler, tuple(data))
    fast = dict(zip(layout[0], runner.record_row(layout, data, emitted_at)))
    slow = dict(StreamRecord.from_record_message(
        SimpleNamespace(data=data, emitted_at=emitted_at), stream_record_handler=handler))
    slow["_airbyte_extracted_at"] = slow["_airbyte_extracted_at"].isoformat()
    out.append({"fast": fast, "slow": slow, "fast_order": list(fast), "slow_order": list(slow)})
print(json.dumps(out, default=str))
"""

CASES = [
    {"id": 1, "Name": "a", "camelCase": 2, "amount": 1.5, "nested": {"x": [1, "é"], "y": None}},
    {"id": 2, "name": "lower-case key for Name", "extra": 5, "CAMELCASE": 7},
    {"nested": None, "id": 3, "_airbyte_meta": {"from": "the data"}, "_airbyte_raw_id": "x"},
    {},
]


def test_fast_rows_equal_streamrecord_rows_but_for_the_new_raw_id():
    proc = subprocess.run(
        [str(embedded.runtime_python()), "-P", "-c", COMPARE],
        cwd=REPO_ROOT, input=json.dumps(CASES), capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},  # as the runner is started
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout)
    assert len(results) == len(CASES)
    for case, result in zip(CASES, results, strict=True):
        fast, slow = result["fast"], result["slow"]
        assert result["fast_order"] == result["slow_order"], case
        fast_id, slow_id = fast.pop("_airbyte_raw_id"), slow.pop("_airbyte_raw_id")
        assert fast_id != slow_id and len(fast_id) == len(slow_id) == 36, "a fresh UUID per record"
        assert fast == slow, case
    # the rules were really exercised: pruned, re-cased, missing, overwritten
    assert results[1]["fast"]["name"] == "lower-case key for Name" and "extra" not in results[1]["fast"]
    assert results[1]["fast"]["camelcase"] == 7 and results[1]["fast"]["amount"] is None
    assert results[2]["fast"]["_airbyte_meta"] == {}


RAW_IDS = r"""
import importlib.util, json, time, uuid
import sys
# the repository after the venv's own paths: no folder of ours shadows a library
sys.path.append(".")
from include.airbyte_runtime import rows as runner
from uuid_extensions import uuid7str

ids = runner.RawIds()
made = [uuid7str()] + [ids() for _ in range(5000)] + [uuid7str()]  # PyAirbyte's before and after
future = runner.RawIds()
future._stamp = (0x0FFFFFFF, 0xFFFF, 0x7FFF)  # as if the clock had stepped back from there
future._count = future.PER_READING
stepped_back = [future() for _ in range(3)]
print(json.dumps({"made": made, "stepped_back": stepped_back,
                  "versions": sorted({uuid.UUID(i).version for i in made[1:-1]}),
                  "variants": sorted({str(uuid.UUID(i).variant) for i in made[1:-1]})}))
"""


def test_raw_ids_increase_strictly_and_sort_with_pyairbyte_s_own():
    """The runner's raw ids (RawIds) replace PyAirbyte's uuid7str for speed: the same layout, so
    they sort among ids written before; strictly increasing, which the merge relies on (the later
    of two versions extracted together wins), even when the clock steps back."""
    proc = subprocess.run(
        [str(embedded.runtime_python()), "-P", "-c", RAW_IDS],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    made = out["made"]
    assert made == sorted(made) and len(set(made)) == len(made)  # between uuid7str's, in order, unique
    assert out["versions"] == [7] and out["variants"] == ["specified in RFC 4122"]
    stepped = out["stepped_back"]
    assert stepped == sorted(stepped) and stepped[0] > "0fffffff-ffff-7fff", stepped  # past the last, not back
