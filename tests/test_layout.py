"""The shape of include/: no import cycle, stages never import the CLI, modules stay small, and
PyAirbyte and Cosmos are used through their public names only.

The import graph is read from the source with `ast`, so an import inside a function counts as
much as one at the top (a function-level import hides a cycle; it does not open it). Imports
under `if TYPE_CHECKING:` never run and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
INCLUDE = REPO_ROOT / "include"
PACKAGE = "include.pipeline"
CLI = "include.pipeline.cli"
# `make bi`'s own commands (install the venv, start Superset) are command-line programs too: they
# share the CLI's supervisor and venv installer. No stage or service is among them.
CLI_PROGRAMS = ("include.bi.install", "include.bi.run")
MAX_LINES = 500
# No allowance for size or for another module's private names; the list only shrinks. The embedded
# runtime (include/airbyte_runtime/) imports no PyAirbyte at all (tests/ingest/test_runtime_contract.py).
OTHERS_IN_PROGRESS_SIZE: set[str] = set()
OTHERS_IN_PROGRESS_PRIVATE: set[str] = set()  # no module imports PyAirbyte's or Cosmos's private names
PRIVATE_LIBRARIES = ("airbyte", "cosmos")
OTHERS_IN_PROGRESS_INTERNAL: set[str] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def python_files() -> list[Path]:
    return sorted(p for p in INCLUDE.rglob("*.py") if "__pycache__" not in p.parts)


def _type_checking_only(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def imports(path: Path, module: str | None = None) -> list[tuple[str, tuple[str, ...], int]]:
    """Every import a file can run: (module, names imported from it, line), relative ones resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    module = module or module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, tuple[str, ...], int]] = []

    def walk(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if _type_checking_only(child):
                for other in child.orelse:
                    walk(other)
                continue
            if isinstance(child, ast.Import):
                found.extend((alias.name, (), child.lineno) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                found.append((base, tuple(alias.name for alias in child.names), child.lineno))
            walk(child)

    walk(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of include.pipeline it imports (`from pkg import mod` is an edge to mod)."""
    modules = {module_name(p): p for p in python_files() if module_name(p).startswith(PACKAGE)}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for target, names, _line in imports(path):
            hits = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules]
            if hits:
                graph[name].update(hits)
            if target in modules and len(hits) < len(names or (None,)):
                graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module, or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_is_read_from_the_source():
    graph = import_graph()
    # a function-level import is an edge like any other (the CLI imports its commands lazily)
    assert "include.pipeline.settings" in graph["include.pipeline.ingest.declaration.loader"]
    assert len(graph) > 50 and sum(map(len, graph.values())) > 100


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert sorted(cycles(graph)) == [["a", "b", "c"], ["e"]]


def test_include_pipeline_has_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles (imports inside functions count):\n" + "\n".join(
        " <-> ".join(component) for component in found
    )


def test_nothing_outside_the_cli_imports_the_cli():
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{line}: imports {target}"
        for path in python_files()
        if not module_name(path).startswith(CLI) and module_name(path) not in CLI_PROGRAMS
        for target, names, line in imports(path)
        if target == CLI or target.startswith(CLI + ".") or (target == PACKAGE and "cli" in names)
    ]
    assert not offenders, "the stages and services must not import the CLI:\n" + "\n".join(offenders)


def test_every_module_under_include_stays_under_the_size_limit():
    sizes = {str(p.relative_to(REPO_ROOT)): len(p.read_text().splitlines()) for p in python_files()}
    over = {path: n for path, n in sizes.items() if n > MAX_LINES and path not in OTHERS_IN_PROGRESS_SIZE}
    assert not over, f"modules over {MAX_LINES} lines (split them by job): {over}"
    assert OTHERS_IN_PROGRESS_SIZE <= set(sizes), "an allowance names a file that is gone: remove it"


@pytest.mark.parametrize(
    ("source", "private"),
    [
        ("from airbyte._executors import base", True),
        ("import airbyte._processors.sql", True),
        ("from cosmos.operators._watcher.base import BaseConsumerSensor", True),
        ("from cosmos.constants import _DBT_STARTUP_EVENTS_XCOM_KEY", True),
        ("from airbyte import get_source", False),
        ("from cosmos import DbtTaskGroup", False),
        ("from include.pipeline.ingest.declaration import _x", False),
    ],
)
def test_the_private_import_check_tells_private_from_public(tmp_path, source, private):
    probe = tmp_path / "probe.py"
    probe.write_text(source + "\n")
    assert bool(private_imports(probe, "include.pipeline.probe")) is private


def private_imports(path: Path, module: str | None = None) -> list[str]:
    found = []
    for target, names, line in imports(path, module):
        if target.split(".")[0] not in PRIVATE_LIBRARIES:
            continue
        if any(part.startswith("_") for part in target.split(".")) or any(n.startswith("_") for n in names):
            found.append(f"{path}:{line}: {target} {', '.join(names)}".rstrip())
    return found


def test_pyairbyte_and_cosmos_are_used_through_public_names_only():
    offenders = [
        hit
        for path in python_files()
        if str(path.relative_to(REPO_ROOT)) not in OTHERS_IN_PROGRESS_PRIVATE
        for hit in private_imports(path)
    ]
    assert not offenders, "private modules or names of PyAirbyte/Cosmos imported:\n" + "\n".join(offenders)


def test_no_module_imports_another_modules_private_names():
    """A leading `_` marks a name as its module's own: another module that needs it gets a public
    name (a private import hides a dependency, as `_check_secrets` did across the declaration)."""
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{line}: {target} {', '.join(n for n in names if n.startswith('_'))}"
        for path in python_files()
        if str(path.relative_to(REPO_ROOT)) not in OTHERS_IN_PROGRESS_INTERNAL
        for target, names, line in imports(path)
        if target.startswith("include.") and any(n.startswith("_") and n != "__future__" for n in names)
    ]
    assert not offenders, "private names imported from another module:\n" + "\n".join(offenders)


def test_every_reliability_case_cited_is_on_the_in_repo_list():
    """Comments, tests and docs cite "reliability case N": N must be on docs/reliability.md's list,
    and nothing cites a list outside the repository (a clone has no design notes beside it)."""
    import re

    listed = {int(n) for n in re.findall(r"^\| (\d+) \|", (REPO_ROOT / "docs/reliability.md").read_text(), re.M)}
    assert listed == set(range(1, max(listed) + 1)), f"docs/reliability.md numbers its cases 1..N: {sorted(listed)}"
    cited, outside = [], []
    roots = ["include", "dags", "plugins", "tests", "docs", "benchmarks", "compose"]
    for path in sorted(p for root in roots for p in (REPO_ROOT / root).rglob("*") if p.is_file()):
        if "__pycache__" in path.parts or path.suffix not in {".py", ".md", ".sql", ".yaml", ".yml", ".sh"}:
            continue
        text = path.read_text(errors="replace")
        where = path.relative_to(REPO_ROOT)
        for match in re.finditer(r"[Rr]eliability cases? (\d+)(?:-(\d+))?", text):
            first, last = int(match[1]), int(match[2] or match[1])
            cited += [(f"{where}", n) for n in range(first, last + 1)]
        if "DESIGN.md" in text and path != Path(__file__):
            outside.append(str(where))
    assert cited, "no citation found: the pattern no longer matches how the repository cites cases"
    unknown = sorted({f"{where}: case {n}" for where, n in cited if n not in listed})
    assert not unknown, "cited cases missing from docs/reliability.md:\n" + "\n".join(unknown)
    assert not outside, f"files citing design notes outside the repository: {outside}"
