"""The words of connections.yaml: its closed sets, the patterns every name must match, the
errors a declaration raises, the one `${ENV_VAR}` resolver, and the validators the models share.

Each validator raises a `declaration` error (`problem`) with the file's words: what is wrong and
the fix; the loader puts the line in front (include/pipeline/ingest/declaration/problems.py).
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationInfo
from pydantic_core import PydanticCustomError

SyncMode = Literal[
    "full_refresh_overwrite",
    "full_refresh_append",
    "incremental_append",
    "incremental_deduped_history",
]
SYNC_MODES: tuple[str, ...] = get_args(SyncMode)
# A connection's answer to a new column, a type change or a removed column: the Airbyte API's
# nonBreakingSchemaUpdatesBehavior (include/pipeline/ingest/schema_changes.py), and to a file the
# connector cannot read whole (bad_files.py). The first of each is the default.
SchemaChangePolicy = Literal["propagate_columns", "propagate_fully", "ignore", "disable_connection"]
SCHEMA_CHANGE_POLICIES: tuple[str, ...] = get_args(SchemaChangePolicy)
BadFilePolicy = Literal["fail", "skip"]
BAD_FILE_POLICIES: tuple[str, ...] = get_args(BadFilePolicy)
Engine = Literal["embedded", "platform"]
ENGINES: tuple[str, ...] = get_args(Engine)
# Every name from the file reaches SQL (schemas, tables, columns), file paths (connector venvs,
# requirements, catalogs) or the Airbyte API, so each is checked against a strict pattern here,
# catalog or not. 63 bytes: Postgres's identifier limit (a longer name is silently truncated).
NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")  # sources, destinations, connections, streams
SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")  # a Postgres schema, unquoted-safe
COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")  # cursor and primary-key columns
CONNECTOR = re.compile(r"^source-[a-z0-9]+(-[a-z0-9]+)*$")  # a folder-safe connector name
CONN_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,249}$")  # an Airflow connection id
ENV_REF = re.compile(r"^\$\{([A-Z_][A-Z0-9_]*)\}$")
# Limits of the YAML itself: a declaration is a few KB; an alias bomb (`&a [*b, *b, ...]`) is
# tiny on disk and expands to billions of nodes in every walk over it.
MAX_FILE_BYTES = 1 << 20
MAX_EXPANDED_NODES = 100_000


def valid_connector(name: Any) -> bool:
    """A connector name that stays inside its folder: `source-<lowercase words>`, nothing else."""
    return isinstance(name, str) and bool(CONNECTOR.match(name))


class ConnectionsConfigError(ValueError):
    """connections.yaml is invalid; `problems` holds one 'file:line: what. Fix: how' per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            f"{len(problems)} problem(s) in the Airbyte connections declaration; nothing was applied:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


class MissingEnvironmentVariable(KeyError):
    """A `${VAR}` of the declaration is not set when it is needed (at run time, never at load)."""

    def __str__(self) -> str:  # the message as written (KeyError's own str quotes it)
        return str(self.args[0]) if self.args else ""


def is_env_ref(value: Any) -> bool:
    """Whether `value` is a whole `${ENV_VAR}` reference (the only way a secret may be written)."""
    return isinstance(value, str) and bool(ENV_REF.match(value))


def resolve_env(value: Any, where: str, environ: dict[str, str] | None = None) -> Any:
    """`value` with every `${ENV_VAR}` (a whole string) replaced by the variable, at any depth.

    The one resolver of the declaration: source configs (embedded and platform engines) and a
    destination's `airbyte:` overrides. `where` names the block in the error."""
    environ = os.environ if environ is None else environ
    if isinstance(value, dict):
        return {k: resolve_env(v, f"{where}.{k}", environ) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_env(v, f"{where}[{i}]", environ) for i, v in enumerate(value)]
    if isinstance(value, str) and (match := ENV_REF.match(value)):
        if match.group(1) not in environ:
            raise MissingEnvironmentVariable(
                f"{where} needs the environment variable {match.group(1)}; export it (or put it in .env)"
            )
        return environ[match.group(1)]
    return value


# -- validated values ---------------------------------------------------------------------------
# A value's error names the block it is in: `label` is formatted with the validation context
# ({where}: this block, {parent}: the block around it), which the loader passes per block.
def problem(what: str, fix: str) -> PydanticCustomError:
    return PydanticCustomError("declaration", "{what}. Fix: {fix}", {"what": what, "fix": fix})


def label_of(label: str, info: ValidationInfo) -> str:
    context = info.context or {}
    return label.format(where=context.get("where", "this block"), parent=context.get("parent", "the file"))


def named(label: str) -> BeforeValidator:
    """A name of the file (source, destination, connection, stream): `NAME`."""

    def check(value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str) or not NAME.match(value):
            raise problem(
                f"{label_of(label, info)} name {value!r} is not a valid name",
                "use lowercase letters, digits and _ (starting with a letter, at most 63)",
            )
        return value

    return BeforeValidator(check)


def matching(regex: re.Pattern, label: str, fix: str) -> BeforeValidator:
    """Text matching `regex`; otherwise one problem naming `label`."""

    def check(value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str) or not regex.match(value):
            raise problem(f"{label_of(label, info)} {value!r} is not allowed", fix)
        return value

    return BeforeValidator(check)


def one_of(choices: tuple[str, ...], what: str) -> BeforeValidator:
    """One of a `Literal`'s values, with the file's words rather than pydantic's."""

    def check(value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str) or value not in choices:
            raise problem(
                what.format(value=value, where=label_of("{where}", info)), f"use one of: {', '.join(choices)}"
            )
        return value

    return BeforeValidator(check)


def mapping(label: str) -> BeforeValidator:
    def check(value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            where = label_of(label, info)
            raise problem(f"{where} must be a mapping", f"write {where} as `key: value` lines")
        return value

    return BeforeValidator(check)


class Block(BaseModel):
    """A block of the file: unknown keys are errors, and a loaded block never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=False)
    # keys the loader fills in (a block's name is its key in the file), not written in the block
    INJECTED: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The keys a block may have in the file, in the order the errors list them."""
        return tuple(name for name in cls.model_fields if name not in cls.INJECTED)


class DestinationBlock(Block):
    """What every destination has: its name (its key in the file) and its `type`."""

    INJECTED = ("name",)
    name: Annotated[str, named("destination")]
