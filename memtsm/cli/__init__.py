"""The ``memtsm`` command line: a thin layer that maps flags onto typed configs.

Heavy modules (torch, kornia, h5py, DALI) are imported inside each command, so ``memtsm --help``
stays fast and never imports DALI. Library code raises exceptions; only this module turns them
into exit codes: 0 success, 1 some inputs failed (the rest were processed), 2 usage or setup
error, 130 interrupted.
"""

from __future__ import annotations

import enum
import logging
import re
from pathlib import Path
from typing import Optional

import typer

from memtsm.extract.config import DecoderBackend

app = typer.Typer(
    name="memtsm",
    no_args_is_help=True,
    add_completion=False,
    help="Raw surveillance video to per-segment anomaly scores (XFeat features + MemTSM).",
)
features_app = typer.Typer(no_args_is_help=True, help="Inspect feature stores.")
app.add_typer(features_app, name="features")

EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
_SIZE_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6,
               "mib": 2**20, "g": 10**9, "gb": 10**9, "gib": 2**30}


def parse_size(text: str) -> int:
    """``"1GiB"``, ``"500MB"``, ``"1048576"`` -> bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not match or match[2].lower() not in _SIZE_UNITS:
        raise typer.BadParameter(f"not a size: {text!r} (e.g. 1GiB, 500MB)")
    return int(float(match[1]) * _SIZE_UNITS[match[2].lower()])


def _setup_logging(quiet: bool) -> None:
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", force=True)



def _usage_error(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


def _progress(quiet: bool, label: str = "videos"):
    from memtsm.runtime.progress import RichProgress, SilentProgress

    return SilentProgress() if quiet else RichProgress(label)


@app.command()
def extract(
    inputs: list[Path] = typer.Argument(..., help="Video files, folders of videos (searched "
                                        "recursively) or folders of frame images."),
    out: Path = typer.Option(..., "--out", "-o", help="Feature store directory."),
    decoder: DecoderBackend = typer.Option(DecoderBackend.AUTO, help="Decoder backend."),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N"),
    clip_len: int = typer.Option(16, help="Frames per clip (one feature vector per clip)."),
    frame_stride: int = typer.Option(1, help="Run XFeat on every k-th frame of each clip."),
    layout: str = typer.Option("max128", help="Pooling layout: max128 | mean128 | pyramid640."),
    long_side: int = typer.Option(320, help="Resize frames so the long side is ~this "
                                  "(both sides rounded to multiples of 32)."),
    batch_size: int = typer.Option(16, help="Frames per XFeat forward pass."),
    fps: float = typer.Option(30.0, help="Frame rate of folders of frame images."),
    shard_size: str = typer.Option("1GiB", help="Start a new shard past this size."),
    commit_every: float = typer.Option(600.0, help="Also close the open shard after this many "
                                       "seconds (bounds the work lost to a crash)."),
    xfeat_weights: Optional[Path] = typer.Option(None, help="XFeat weights file (else "
                                                 "$MEMTSM_XFEAT_WEIGHTS, cache, download)."),
    labels: Optional[Path] = typer.Option(None, help="CSV 'video,label[,class]' overriding the "
                                          "UCF-Crime path rule."),
    video_list: Optional[Path] = typer.Option(None, help="Only these videos: one path per line, "
                                              "relative to INPUT (UCF-Crime Anomaly_Train.txt)."),
    num_shards: Optional[int] = typer.Option(None, help="Split the videos into N parts balanced "
                                             "by size, for N parallel workers (default: "
                                             "torchrun's WORLD_SIZE, else 1)."),
    shard_index: Optional[int] = typer.Option(None, help="The part this worker extracts, 0..N-1 "
                                              "(default: torchrun's RANK, else 0)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or info logs."),
) -> None:
    """Decode videos, run XFeat on every sampled frame, write one vector per clip to HDF5.

    Under torchrun every process extracts its own part of the videos on its own GPU
    (cuda:LOCAL_RANK) into the same store; --num-shards/--shard-index do the same for
    schedulers such as SLURM arrays.
    """
    _setup_logging(quiet)
    from memtsm.extract.config import ExtractConfig, FeatureSpec
    from memtsm.extract.runner import extract as run_extract
    from memtsm.extract.store import StoreError
    from memtsm.extract.weights import WeightsError

    try:
        num_shards, shard_index, device = _extract_worker(num_shards, shard_index, device)
        config = ExtractConfig(
            spec=FeatureSpec(clip_len=clip_len, frame_stride=frame_stride, layout=layout,
                             long_side=long_side),
            decoder=decoder.value, device=device, batch_size=batch_size, frames_fps=fps,
            shard_bytes=parse_size(shard_size), commit_seconds=commit_every,
            xfeat_weights=str(xfeat_weights) if xfeat_weights else None,
            labels_csv=str(labels) if labels else None,
            video_list=str(video_list) if video_list else None,
            num_shards=num_shards, shard_index=shard_index)
    except ValueError as exc:
        raise _usage_error(str(exc)) from None
    try:
        summary = run_extract(inputs, out, config, _progress(quiet))
    except KeyboardInterrupt:
        typer.echo("interrupted: completed videos are kept; rerun to finish", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (FileNotFoundError, ValueError, StoreError, WeightsError, ImportError,
            RuntimeError) as exc:
        raise _usage_error(str(exc)) from None
    typer.echo(
        f"stored {len(summary.stored)} videos ({summary.frames} frames, "
        f"{summary.frames_per_second:.1f} frames/s, decoder {summary.decoder}, device "
        f"{summary.device}), skipped {len(summary.skipped)} already stored, failed "
        f"{len(summary.failures)} -> {out}", err=True)
    for failure in summary.failures:
        typer.echo(f"  failed: {failure.error}", err=True)
    raise typer.Exit(EXIT_FAILURES if summary.failures else EXIT_OK)


def _extract_worker(num_shards: int | None, shard_index: int | None, device: str
                    ) -> tuple[int, int, str]:
    """``(num_shards, shard_index, device)`` of this extract worker: flags, else torchrun's env.

    Under torchrun (``WORLD_SIZE > 1``) the part is the process's rank and the device is
    :meth:`World.device`'s (``cuda:LOCAL_RANK`` on GPUs).

    Raises:
        ValueError: flags that contradict torchrun's environment.
    """
    from memtsm.runtime.world import World

    try:
        world = World.from_env()
        if world.world_size == 1:
            return num_shards or 1, shard_index or 0, device
        if (num_shards, shard_index) not in ((None, None), (world.world_size, world.rank)):
            raise ValueError(f"--num-shards/--shard-index ({num_shards}/{shard_index}) contradict "
                             f"torchrun's WORLD_SIZE/RANK ({world.world_size}/{world.rank}); "
                             "give neither under torchrun")
        return world.world_size, world.rank, str(world.device(device))
    except RuntimeError as exc:  # DistributedError, or CUDA asked for without a GPU
        raise ValueError(str(exc)) from None


@features_app.command("info")
def features_info(
    store: Path = typer.Argument(..., help="Feature store directory."),
    videos: bool = typer.Option(False, "--videos", help="List every video."),
) -> None:
    """Show a store's configuration, dimensions, labels and videos."""
    import json

    from memtsm.extract.store import FeatureStore, StoreError

    try:
        features = FeatureStore(store)
        meta = features.meta
    except (StoreError, OSError) as exc:
        raise _usage_error(str(exc)) from None
    labels = [e.label for e in features.entries]
    typer.echo(f"store: {store}")
    typer.echo(f"shards: {len(features.shards)}  videos: {len(features)}  clips: "
               f"{sum(e.num_clips for e in features.entries)}  frames: "
               f"{sum(e.num_frames for e in features.entries)}")
    typer.echo(f"labels: anomalous {labels.count(1)}  normal {labels.count(0)}  unknown "
               f"{labels.count(None)}")
    logs = sorted(Path(store).glob("failures*.jsonl"))  # one per parallel worker
    failed = {log.name: len(log.read_text(encoding="utf-8").splitlines()) for log in logs}
    if failed:
        typer.echo(f"failures of the last run(s): {sum(failed.values())} ("
                   + ", ".join(f"{name}: {count}" for name, count in failed.items()) + ")")
    typer.echo("identity: " + json.dumps(meta["identity"], sort_keys=True))
    typer.echo("provenance: " + json.dumps(meta.get("provenance", {}), sort_keys=True))
    if videos:
        for entry in features.entries:
            label = "?" if entry.label is None else entry.label
            typer.echo(f"  {entry.video_id}\tclips={entry.num_clips}\tframes={entry.num_frames}"
                       f"\tlabel={label}\tclass={entry.class_name}\t{entry.shard}")


