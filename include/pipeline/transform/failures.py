"""dbt failures that a retry cannot fix, and what fixes them.

A model whose SQL does not compile, an incremental model whose columns changed since its table was
built (`on_schema_change: fail`), a model that breaks its enforced contract: dbt fails them the
same way on every try. Retried (the DAG gives every task two retries, 30 s apart), each cost a
minute of tries that could not pass, and the task's log said only that the node failed. Here the
producer inspects dbt's own result objects once the build has ended (`Producer.
handle_exception_dbt_runner`, include/pipeline/transform/producer.py): when a node failed in one of
these ways, it pushes what failed, dbt's own message and the fix as the XCom `XCOM_KEY`, and fails
with AirflowFailException (no retry). The node's task, its tests' task and the tasks of the nodes
dbt skipped because of it read that XCom and fail at once with the same message; `make demo`'s
summary (include/pipeline/cli/report.py) prints it.

Anything else (a lost connection, a lock timeout, a failing data test) keeps its retries.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

XCOM_KEY = "dbt_failures_a_retry_cannot_fix"

FULL_REFRESH = (
    "rebuild it with a full refresh: `make demo DATE=<the run's date> DAYS=1 FULL_REFRESH=1`, or trigger the DAG with the param "
    "full_refresh=true (the incremental models are rebuilt from the raw tables; the ingest keeps its state). "
    "To keep the table instead, cast the column in the model to the type the table has"
)
CONTRACT = (
    "make the model's columns and its contract agree (name, data_type and number of columns: the table "
    "above; the contract is in the model's yml, models/marts/<mart>.yml), then `make setup` and run again"
)
CONSTRAINT = (
    "rows break a constraint of the model's contract (not null, unique, primary key): fix the model or the "
    "data it reads; a retry fails the same way"
)
COMPILE = (
    "fix the model's SQL or Jinja (the message names the file); `dbt compile --select <model>` shows the "
    "error without running anything; then `make setup` (it parses the project again) and run again"
)

# (kind, what in dbt's message says so, the fix), the first match wins: dbt reports a schema
# change and a contract as compilation errors too.
KINDS: list[tuple[str, re.Pattern[str], str]] = [
    ("incremental schema out of sync", re.compile(r"source and target schemas on this incremental model are out of sync"), FULL_REFRESH),
    ("contract violated", re.compile(r"enforced contract that failed"), CONTRACT),
    ("constraint violated", re.compile(r"violates (not-null|check|unique|foreign key|exclusion) constraint"), CONSTRAINT),
    ("compilation error", re.compile(r"^\s*(Compilation|Parsing) Error\b"), COMPILE),
]  # fmt: skip

FAILED = {"error", "fail", "runtime error"}
SKIPPED = {"skipped"}
TESTS = {"test", "unit_test"}


def kind_of(message: str | None) -> tuple[str, str] | None:
    """(kind, fix) when dbt's `message` is a failure a retry cannot fix, else None."""
    for kind, pattern, fix in KINDS:
        if message and pattern.search(message):
            return kind, fix
    return None


def dbt_message(message: str) -> str:
    """dbt's message without the macro call stack (`> in macro ...`, `> called by ...`) and blank runs."""
    lines = [line for line in message.splitlines() if not line.strip().startswith("> ")]
    head, rest = lines[:1], textwrap.dedent("\n".join(lines[1:])).splitlines()
    kept = [line.rstrip() for line in head + rest]
    return re.sub(r"\n{2,}", "\n", "\n".join(kept)).strip()


def _value(status: Any) -> str:
    return str(getattr(status, "value", status)).lower()


def from_results(results: Iterable[Any], exception: BaseException | None = None) -> dict:
    """What a retry cannot fix in one dbt invocation, from dbt's result objects
    (`dbtRunnerResult.result.results`: RunResult, with `.node`, `.status`, `.message`).

    Returns {} when nothing, else {"failures": {unique_id: {kind, message, fix}}, "blocked":
    {unique_id: the failure's unique_id} for the nodes dbt skipped because of one, "tests_of":
    {model unique_id: the failure's unique_id} for a model whose tests failed or were skipped
    because of one}. An invocation that failed before any node ran (a project that does not
    parse) is the failure "*"."""
    failures: dict[str, dict] = {}
    if exception is not None and (found := kind_of(str(exception))):
        failures["*"] = {"kind": found[0], "message": dbt_message(str(exception)), "fix": found[1]}
    nodes: dict[str, Any] = {}
    skipped: list[str] = []
    for result in results:
        node = result.node
        nodes[node.unique_id] = node
        status = _value(result.status)
        if status in FAILED and (found := kind_of(result.message)):
            failures[node.unique_id] = {"kind": found[0], "message": dbt_message(result.message), "fix": found[1]}
        elif status in SKIPPED:
            skipped.append(node.unique_id)
    if not failures:
        return {}
    blocked: dict[str, str] = {}
    for unique_id in skipped:
        if cause := _failed_ancestor(unique_id, nodes, failures):
            blocked[unique_id] = cause
    tests_of: dict[str, str] = {}
    for unique_id, cause in [*((u, u) for u in failures), *blocked.items()]:
        node = nodes.get(unique_id)
        if node is not None and _value(node.resource_type) in TESTS:
            for model in _tested_models(node):
                tests_of.setdefault(model, cause)
    return {"failures": failures, "blocked": blocked, "tests_of": tests_of}


