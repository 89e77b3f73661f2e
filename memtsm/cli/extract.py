"""``memtsm extract``: flags -> :class:`memtsm.extract.config.ExtractConfig` -> ``extract()``.

The run itself is :func:`memtsm.extract.runner.extract`; the options' defaults are the fields of
:class:`~memtsm.extract.config.FeatureSpec` and :class:`~memtsm.extract.config.ExtractConfig`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from memtsm.cli.options import (
    EXIT_FAILURES,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Decoder,
    Described,
    Device,
    Engine,
    FramesFps,
    Inputs,
    Labels,
    Quiet,
    StoreOut,
    Threads,
    XFeatWeights,
    command_class,
    format_size,
    parse_size,
    progress,
    setup_logging,
    usage_error,
    use_threads,
)


def library_defaults() -> dict[str, Any]:
    """The defaults of :class:`FeatureSpec` and :class:`ExtractConfig`, by option name."""
    from memtsm.extract.config import ExtractConfig, FeatureSpec

    spec, config = FeatureSpec(), ExtractConfig()
    return {
        "clip_len": spec.clip_len, "frame_stride": spec.frame_stride, "layout": spec.layout,
        "long_side": spec.long_side, "decoder": config.decoder, "device": config.device,
        "batch_size": config.batch_size, "engine": config.engine,
        "precision": config.precision, "fps": config.frames_fps,
        "shard_size": format_size(config.shard_bytes), "commit_every": config.commit_seconds,
        "num_shards": Described(f"torchrun's WORLD_SIZE, else {config.num_shards}"),
        "shard_index": Described(f"torchrun's RANK, else {config.shard_index}"),
    }


def library_choices() -> dict[str, tuple[str, ...]]:
    """Decoders (:class:`DecoderBackend`) and pooling layouts (``LAYOUT_NAMES``)."""
    from memtsm.extract.config import ENGINE_NAMES, LAYOUT_NAMES, PRECISIONS, DecoderBackend

    return {"decoder": tuple(b.value for b in DecoderBackend), "layout": LAYOUT_NAMES,
            "engine": ENGINE_NAMES, "precision": PRECISIONS}


Command = command_class(library_defaults, library_choices)


def extract(
    inputs: Inputs,
    out: StoreOut,
    decoder: Decoder = None,
    device: Device = None,
    clip_len: Annotated[Optional[int], typer.Option(
        help="Frames per clip (one feature vector per clip).")] = None,
    frame_stride: Annotated[Optional[int], typer.Option(
        help="Run XFeat on every k-th frame of each clip.")] = None,
    layout: Annotated[Optional[str], typer.Option(
        help="Per-frame pooling of the XFeat descriptors.")] = None,
    long_side: Annotated[Optional[int], typer.Option(
        help="Resize frames so the long side is about this (both sides rounded to multiples "
        "of 32).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(
        help="Frames per XFeat forward pass.")] = None,
    engine: Engine = None,
    precision: Annotated[Optional[str], typer.Option(
        help="Arithmetic of the XFeat network. bf16 (torch autocast, or OpenVINO on CPUs with "
        "BF16) and int8 (OpenVINO, a graph quantised once by NNCF on synthetic frames: pip "
        "install memtsm with the int8 extra) are faster but give other features: a store and the "
        "checkpoints trained on it record it, and fp32 checkpoints refuse them.")] = None,
    fps: FramesFps = None,
    shard_size: Annotated[Optional[str], typer.Option(
        help="Start a new shard past this size (1GiB, 500MB, bytes).")] = None,
    commit_every: Annotated[Optional[float], typer.Option(
        help="Also close the open shard after this many seconds (bounds the work lost to a "
        "crash).")] = None,
    xfeat_weights: XFeatWeights = None,
    labels: Labels = None,
    video_list: Annotated[Optional[Path], typer.Option(
        metavar="FILE", help="Only these videos: one path per line, relative to INPUT "
        "(UCF-Crime Anomaly_Train.txt).")] = None,
    num_shards: Annotated[Optional[int], typer.Option(
        metavar="N", help="Split the videos into N parts balanced by size, for N parallel "
        "workers.")] = None,
    shard_index: Annotated[Optional[int], typer.Option(
        metavar="I", help="The part this worker extracts, 0..N-1.")] = None,
    threads: Threads = None,
    quiet: Quiet = False,
) -> None:
    """Decode videos, run XFeat on every sampled frame, write one vector per clip to HDF5.

    Under torchrun every process extracts its own part of the videos on its own GPU
    (cuda:LOCAL_RANK) into the same store; --num-shards/--shard-index do the same for
    schedulers such as SLURM arrays.
    """
    setup_logging(quiet)
    from memtsm.extract.config import ExtractConfig, FeatureSpec
    from memtsm.extract.runner import DECODE_THREADS
    from memtsm.extract.runner import extract as run_extract
    from memtsm.extract.store import StoreError
    from memtsm.extract.weights import WeightsError

    use_threads(threads, reserve=DECODE_THREADS)

    try:
        shard_size_bytes = parse_size(shard_size)
    except typer.BadParameter as exc:
        raise usage_error(f"--shard-size: {exc.message}") from None
    try:
        config = ExtractConfig(
            spec=FeatureSpec(clip_len=clip_len, frame_stride=frame_stride, layout=layout,
                             long_side=long_side),
            decoder=decoder, batch_size=batch_size, engine=engine, precision=precision,
            frames_fps=fps,
            shard_bytes=shard_size_bytes, commit_seconds=commit_every,
            xfeat_weights=str(xfeat_weights) if xfeat_weights else None,
            labels_csv=str(labels) if labels else None,
            video_list=str(video_list) if video_list else None,
            **_worker(num_shards, shard_index, device))
    except ValueError as exc:
        raise usage_error(str(exc)) from None
    try:
        summary = run_extract(inputs, out, config, progress(quiet))
    except KeyboardInterrupt:
        typer.echo("interrupted: completed videos are kept; rerun to finish", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (FileNotFoundError, ValueError, StoreError, WeightsError, ImportError,
            RuntimeError) as exc:
        raise usage_error(str(exc)) from None
    decoders = ("frame folders read as images" if summary.decoder == "frames" else
                f"video files decoded by {summary.decoder}, frame folders read as images")
    failed = f"failed {len(summary.failures)}"
    if summary.failures:  # each failure was logged once, as it happened
        failed += f" (warnings above; {out / 'failures*.jsonl'})"
    typer.echo(
        f"stored {len(summary.stored)} videos ({summary.frames} frames, "
        f"{summary.frames_per_second:.1f} frames/s on {summary.device}; {decoders}), skipped "
        f"{len(summary.skipped)} already stored, {failed} -> {out}", err=True)
    raise typer.Exit(EXIT_FAILURES if summary.failures else EXIT_OK)


def _worker(num_shards: int | None, shard_index: int | None, device: str) -> dict[str, Any]:
    """The worker fields of :class:`ExtractConfig`: the flags given, else torchrun's env.

    Under torchrun (``WORLD_SIZE > 1``) the part is the process's rank and the device is
    :meth:`World.device`'s (``cuda:LOCAL_RANK`` on GPUs).

    Raises:
        ValueError: flags that contradict torchrun's environment.
    """
    from memtsm.runtime.world import World

    try:
        world = World.from_env()
        if world.world_size == 1:
            flags = {"num_shards": num_shards, "shard_index": shard_index}
            return {"device": device, **{k: v for k, v in flags.items() if v is not None}}
        if (num_shards, shard_index) not in ((None, None), (world.world_size, world.rank)):
            raise ValueError(f"--num-shards/--shard-index ({num_shards}/{shard_index}) contradict "
                             f"torchrun's WORLD_SIZE/RANK ({world.world_size}/{world.rank}); "
                             "give neither under torchrun")
        return {"num_shards": world.world_size, "shard_index": world.rank,
                "device": str(world.device(device))}
    except RuntimeError as exc:  # DistributedError, or CUDA asked for without a GPU
        raise ValueError(str(exc)) from None
