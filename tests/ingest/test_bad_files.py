"""bad_files.py's reading of a file as source-s3's JSON lines parser does: which line it stops at."""

from __future__ import annotations

import pytest

from include.pipeline.ingest import bad_files


@pytest.mark.parametrize(
    ("text", "lost"),
    [
        (b'{"id": 1}\n{"id": 2}\n', None),
        (b'{"id": 1}\n\n{"id": 2}\n\n', None),  # blank lines are no records and lose nothing
        (b'{"id": 1,\n "name": "a"}\n{"id": 2}\n', None),  # an object over two lines is read whole
        (b'{"id": 1}\n{"id": 2, oops\n{"id": 3}\n', 2),  # the bad line takes the rest of the file along
        (b'{"id": 1}\n{"id": 2}\n{"id": 3', 3),  # a last line cut short
    ],
)
def test_the_first_lost_line_is_where_the_connectors_parser_stops(text, lost):
    assert bad_files.first_lost_line(text.splitlines(keepends=True)) == lost


def test_the_connectors_parse_error_log_names_stream_file_and_line():
    message = (
        "Error parsing record. This could be due to a mismatch between the config's file type and the actual "
        "file type, or because the file or record is not parseable. stream=products "
        "file=products/2026-01-09/part-0000.jsonl.gz line_no=4258 n_skipped=0"
    )
    trace = "Traceback (most recent call last):\n  ...\nEOFError: Compressed file ended before the end-of-stream marker"
    bad = bad_files.from_log(message, trace)
    assert (bad["stream"], bad["file"], bad["line"]) == ("products", "products/2026-01-09/part-0000.jsonl.gz", 4258)
    assert bad["error"].startswith("EOFError: Compressed file ended")
    assert bad_files.from_log("Stopping sync in accordance with the configured validation policy") is None