class FeatureFormat(str, enum.Enum):
    """``--format`` of ``memtsm import-features``."""

    SULTANI_TXT = "sultani-txt"
    CSV = "csv"
    NPY = "npy"


class Normalization(str, enum.Enum):
    """``--normalize`` of ``memtsm import-features``."""

    NONE = "none"
    L2 = "l2"


@app.command("import-features")
def import_features(
    inputs: list[Path] = typer.Argument(..., help="Feature files or folders (recursive)."),
    out: Path = typer.Option(..., "--out", "-o", help="Feature store directory."),
    fmt: FeatureFormat = typer.Option(..., "--format", help="Input format."),
    frame_counts: Optional[Path] = typer.Option(None, help="'Class/Name.mp4 n_frames ...' file "
                                                "(UCF-Crime meta/*_Annotation.txt)."),
    normalize: Normalization = typer.Option(Normalization.NONE, help="Per-segment scaling."),
    labels: Optional[Path] = typer.Option(None, help="CSV 'video,label[,class]' overrides."),
    clip_len: int = typer.Option(16, help="Frames per clip of the original extractor."),
    feature_name: str = typer.Option("c3d", help="What the features are (c3d, i3d, ...): stores "
                                     "of one name can be trained and evaluated together."),
) -> None:
    """Bring pre-extracted C3D/I3D features (Sultani txt, CSV, NumPy) into a feature store."""
    _setup_logging(False)
    from memtsm.extract.external import import_features as run_import
    from memtsm.extract.store import StoreError

    try:
        summary = run_import(inputs, out, fmt.value, frame_counts=frame_counts,
                             normalize=normalize.value, labels_csv=labels, clip_len=clip_len,
                             feature_name=feature_name)
    except (FileNotFoundError, ValueError, StoreError) as exc:
        raise _usage_error(str(exc)) from None
    typer.echo(f"imported {len(summary.imported)} videos, skipped {len(summary.skipped)} already "
               f"stored, failed {len(summary.failures)} -> {out}", err=True)
    for failure in summary.failures:
        typer.echo(f"  failed: {failure.source}: {failure.error}", err=True)
    raise typer.Exit(EXIT_FAILURES if summary.failures else EXIT_OK)