def from_dbt_runner_result(result: Any) -> dict:
    """`from_results` of a `dbtRunnerResult` (what `dbtRunner().invoke` returns)."""
    if result is None or getattr(result, "success", True):
        return {}
    results = getattr(getattr(result, "result", None), "results", None) or []
    return from_results(results, getattr(result, "exception", None))


def _failed_ancestor(unique_id: str, nodes: dict[str, Any], failures: dict[str, dict]) -> str | None:
    seen, queue = {unique_id}, [unique_id]
    while queue:
        node = nodes.get(queue.pop(0))
        for parent in getattr(getattr(node, "depends_on", None), "nodes", None) or []:
            if parent in failures:
                return parent
            if parent not in seen:
                seen.add(parent)
                queue.append(parent)
    return None


def _tested_models(node: Any) -> list[str]:
    """Every model whose tests' task counts this test: Cosmos counts a test for each model it
    depends on (a relationships test of `orders` to `customers` is in the tests of both)."""
    models = [p for p in (getattr(getattr(node, "depends_on", None), "nodes", None) or []) if p.startswith("model.")]
    attached = getattr(node, "attached_node", None)
    return [attached, *models] if attached and attached not in models else models


def failure_for(found: dict | None, unique_id: str, *, tests: bool = False) -> dict | None:
    """The failure that fails the task of `unique_id` (its tests' task when `tests`), from the XCom
    `XCOM_KEY`; None when its task may be retried. Adds `unique_id` and `cause` to it."""
    if not found:
        return None
    failures = found.get("failures") or {}
    if tests:
        cause = (found.get("tests_of") or {}).get(unique_id) or (unique_id if unique_id in failures else None)
    else:
        cause = unique_id if unique_id in failures else (found.get("blocked") or {}).get(unique_id)
    cause = cause or ("*" if "*" in failures else None)
    if cause is None:
        return None
    return {**failures[cause], "cause": cause, "unique_id": f"the tests of {unique_id}" if tests else unique_id}


def failure_from_event(event: dict | None, unique_id: str, *, tests: bool = False) -> dict | None:
    """The same from the node's own dbt event (dbt's status and message, as the producer pushes a
    node's result: node_results.py): for a node that failed in a way a retry cannot fix (`tests`:
    the model of the tests' task did), before the build is over."""
    if not isinstance(event, dict) or _value(event.get("status")) not in FAILED:
        return None
    found = kind_of(event.get("msg"))
    if found is None:
        return None
    label = f"the tests of {unique_id}" if tests else unique_id
    message = dbt_message(str(event.get("msg")))
    return {"kind": found[0], "message": message, "fix": found[1], "cause": unique_id, "unique_id": label}


def describe(failure: dict) -> str:
    """One failure for a task's log and the demo's summary: what, dbt's message, the fix."""
    cause = failure.get("cause", "*")
    what = "the dbt project" if cause == "*" else cause
    own = failure.get("unique_id") in (None, cause)
    head = f"{what}: {failure['kind']}" if own else f"not run: {what} failed ({failure['kind']})"
    message = textwrap.indent(failure["message"], "    ")
    return f"{head} (a retry cannot fix it)\n  dbt says:\n{message}\n  fix: {failure['fix']}"


class DbtFailureARetryCannotFix(AirflowFailException):
    """Fails the task without its retries: the same dbt build would fail the same way."""


def describe_all(found: dict) -> str:
    """Every failure of the XCom `XCOM_KEY`, for the producer's exception and the demo's summary."""
    return "\n".join(
        describe({**f, "cause": uid, "unique_id": uid}) for uid, f in (found.get("failures") or {}).items()
    )
