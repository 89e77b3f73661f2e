"""``memtsm demo``: the whole pipeline on a synthetic surveillance data set it generates itself.

Generate UCF-Crime-style videos (pedestrians; anomalies: running, fighting, falling, thrown
objects, explosions, scattering crowds) with frame-level ground truth -> ``memtsm extract`` ->
``memtsm train`` (video-level labels only) -> ``memtsm evaluate`` on held-out test videos
(frame-level AUC, threshold from validation) -> ``memtsm score`` one test video with a plot and
an HTML report. Everything lands in one folder.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from memtsm.evaluate.protocol import EvalConfig, evaluate
from memtsm.extract import ExtractConfig, FeatureSpec, extract
from memtsm.extract.runner import DECODE_THREADS
from memtsm.runtime.files import atomic_write_text
from memtsm.runtime.threads import configure_threads
from memtsm.synth import SynthConfig, make_dataset
from memtsm.train.config import TrainConfig
from memtsm.train.loop import train


@dataclass(frozen=True)
class DemoSize:
    """How big the demo is."""

    train_normal: int
    train_anomalous: int
    test_normal: int
    test_anomalous: int
    min_frames: int
    max_frames: int
    epochs: int
    steps: int | None = None
    """Optimiser steps; ``None``: the recipe's for the data size (what ``memtsm train`` does)."""


#: The default demo (a few minutes on 2 CPU cores) and ``--fast`` (what the tests run).
FULL = DemoSize(train_normal=30, train_anomalous=30, test_normal=12, test_anomalous=18,
                min_frames=112, max_frames=176, epochs=30)
FAST = DemoSize(train_normal=6, train_anomalous=6, test_normal=2, test_anomalous=3,
                min_frames=64, max_frames=80, epochs=4, steps=40)
#: Synthetic frames are 160x120; XFeat sees them upscaled to 320x224 like real 320x240 video
#: (at 160x128 falls are hardly visible to it: frame AUC of falling ~0.46 vs ~0.83).
DEMO_LONG_SIDE = 320


@dataclass(frozen=True)
class DemoResult:
    """Where everything is, and the headline numbers."""

    out: Path
    roc_auc: float | None
    pr_auc: float | None
    f1: float | None
    val_video_threshold: float | None
    checkpoint: Path
    scored_video: Path
    report: Path
    plot: Path
    seconds: float


def run_demo(out: Path | str = "memtsm-demo", fast: bool = False, seed: int = 0,
             device: str = "auto", xfeat_weights: str | None = None,
             log: Callable[[str], None] = print, threads: int | None = None) -> DemoResult:
    """Run the demo into ``out``; the folders it owns there are rebuilt from scratch.

    ``threads``: CPU threads of torch (:func:`~memtsm.runtime.threads.configure_threads`; by
    default the CPUs this process may use).
    """
    from memtsm.score.report import plot_scores, write_html_report
    from memtsm.score.video import score_video, write_json

    configure_threads(threads, reserve=DECODE_THREADS)
    started = time.perf_counter()
    out = Path(out)
    for owned in ("features", "run", "curves"):
        shutil.rmtree(out / owned, ignore_errors=True)
    size = FAST if fast else FULL
    log(f"1/5 generating synthetic surveillance videos in {out / 'videos'}")
    data = make_dataset(out / "videos", size.train_normal, size.train_anomalous, size.test_normal,
                        size.test_anomalous, SynthConfig(min_frames=size.min_frames,
                                                         max_frames=size.max_frames),
                        seed=seed, overwrite=True)
    config = ExtractConfig(spec=FeatureSpec(long_side=DEMO_LONG_SIDE), device=device,
                           xfeat_weights=xfeat_weights)
    stores = {}
    for split, folder in (("train", data.train_dir), ("test", data.test_dir)):
        log(f"2/5 extracting XFeat clip features of the {split} videos")
        stores[split] = out / "features" / split
        summary = extract([folder], stores[split], config)
        if summary.failures:
            raise RuntimeError(f"demo extraction failed: {summary.failures[0].error}")
    log(f"3/5 training MemTSM with video-level labels ({size.epochs} epochs)")
    run_dir = out / "run"
    trained = train(TrainConfig(features=(str(stores["train"]),), out=str(run_dir), seed=seed,
                                epochs=size.epochs, steps=size.steps, device=device))
    log("4/5 evaluating on held-out test videos (frame level, threshold from validation)")
    result = evaluate(EvalConfig(checkpoint=str(trained.best_checkpoint),
                                 features=(str(stores["test"]),),
                                 annotations=str(data.temporal_annotation),
                                 frame_counts=str(data.test_annotation), device=device))
    result.write_json(out / "evaluation.json")
    result.plot_curves(out / "curves")
    test_anomalous = [v for v in data.test_videos if v.kind is not None]
    video = test_anomalous[0].path
    log(f"5/5 scoring {video} from the raw video")
    report = score_video(video, trained.best_checkpoint, device=device,
                         xfeat_weights=xfeat_weights)
    write_json([report], out / "scores.json")
    plot = plot_scores(report, out / "scores.png")
    html = write_html_report(report, out / "report.html")
    metrics = result.metrics
    atomic_write_text(out / "summary.json", json.dumps({
        "roc_auc": metrics.roc_auc, "pr_auc": metrics.pr_auc, "f1": metrics.f1,
        "val_video_threshold": metrics.threshold, "n_test_videos": metrics.n_videos,
        "n_test_frames": metrics.n_frames, "best_epoch": trained.best_epoch,
        "fast": fast, "seed": seed}, indent=1) + "\n")
    return DemoResult(out=out, roc_auc=metrics.roc_auc, pr_auc=metrics.pr_auc, f1=metrics.f1,
                      val_video_threshold=metrics.threshold, checkpoint=trained.best_checkpoint,
                      scored_video=video, report=html, plot=plot,
                      seconds=time.perf_counter() - started)
