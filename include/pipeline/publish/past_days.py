"""Whether a run may write its day's partition of a mart: a past day's partition is immutable once
the lake holds a later day of that mart.

The marts are built from everything the raw tables hold (no model filters on `ds`), and a past
day's shop export adds nothing (include/simulator/exports.py): once a later day ran, the marts hold
that later day's data, and publishing them as an earlier `ds` would put the later days into the
earlier partition. So, for a run of `ds` when the lake holds a committed partition of a later day:

- `ds`'s partition exists: it is kept as it is (`keep`; the task is skipped, no asset event: the
  lake did not change);
- it does not exist (a day that never ran, behind later ones): nothing truthful can be published
  (`refuse`; the task fails, without retries, naming the later day);
- the run's param `republish` is true: the mart as it is now is published as `ds` (`publish`,
  with a warning): on purpose, for a partition one wants rewritten anyway.

With no later partition (the newest day, a rerun of it, a backfill on a fresh lake, oldest first),
the partition is published as always. "Later" means a partition with a `_manifest.json`: the
objects of a failed attempt count for nothing, as for every reader (publish/lake.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from include.pipeline.publish import lake

PUBLISH, KEEP, REFUSE = "publish", "keep", "refuse"


@dataclass(frozen=True)
class Verdict:
    action: str  # PUBLISH, KEEP or REFUSE
    message: str  # what the task logs (or fails / skips with)
    later_ds: str | None = None  # the newest committed day of the mart after ds, if any
    kept: dict | None = None  # the manifest of the partition kept (KEEP)


def later_partition(client, mart: str, ds: str, *, lake_bucket: str | None = None) -> str | None:
    """The newest day after `ds` with a committed partition of `mart`, or None."""
    lake_bucket = lake_bucket or lake.bucket()
    lake.partition_prefix(mart, ds)  # checks both names
    if not client.bucket_exists(lake_bucket):
        return None
    folder = f"marts/{mart}/"
    days = sorted(
        (
            name.removeprefix(folder + "ds=").rstrip("/")
            for name in (o.object_name for o in client.list_objects(lake_bucket, prefix=folder + "ds="))
            if name.endswith("/")
        ),
        reverse=True,
    )
    for day in days:
        if day <= ds:
            break
        if lake.read_manifest(client, mart, day, lake_bucket=lake_bucket) is not None:
            return day
    return None


def decide(client, mart: str, ds: str, *, republish: bool = False, lake_bucket: str | None = None) -> Verdict:
    """Publish, keep or refuse the partition ds=`ds` of `mart` (the module's rule)."""
    later = later_partition(client, mart, ds, lake_bucket=lake_bucket)
    where = f"s3://{lake_bucket or lake.bucket()}/{lake.partition_prefix(mart, ds)}"
    if later is None:
        return Verdict(PUBLISH, f"{where}: no later day in the lake, publishing the mart as ds={ds}")
    if republish:
        return Verdict(
            PUBLISH,
            f"{where}: republish=true: the mart as it is now, with data up to ds={later} at least, "
            f"replaces ds={ds}'s partition",
            later,
        )
    manifest = lake.read_manifest(client, mart, ds, lake_bucket=lake_bucket)
    if manifest is not None:
        return Verdict(
            KEEP,
            f"{where}: kept as published at {manifest.get('committed_at')} by run {manifest.get('run_id')} "
            f"({manifest.get('rows')} rows): the lake holds a later day, ds={later}, so the mart now holds "
            f"data up to {later} at least and is not {ds}'s any more. Trigger with republish=true to "
            "replace the partition with the mart as it is now",
            later,
            manifest,
        )
    return Verdict(
        REFUSE,
        f"{where}: no partition, and the lake holds a later day, ds={later}: the mart now holds data up to "
        f"{later} at least, not as of {ds}, so it is not published as {ds} (a past day cannot be rebuilt once "
        f"later days ran: docs/operations.md, Backfills). Trigger with republish=true to publish the mart as "
        f"it is now as ds={ds}",
        later,
    )
