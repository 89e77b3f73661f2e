"""``memtsm features info`` and ``memtsm features verify``: look into a feature store.

The store is :class:`memtsm.extract.store.FeatureStore`; the check is
:func:`memtsm.extract.verify.verify_store`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from memtsm.cli.options import EXIT_FAILURES, EXIT_OK, StoreDir, command_class, usage_error

Command = command_class()


def info(
    store: StoreDir,
    videos: Annotated[bool, typer.Option("--videos", help="List every video.")] = False,
) -> None:
    """Show a store's configuration, dimensions, labels and videos."""
    import json

    from memtsm.extract.sources import VideoLabel, label_summary
    from memtsm.extract.store import FeatureStore, StoreError, failure_counts

    try:
        features = FeatureStore(store)
        meta = features.meta
    except (StoreError, OSError) as exc:
        raise usage_error(str(exc)) from None
    labels = [e.label for e in features.entries]
    typer.echo(f"store: {store}")
    typer.echo(f"shards: {len(features.shards)}  videos: {len(features)}  clips: "
               f"{sum(e.num_clips for e in features.entries)}  frames: "
               f"{sum(e.num_frames for e in features.entries)}")
    typer.echo(f"labels: anomalous {labels.count(1)}  normal {labels.count(0)}  unknown "
               f"{labels.count(None)}")
    typer.echo("label rules: " + label_summary(
        {e.video_id: VideoLabel(e.label, e.class_name, e.label_rule) for e in features.entries}
    ).partition(": ")[2])
    failed = failure_counts(store)  # one log per parallel worker
    if failed:
        typer.echo(f"failures of the last run(s): {sum(failed.values())} ("
                   + ", ".join(f"{name}: {count}" for name, count in failed.items()) + ")")
    typer.echo("identity: " + json.dumps(meta["identity"], sort_keys=True))
    typer.echo("provenance: " + json.dumps(meta.get("provenance", {}), sort_keys=True))
    if videos:
        for entry in features.entries:
            label = "?" if entry.label is None else entry.label
            typer.echo(f"  {entry.video_id}\tclips={entry.num_clips}\tframes={entry.num_frames}"
                       f"\tlabel={label}\tclass={entry.class_name}"
                       f"\trule={entry.label_rule or 'not recorded'}\t{entry.shard}")


def verify(store: StoreDir) -> None:
    """Open every shard and read every video back: completeness, checksums, ids, index."""
    from memtsm.extract.verify import verify_store

    report = verify_store(store)
    typer.echo(f"{store}: {report.shards} shards, {report.videos} videos, "
               f"{len(report.problems)} problems")
    for problem in report.problems:
        typer.echo(f"  {problem}")
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILURES)
