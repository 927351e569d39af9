"""A connection apply must replace is created first and deleted last: a failed create leaves the
old connection, and its sync state, in place; the plan says what state a replacement loses."""

from __future__ import annotations

from include.pipeline.ingest.airbyte_server.apply import STATE_LOST, main
from include.pipeline.ingest.declaration import load_connections
from tests.support.airbyte import CONNECTION, by_name
from tests.support.declarations import declaration, edited, write


def moved_source(tmp_path):
    """The shipped declaration with its source renamed: the connection must move to a new source."""
    return write(tmp_path, edited(declaration(), ("sources:\n  shop:\n", "sources:\n  shop_v2:\n"),
                                  ("    source: shop\n", "    source: shop_v2\n"), count=0))  # fmt: skip


def test_a_replaced_connection_is_created_before_the_old_one_is_deleted(airbyte_api, applied, tmp_path, capsys):
    declaration = moved_source(tmp_path)
    capsys.readouterr()
    assert main(["plan", "--file", str(declaration)]) == 0
    plan = capsys.readouterr().out
    assert f"-/+ replace connection '{CONNECTION}'" in plan and STATE_LOST in plan, plan

    assert main(["apply", "--file", str(declaration)]) == 0
    writes = [(r.method, r.route) for r in airbyte_api.requests if r.method in ("POST", "DELETE")]
    writes = [w for w in writes if w[1] != "/applications/token"]
    assert writes == [("POST", "/sources"), ("POST", "/connections"), ("DELETE", "/connections/{connectionId}")]
    conn = by_name(airbyte_api.connections(), CONNECTION)
    assert conn["connectionId"] != applied
    assert conn["sourceId"] == next(s["sourceId"] for s in airbyte_api.sources() if s["name"] == "shop_v2")


def test_a_failed_create_leaves_the_old_connection_in_place(airbyte_api, applied, tmp_path, capsys):
    declaration = moved_source(tmp_path)
    airbyte_api.fail_next("POST", "/connections", status=422)
    assert main(["apply", "--file", str(declaration)]) == 2
    assert "answered 422" in capsys.readouterr().err
    conn = by_name(airbyte_api.connections(), CONNECTION)
    assert conn["connectionId"] == applied and conn["status"] == "active", "the old connection is untouched"
    assert airbyte_api.request_count("DELETE") == 0

    assert main(["apply", "--file", str(declaration)]) == 0  # the cause gone, a rerun completes it
    conn = by_name(airbyte_api.connections(), CONNECTION)
    assert conn["connectionId"] != applied


def test_a_replaced_destination_moves_its_connection_before_it_is_deleted(airbyte_api, applied, tmp_path):
    """A destination whose type changes is replaced: deleting it would delete its connections too,
    so they are created on the new destination first and the old destination goes last."""
    old_destination = by_name(airbyte_api.destinations(), load_connections().connection(CONNECTION).destination.name)
    into_it = [c.name for c in load_connections().connections if c.destination.name == old_destination["name"]]
    with airbyte_api._lock:  # the server's destination is of another type than the declaration's
        airbyte_api._destinations[old_destination["destinationId"]]["destinationType"] = "snowflake"
    assert main(["apply"]) == 0
    writes = [(r.method, r.route) for r in airbyte_api.requests if r.method in ("POST", "DELETE")]
    writes = [w for w in writes if w[1] != "/applications/token"]
    assert writes == [
        ("POST", "/destinations"),
        *[("POST", "/connections"), ("DELETE", "/connections/{connectionId}")] * len(into_it),
        ("DELETE", "/destinations/{destinationId}"),
    ]
    destination = by_name(airbyte_api.destinations(), old_destination["name"])
    assert destination["destinationId"] != old_destination["destinationId"]
    for name in into_it:
        assert by_name(airbyte_api.connections(), name)["destinationId"] == destination["destinationId"]
