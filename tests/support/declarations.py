"""The one builder of connections.yaml variants for tests.

`declaration()` is the text the settings point at (the shipped file unless a fixture points
elsewhere); `edited` changes it by exact text, failing when a piece is not there (a test must not
run on an unchanged file because the shipped one moved on); `write` puts it in a folder;
`with_source` appends a source of a user's own as docs/your-data.md shows; `warehouse_only` drops
the lake's destinations and their connections.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from include.pipeline import settings

# A second file source with three kinds of stream: a single key, a compound key (one of its columns named
# like a SQL word), no key (appended).
RETURNS_SOURCE = """\
  returns_desk:
    connector: source-s3
    config:
      bucket: returns
      endpoint: "${S3_ENDPOINT}"
      region_name: us-east-1
      credentials:
        auth_type: iam_user
        aws_access_key_id: "${S3_EXPORTS_READER_ACCESS_KEY}"
        aws_secret_access_key: "${S3_EXPORTS_READER_SECRET_KEY}"
      streams:
        - name: refunds
          globs: ["refunds/**"]
          format: {filetype: jsonl}
          validation_policy: Emit Record
          input_schema: {refund_id: integer, order_id: integer, amount: number, reason: string, refunded_at: string, paid: boolean, details: object}
        - name: refund_lines
          globs: ["refund_lines/**"]
          format: {filetype: jsonl}
          validation_policy: Emit Record
          input_schema: {refund_id: integer, order: integer, sku: string, note: string}
        - name: refund_notes
          globs: ["refund_notes/**"]
          format: {filetype: jsonl}
          validation_policy: Emit Record
          input_schema: {note: string}

"""

RETURNS_CONNECTION = """
  - name: returns_to_warehouse
    source: returns_desk
    destination: warehouse
    streams:
      - name: refunds
        sync_mode: incremental_deduped_history
        cursor_field: _ab_source_file_last_modified
        primary_key: [refund_id]
      - name: refund_lines
        sync_mode: incremental_deduped_history
        cursor_field: _ab_source_file_last_modified
        primary_key: [refund_id, order]  # a key column named like a SQL word
      - name: refund_notes
        sync_mode: incremental_append
        cursor_field: _ab_source_file_last_modified
"""


def with_source(text: str, source: str = RETURNS_SOURCE, connection: str = RETURNS_CONNECTION) -> str:
    """`text` (a connections.yaml) with `source` appended under `sources:` and `connection` at the
    end of `connections:`, as a user appends them."""
    head, marker, tail = text.partition("\ndestinations:\n")
    assert marker, "connections.yaml has no top-level `destinations:`"
    return head.rstrip("\n") + "\n\n" + source + "destinations:\n" + tail.rstrip("\n") + "\n" + connection


def write_with_source(folder: Path) -> Path:
    """The shipped connections.yaml plus the returns_desk source and its connection, in `folder`."""
    path = folder / "connections.yaml"
    path.write_text(with_source(settings.CONNECTIONS_FILE.read_text()))
    return path


def declaration() -> str:
    """The declaration the settings point at (settings.CONNECTIONS_FILE, read now)."""
    return settings.CONNECTIONS_FILE.read_text()


def edited(text: str, *edits: tuple[str, str], count: int = 1) -> str:
    """`text` with each (old, new) of `edits` replaced in turn, `count` times (0: every one); an
    `old` that is not in the text fails, naming it."""
    for old, new in edits:
        assert old in text, f"the declaration has no {old!r} to replace: has connections.yaml changed?"
        text = text.replace(old, new, count or -1)
    return text


def write(folder: Path, text: str, name: str = "connections.yaml") -> Path:
    """`text` as `folder`/`name`; returns its path."""
    path = folder / name
    path.write_text(text)
    return path


def warehouse_only(text: str) -> str:
    """connections.yaml without its `type: s3` destinations and the connections into them.

    The apply tests drive create/update/replace on the warehouse connection and count its
    resources; the lake's connection (Airbyte's S3 destination) is applied from the shipped file
    in test_s3_destination_apply.py.

    Works on the parsed document: the nodes to drop are found in YAML's node tree, and their
    lines (a connection's comment lines right above it included) are cut from the text, so every
    other line, comment and layout stays as written (the tests edit the result as text). The cut
    text must parse to the parsed declaration minus those blocks, else (flow style, anchors,
    several blocks on a line) that declaration is written out as plain YAML instead."""
    doc = yaml.safe_load(text)
    destinations = doc.get("destinations") or {}
    lakes = {name for name, d in destinations.items() if (d or {}).get("type") == "s3"}
    kept = {
        **doc,
        "destinations": {n: d for n, d in destinations.items() if n not in lakes},
        "connections": [c for c in doc.get("connections") or [] if c.get("destination") not in lakes],
    }
    if not lakes and len(kept["connections"]) == len(doc.get("connections") or []):
        return text
    lines = text.splitlines(keepends=True)
    cut: set[int] = set()  # 0-based line numbers
    root = yaml.compose(text)
    top = {key.value: value for key, value in root.value}
    for key, value in top["destinations"].value:
        if key.value in lakes:
            cut.update(range(key.start_mark.line, _end_line(value, lines)))
    for item in top.get("connections", yaml.SequenceNode("", [])).value:
        fields = {k.value: v for k, v in item.value} if isinstance(item, yaml.MappingNode) else {}
        if "destination" in fields and fields["destination"].value in lakes:
            first = item.start_mark.line  # the item's "- " line; and the comment lines right above it
            while first > 0 and lines[first - 1].strip().startswith("#"):
                first -= 1
            cut.update(range(first, _end_line(item, lines)))
    result = "".join(line for i, line in enumerate(lines) if i not in cut)
    try:
        if yaml.safe_load(result) == kept:
            return result
    except yaml.YAMLError:
        pass
    return yaml.safe_dump(kept, sort_keys=False)


def _end_line(node, lines: list[str]) -> int:
    """The 0-based line after a block node's last line: its end mark sits at the next token (the
    next key, `- ` item or dedent), or just past the node's last character on its own line."""
    end = node.end_mark
    if end.line >= len(lines) or not lines[end.line][: end.column].strip():
        return end.line
    return end.line + 1
