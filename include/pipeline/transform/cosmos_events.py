"""The dbt events and the XCom key through which Cosmos's watcher mode works, owned here.

Cosmos keeps them in private modules (`cosmos.constants._DBT_STARTUP_EVENTS_XCOM_KEY`,
`cosmos.operators._watcher.base._DBT_EVENT_ALLOWLIST`), which may change in any release; the
values are Cosmos's public behaviour (what its producer pushes to XCom and acts on), so the
project holds its own copy, and tests/transform/test_cosmos_contract.py fails when a Cosmos
upgrade changes them.
"""

from __future__ import annotations

# the XCom key the producer pushes dbt's startup events (versions) under; the sensors' trigger
# pulls it back and Cosmos appends to it
STARTUP_EVENTS_XCOM_KEY = "dbt_startup_events"

# dbt node status events: the producer pushes a node's latest one to XCom for its sensor
NODE_STATUS_EVENTS = frozenset({"NodeStart", "NodeCompiling", "NodeExecuting", "NodeFinished"})

# dbt error events (dbt-core's core/dbt/events/types.py) the producer surfaces to the sensors
ERROR_EVENTS = frozenset(
    {
        "ArtifactUploadError",
        "CatchableExceptionOnRun",
        "CheckNodeTestFailure",
        "FlushEventsFailure",
        "GenericExceptionOnRun",
        "InputFileDiffError",
        "InternalErrorOnRun",
        "InvalidOptionYAML",
        "LogDbtProfileError",
        "LogDbtProjectError",
        "LogSkipBecauseError",
        "MainEncounteredError",
        "NodeConnectionReleaseError",
        "ParseInlineNodeError",
        "ParsedFileLoadFailed",
        "PartialParsingError",
        "PartialParsingErrorProcessingFile",
        "RunResultError",
        "RunResultFailure",
        "RunningOperationCaughtError",
        "RunningOperationUncaughtError",
        "SQLRunnerException",
        "SendEventFailure",
        "TrackingInitializeFailure",
    }
)

# every dbt event Cosmos's producer acts on (beyond logging it)
COSMOS_ACTED_ON_EVENTS = ERROR_EVENTS | NODE_STATUS_EVENTS
