"""What the transform relies on from Cosmos and dbt, by public name: an upgrade that changes one
fails here, not in a run. The producer, the node tasks and their trigger (transform/producer.py,
node_results.py, watcher.py) use no private module or method of Cosmos."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from include.pipeline import settings
from include.pipeline.transform import cosmos_config  # loads Cosmos as the DAG does

TRANSFORM = settings.REPO_ROOT / "include" / "pipeline" / "transform"


def test_cosmos_local_operators_hand_our_callbacks_to_dbt_and_let_us_check_its_result():
    from cosmos.operators.local import DbtBuildLocalOperator

    takes = [c for c in DbtBuildLocalOperator.__mro__
             if "dbt_runner_callbacks" in inspect.signature(c.__init__).parameters]  # fmt: skip
    assert takes, "DbtBuildLocalOperator(dbt_runner_callbacks=...) is how the producer's callback reaches dbt"
    assert callable(DbtBuildLocalOperator.handle_exception_dbt_runner)


def test_render_config_takes_node_converters_called_per_task():
    from cosmos import RenderConfig

    fields = {f.name for f in dataclasses.fields(RenderConfig)}
    assert {"node_converters", "node_conversion_by_task_group"} <= fields
    assert cosmos_config.NODE_TASKS, "a converter per resource type Cosmos renders"


@pytest.mark.parametrize(
    ("message", "fields"),
    [
        ("NodeFinished", {"node_info", "run_result"}),
        ("SkippingDetails", {"node_info"}),
        ("NodeInfo", {"unique_id", "resource_type", "node_status", "node_started_at", "node_finished_at"}),
        ("RunResultMsg", {"status", "message"}),
    ],
)
def test_dbts_events_carry_what_the_producers_callback_reads(message, fields):
    from dbt.events import core_types_pb2

    assert fields <= {f.name for f in getattr(core_types_pb2, message).DESCRIPTOR.fields}


def test_no_transform_class_overrides_a_private_method_of_cosmos():
    """Private imports are test_layout.py's check; this is the other half: a subclass of a Cosmos
    class defines no `_name` that a Cosmos base has (that would override Cosmos's internals)."""
    import importlib

    offenders = []
    for path in sorted(TRANSFORM.glob("*.py")):
        module = importlib.import_module(f"include.pipeline.transform.{path.stem}")
        for cls in vars(module).values():
            if not isinstance(cls, type) or cls.__module__ != module.__name__:
                continue
            cosmos_bases = [b for b in cls.__mro__ if b.__module__.startswith("cosmos.")]
            for name, value in vars(cls).items():
                method = inspect.isfunction(value) or isinstance(value, (property, staticmethod, classmethod))
                private = name.startswith("_") and not name.startswith("__")
                if method and private and any(hasattr(b, name) for b in cosmos_bases):
                    offenders.append(f"{cls.__module__}.{cls.__name__}.{name}")
    assert not offenders, offenders
