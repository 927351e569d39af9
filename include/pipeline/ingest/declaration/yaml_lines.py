"""YAML with the line of every mapping, key and list (1-based), read within size limits.

A declaration's every problem is reported with its line; the document is composed once
(`yaml.compose`), its size once every alias is expanded is counted before it is built (an alias
bomb is tiny on disk), and duplicate or unhashable keys are errors with their line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from include.pipeline.ingest.declaration.values import MAX_EXPANDED_NODES, MAX_FILE_BYTES, ConnectionsConfigError


class LineMap(dict):
    """A mapping that remembers the line of itself and of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


class LineSeq(list):
    line: int = 0


class LineLoader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):  # noqa: D102
        mapping = LineMap()
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise yaml.MarkedYAMLError(
                    problem=f"a key must be plain text, not {type(key).__name__}", problem_mark=key_node.start_mark
                ) from None
            if key in mapping:
                raise yaml.MarkedYAMLError(problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark)
            mapping[key] = self.construct_object(value_node, deep=True)
            mapping.key_lines[key] = key_node.start_mark.line + 1
        return mapping

    def construct_sequence(self, node, deep=False):  # noqa: D102
        seq = LineSeq(self.construct_object(child, deep=True) for child in node.value)
        seq.line = node.start_mark.line + 1
        return seq


LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, LineLoader.construct_mapping)
LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, LineLoader.construct_sequence)


def _expanded_size(root: yaml.Node, limit: int) -> tuple[int, yaml.Node | None]:
    """How many nodes the document has once every alias is expanded (counting stops past `limit`),
    and the smallest node past the limit (where the bomb is). Memoised per node: linear time."""
    sizes: dict[int, int] = {}
    culprit: list[yaml.Node] = []

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            if sizes[key] < 0:
                raise yaml.MarkedYAMLError(problem="an alias refers to its own anchor", problem_mark=node.start_mark)
            return sizes[key]
        sizes[key] = -1  # in progress: meeting it again is a cycle
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        total = 1
        for child in children:
            total = min(total + size(child), limit + 1)
        if total > limit and not culprit:
            culprit.append(node)
        sizes[key] = total
        return total

    return size(root), (culprit[0] if culprit else None)


def load_yaml(path: Path) -> Any:
    """The document, within the limits above; raise ConnectionsConfigError naming the line otherwise."""
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ConnectionsConfigError([
            f"{path}: the file is {path.stat().st_size:,} bytes, over the limit of {MAX_FILE_BYTES:,}. "
            "Fix: a declaration is a few KB; split it or remove what is not a source, destination or connection"
        ])  # fmt: skip
    loader = LineLoader(path.read_text())
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        total, culprit = _expanded_size(node, MAX_EXPANDED_NODES)
        if total > MAX_EXPANDED_NODES:
            line = culprit.start_mark.line + 1 if culprit is not None else 1
            raise ConnectionsConfigError([
                f"{path}:{line}: YAML aliases (*name) expand this document to more than "
                f"{MAX_EXPANDED_NODES:,} values. Fix: write the values out, or reuse an anchor fewer times"
            ])  # fmt: skip
        return loader.construct_document(node)
    finally:
        loader.dispose()
