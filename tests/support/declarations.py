"""connections.yaml variants for tests: the shipped declaration plus a source of a user's own.

A user adds a source by appending a block under `sources:` and a connection at the end, as
docs/your-data.md shows; tests that must keep passing after such a change use this one builder.
"""

from __future__ import annotations

from pathlib import Path

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