class ModelName(str, enum.Enum):
    """``--model`` of ``memtsm train``."""

    MEMTSM = "memtsm"
    MIL_MLP = "mil-mlp"


@app.command()
def train(
    features: list[Path] = typer.Option(..., "--features", "-f", help="Feature store(s) with "
                                        "labelled training videos (repeat the flag for more)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run directory."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML config; flags given on "
                                          "the command line override it."),
    model: Optional[ModelName] = typer.Option(None, help="memtsm (default) | mil-mlp baseline."),
    epochs: Optional[int] = typer.Option(None, help="Epochs [20]."),
    batch_size: Optional[int] = typer.Option(None, help="Bags per batch, half normal and half "
                                             "anomalous [16]."),
    lr: Optional[float] = typer.Option(None, help="Peak AdamW learning rate [1e-4]."),
    weight_decay: Optional[float] = typer.Option(None, help="AdamW weight decay [0.1]."),
    grad_clip: Optional[float] = typer.Option(None, help="Gradient-norm clip [1.0]."),
    seed: Optional[int] = typer.Option(None, help="Seed of split, sampler and weights [0]."),
    device: Optional[str] = typer.Option(None, help="auto | cpu | cuda | cuda:N [auto]."),
    val_fraction: Optional[float] = typer.Option(None, help="Validation share of each class, "
                                                 "for checkpoint and threshold choice [0.2]."),
    num_segments: Optional[int] = typer.Option(None, help="Segments per training bag [32]."),
    steps_per_epoch: Optional[int] = typer.Option(None, help="Batches per epoch [one pass over "
                                                  "the larger class]; raise it for tiny data."),
    n_div: Optional[int] = typer.Option(None, help="TSM shift: 1/n_div of channels each way [8]."),
    mem_size: Optional[int] = typer.Option(None, help="Memory slots [100]."),
    channels: Optional[int] = typer.Option(None, help="Trunk width C [512]."),
    num_blocks: Optional[int] = typer.Option(None, help="Temporal-shift blocks [2]."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/last.pt."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or info logs."),
) -> None:
    """Train the MemTSM scorer (or the MIL baseline) with video-level labels.

    Under torchrun -m memtsm train, the processes train one model (--batch-size: global batch).
    """
    from memtsm.runtime.world import World
    from memtsm.train.config import TrainConfig
    from memtsm.train.loop import train as run_train

    try:
        world = World.from_env()
    except RuntimeError as exc:
        raise _usage_error(str(exc)) from None
    quiet = quiet or not world.is_main  # the other ranks only report errors
    _setup_logging(quiet)

    scorer = {k: v for k, v in {"n_div": n_div, "mem_size": mem_size, "channels": channels,
                                 "num_blocks": num_blocks}.items() if v is not None}
    overrides = {
        "features": tuple(str(p) for p in features), "out": str(out),
        "model": model.value if model else None, "epochs": epochs, "batch_size": batch_size,
        "lr": lr, "weight_decay": weight_decay, "grad_clip": grad_clip, "seed": seed,
        "device": device, "val_fraction": val_fraction, "num_segments": num_segments,
        "steps_per_epoch": steps_per_epoch,
        "scorer": scorer or None, "resume": resume or None,
    }
    try:
        train_config = TrainConfig.from_yaml(config, overrides)
        result = run_train(train_config, _progress(quiet, "epochs"), world)
    except KeyboardInterrupt:
        typer.echo(f"interrupted: rerun with --resume to continue from {out}/last.pt", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (OSError, ValueError, RuntimeError) as exc:
        raise _usage_error(str(exc)) from None
    if not world.is_main:
        return
    auc = "n/a" if result.best_val_auc is None else f"{result.best_val_auc:.4f}"
    threshold = "n/a" if result.threshold is None else f"{result.threshold:.4f}"
    typer.echo(f"best epoch {result.best_epoch}: validation video AUC {auc}, threshold "
               f"{threshold} -> {result.best_checkpoint}", err=True)


@app.command()
def sweep(
    features: list[Path] = typer.Option(..., "--features", "-f", help="Feature store(s) with "
                                        "labelled training videos (repeat the flag for more)."),
    out: Path = typer.Option(..., "--out", "-o", help="Sweep directory (runs/, sweep.csv, "
                             "sweep.md, sweep.json)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML base train config."),
    seeds: str = typer.Option("0", help="Seeds of every variant: 0,1,2 or 0-4."),
    settings: list[str] = typer.Option([], "--set", help="key=value[,value...] over a train "
                                       "option (lr, epochs, scorer.channels, loss.topk, ...); "
                                       "repeat it: the grid is every combination."),
    device: Optional[str] = typer.Option(None, help="auto | cpu | cuda [auto]; under torchrun "
                                         "each process uses cuda:LOCAL_RANK."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or info logs."),
) -> None:
    """Train seeds x config variants and tabulate validation metrics (mean ± std over seeds).

    Under torchrun -m memtsm sweep, rank r of N trains runs r, r+N, ...; exits 1 if a run failed.
    """
    from memtsm.runtime.world import World
    from memtsm.train.config import TrainConfig
    from memtsm.train.sweep import SweepConfig, parse_seeds, run_sweep

    try:
        world = World.from_env()
    except RuntimeError as exc:
        raise _usage_error(str(exc)) from None
    _setup_logging(quiet)
    try:
        base = TrainConfig.from_yaml(config, {"features": tuple(str(p) for p in features),
                                              "out": str(out), "device": device})
        plan = SweepConfig.from_settings(base, parse_seeds(seeds), settings)
        result = run_sweep(plan, _progress(quiet or not world.is_main, "runs"), world)
    except KeyboardInterrupt:
        typer.echo(f"interrupted: rerun the same command to continue the sweep in {out}",
                   err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (OSError, ValueError, RuntimeError) as exc:
        raise _usage_error(str(exc)) from None
    if world.is_main:
        typer.echo(result.markdown, nl=False)
        for run in result.failed:
            typer.echo(f"failed: {run['variant']} seed {run['seed']}: {run['error']}", err=True)
        typer.echo(f"{len(result.runs)} runs -> {result.out}/sweep.csv, sweep.md, sweep.json",
                   err=True)
    raise typer.Exit(EXIT_FAILURES if result.failed else EXIT_OK)


class AnnotationFormat(str, enum.Enum):
    """``--annotation-format`` of ``memtsm evaluate``."""

    AUTO = "auto"
    UCF_CRIME = "ucf-crime"
    UCSD = "ucsd"
    CSV = "csv"


@app.command()
def evaluate(
    checkpoint: Path = typer.Option(..., "--checkpoint", "-c", help="A best.pt from train."),
    features: list[Path] = typer.Option(..., "--features", "-f", help="Feature store(s) of the "
                                        "test videos."),
    annotations: Path = typer.Option(..., "--annotations", "-a", help="Frame annotations: "
                                     "UCF-Crime temporal file, UCSD .m, or CSV video,start,end."),
    annotation_format: AnnotationFormat = typer.Option(AnnotationFormat.AUTO),
    frame_counts: Optional[Path] = typer.Option(None, help="'Class/Name.mp4 n_frames' file to "
                                                "clip annotation ends (else stored counts)."),
    ucsd_names: str = typer.Option("{:02d}", help="Store ids of the videos of a UCSD .m file, "
                                   "in order ('{:02d}' -> 01, 02, ...)."),
    segments: Optional[int] = typer.Option(None, help="Score S resampled segments, as in "
                                           "training, instead of every clip."),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write every metric and "
                                            "per-video scores here."),
    plot_curves: Optional[Path] = typer.Option(None, help="Write roc.png and pr.png here."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Frame-level ROC-AUC, PR-AUC and F1 of a checkpoint on annotated test videos."""
    _setup_logging(quiet)
    from memtsm.evaluate.protocol import EvalConfig
    from memtsm.evaluate.protocol import evaluate as run_evaluate

    try:
        eval_config = EvalConfig(
            checkpoint=str(checkpoint), features=tuple(str(p) for p in features),
            annotations=str(annotations), annotation_format=annotation_format.value,
            frame_counts=str(frame_counts) if frame_counts else None,
            ucsd_name_format=ucsd_names, segments=segments, device=device)
        result = run_evaluate(eval_config, _progress(quiet))
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        raise _usage_error(str(exc)) from None
    metrics = result.metrics

    def show(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    typer.echo(f"videos {metrics.n_videos}  frames {metrics.n_frames}  anomalous frames "
               f"{metrics.n_anomalous_frames}")
    typer.echo(f"frame ROC-AUC {show(metrics.roc_auc)}  PR-AUC (average precision) "
               f"{show(metrics.pr_auc)}  PR-AUC (trapezoidal) {show(metrics.pr_auc_trapz)}")
    typer.echo(f"at threshold {metrics.threshold:.4f} ({result.threshold_source}): F1 "
               f"{show(metrics.f1)}  precision {show(metrics.precision)}  recall "
               f"{show(metrics.recall)}")
    typer.echo(f"ROC-AUC over anomalous videos only {show(metrics.anomalous_video_auc)}")
    for name, value in sorted((metrics.per_class_auc or {}).items()):
        typer.echo(f"  {name:<16} ROC-AUC {show(value)}")
    for message in metrics.messages:
        typer.echo(f"note: {message}", err=True)
    if result.annotated_but_missing:
        typer.echo(f"note: {len(result.annotated_but_missing)} annotated videos are not in the "
                   f"stores (e.g. {result.annotated_but_missing[0]})", err=True)
    if json_out:
        result.write_json(json_out)
    if plot_curves:
        result.plot_curves(plot_curves)


@app.command()
def score(
    inputs: list[Path] = typer.Argument(..., help="Video files, folders of videos or frame "
                                        "folders."),
    checkpoint: Path = typer.Option(..., "--checkpoint", "-c", help="A best.pt from train."),
    decoder: DecoderBackend = typer.Option(DecoderBackend.AUTO, help="Decoder backend."),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N"),
    xfeat_weights: Optional[Path] = typer.Option(None, help="XFeat weights file."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Per-segment scores as JSON."),
    csv_out: Optional[Path] = typer.Option(None, "--csv", help="Per-segment scores as CSV."),
    plot: Optional[Path] = typer.Option(None, help="PNG of score and reconstruction error over "
                                        "time (one video; with several, VIDEO is appended)."),
    report: Optional[Path] = typer.Option(None, help="Self-contained HTML report (plot, "
                                          "metadata, thumbnails of the most anomalous segments)."),
    save_features: Optional[Path] = typer.Option(None, help="Also store the features here."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No table or progress bar."),
) -> None:
    """Score raw videos: per-segment anomaly scores and memory reconstruction error."""
    _setup_logging(quiet)
    from memtsm.score.video import score_videos, write_csv, write_json
    from memtsm.train.checkpoint import CheckpointError

    reports, failures = [], {}
    try:
        for video_id, result in score_videos(
                inputs, checkpoint, decoder=decoder.value, device=device,
                xfeat_weights=str(xfeat_weights) if xfeat_weights else None,
                save_features=save_features, progress=_progress(quiet)):
            if isinstance(result, str):
                failures[video_id] = result
                continue
            reports.append(result)
            if not quiet:
                _print_segments(result)
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (OSError, ValueError, RuntimeError, CheckpointError) as exc:
        raise _usage_error(str(exc)) from None
    if json_out:
        write_json(reports, json_out, failures)
    if csv_out:
        write_csv(reports, csv_out)
    if plot or report:
        from memtsm.score.report import plot_scores, write_html_report

        for result in reports:
            if plot:
                plot_scores(result, _per_video_path(plot, result.video, len(reports)))
            if report:
                write_html_report(result, _per_video_path(report, result.video, len(reports)))
    for message in failures.values():
        typer.echo(f"failed: {message}", err=True)
    raise typer.Exit(EXIT_FAILURES if failures else EXIT_OK)


def _per_video_path(path: Path, video_id: str, count: int) -> Path:
    if count == 1:
        return path
    return path.with_name(f"{path.stem}-{video_id.replace('/', '_')}{path.suffix}")


def _print_segments(report) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{report.video} ({report.num_frames} frames, {report.fps:.2f} fps, "
                  f"threshold {report.threshold:.3f})")
    for column in ("segment", "time (s)", "frames", "score", "recon error", "flagged"):
        table.add_column(column, justify="right")
    for s in report.segments:
        table.add_row(str(s.index), f"{s.start_time:.2f}-{s.end_time:.2f}",
                      f"{s.start_frame}-{s.end_frame - 1}", f"{s.score:.3f}",
                      f"{s.recon_error:.3f}", "[red]yes[/red]" if s.flagged else "")
    Console().print(table)


@app.command()
def demo(
    out: Path = typer.Option(Path("memtsm-demo"), "--out", "-o", help="Where everything goes."),
    fast: bool = typer.Option(False, "--fast", help="A smaller, quicker version."),
    seed: int = typer.Option(0, help="Seed of the data set and the training run."),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N"),
    xfeat_weights: Optional[Path] = typer.Option(None, help="XFeat weights file."),
) -> None:
    """Generate synthetic surveillance videos, then extract, train, evaluate and score."""
    _setup_logging(True)
    from memtsm.demo import run_demo

    try:
        result = run_demo(out, fast=fast, seed=seed, device=device,
                          xfeat_weights=str(xfeat_weights) if xfeat_weights else None,
                          log=lambda line: typer.echo(line, err=True))
    except (OSError, ValueError, RuntimeError) as exc:
        raise _usage_error(str(exc)) from None

    def show(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    typer.echo(f"demo done in {result.seconds:.0f} s -> {result.out}/")
    typer.echo(f"  test set, frame level: ROC-AUC {show(result.roc_auc)}  PR-AUC "
               f"{show(result.pr_auc)}  F1 {show(result.f1)} at the validation threshold "
               f"{show(result.threshold)}")
    typer.echo(f"  checkpoint: {result.checkpoint}")
    typer.echo(f"  scored {result.scored_video}: plot {result.plot}, report {result.report}")


@features_app.command("verify")
def features_verify(store: Path = typer.Argument(..., help="Feature store directory.")) -> None:
    """Open every shard and read every video back: completeness, checksums, ids, index."""
    from memtsm.extract.verify import verify_store

    report = verify_store(store)
    typer.echo(f"{store}: {report.shards} shards, {report.videos} videos, "
               f"{len(report.problems)} problems")
    for problem in report.problems:
        typer.echo(f"  {problem}")
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILURES)


def main() -> None:
    """Console-script entry point."""
    app()
