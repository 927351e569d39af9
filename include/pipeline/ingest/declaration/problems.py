"""Every problem of a declaration as 'file:line: what. Fix: how', all at once.

A block is validated by its pydantic model where its lines are known (`Problems.block`); each
entry of pydantic's own error collection (`ValidationError.errors()`) becomes one problem on the
line of the key it is about: the validators' `declaration` errors carry their words
(declaration/values.py `problem`), pydantic's built-in kinds (unknown key, missing key, an
unknown destination `type`) are worded here once for every block.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from include.pipeline.ingest.declaration.models import destination_type_names
from include.pipeline.ingest.declaration.values import NAME, Block
from include.pipeline.ingest.declaration.yaml_lines import LineMap


class Problems:
    """Collects every problem as 'file:line: what. Fix: how'."""

    def __init__(self, path: Path):
        self.path = path
        self.problems: list[str] = []

    def fail(self, line: int, what: str, fix: str) -> None:
        self.problems.append(f"{self.path}:{line}: {what}. Fix: {fix}")

    def mapping(self, value: Any, line: int, where: str) -> LineMap | None:
        if not isinstance(value, LineMap):
            self.fail(line, f"{where} must be a mapping", f"write {where} as `key: value` lines")
            return None
        return value

    def name(self, value: Any, line: int, where: str) -> bool:
        if not isinstance(value, str) or not NAME.match(value):
            self.fail(
                line,
                f"{where} name {value!r} is not a valid name",
                "use lowercase letters, digits and _ (starting with a letter, at most 63)",
            )
            return False
        return True

    def block(
        self,
        validate: Callable[..., Any],
        keys: tuple[str, ...],
        node: LineMap,
        where: str,
        injected: dict[str, Any] | None = None,
        separate: tuple[str, ...] = (),
        **context: Any,
    ) -> Any | None:
        """`node` validated by `validate` (a model's or TypeAdapter's validate_python); each error
        becomes a problem on the line of the key it is about. None if the block is invalid.
        `injected`: keys the loader fills in; `separate`: keys of sub-blocks checked on their own."""
        injected = injected or {}
        ok = True
        for key in injected:
            if key in node:  # a block's name is its key in the file, never a key inside it
                self.fail(node.key_lines[key], f"unknown key {key!r} in {where}", f"use one of: {', '.join(keys)}")
                ok = False
        try:
            value = validate(
                {**{k: v for k, v in node.items() if k not in separate}, **injected},
                context={"where": where, **context},
            )
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                self._report(error, keys, node, where)
            return None
        return value if ok else None

    @staticmethod
    def keys_ok(model: type[Block], node: LineMap) -> bool:
        """Whether `node` has every key `model` requires and no other (what its errors would say first)."""
        required = {n for n, f in model.model_fields.items() if f.is_required() and n not in model.INJECTED}
        return required <= set(node) and set(node) <= set(model.keys())

    def _report(self, error: Any, keys: tuple[str, ...], node: LineMap, where: str) -> None:
        # a discriminated union puts the member's tag first: ('postgres', 'schema')
        loc = [part for part in error["loc"] if part not in destination_type_names()]
        key = loc[0] if loc else None
        line = node.key_lines.get(key, node.line) if isinstance(key, str) else node.line
        kind, ctx = error["type"], error.get("ctx") or {}
        if kind == "declaration":
            self.fail(line, ctx["what"], ctx["fix"])
        elif kind == "extra_forbidden":
            self.fail(line, f"unknown key {key!r} in {where}", f"use one of: {', '.join(keys)}")
        elif kind in ("missing", "union_tag_not_found"):
            key = key if kind == "missing" else "type"
            self.fail(node.line, f"{where} is missing the key {key!r}", f"add `{key}:` to {where}")
        elif kind == "union_tag_invalid":
            types = destination_type_names()
            self.fail(
                node.key_lines.get("type", node.line),
                f"{where} has type {ctx.get('tag')!r}",
                "use " + " or ".join(f"`type: {t}`" for t in types),
            )
        else:  # a type pydantic checks itself (e.g. `format: 3` where a mapping is expected)
            self.fail(line, f"{where} {'.'.join(map(str, loc)) or 'block'}: {error['msg']}", "see docs/ingest.md")
