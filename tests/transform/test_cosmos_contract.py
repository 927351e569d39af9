"""The dbt events and XCom key the project owns (transform/cosmos_events.py) are the ones the
installed Cosmos uses: a Cosmos upgrade that changes them fails here, not in a run. The only place
that reads Cosmos's private names, on purpose."""

from __future__ import annotations

from include.pipeline.transform import cosmos_events, watcher  # watcher first: Cosmos loaded as a DAG loads it


def test_the_startup_events_key_is_cosmoss():
    from cosmos.constants import _DBT_STARTUP_EVENTS_XCOM_KEY

    assert cosmos_events.STARTUP_EVENTS_XCOM_KEY == _DBT_STARTUP_EVENTS_XCOM_KEY


def test_the_events_cosmos_acts_on_are_cosmoss():
    from cosmos.operators._watcher import base

    assert cosmos_events.NODE_STATUS_EVENTS == base._DBT_NODE_STATUS_EVENT_TYPES
    assert cosmos_events.ERROR_EVENTS == base._DBT_ERROR_EVENTS_TYPES
    assert cosmos_events.COSMOS_ACTED_ON_EVENTS == base._DBT_EVENT_ALLOWLIST


def test_the_watcher_module_reads_no_private_cosmos_constant():
    import inspect

    source = inspect.getsource(watcher)
    assert "_DBT_EVENT_ALLOWLIST" not in source and "_DBT_STARTUP_EVENTS_XCOM_KEY" not in source
