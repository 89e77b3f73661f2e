"""The real-data checks: MemTSM vs the MIL baseline, same splits, same seeds, frame-level AUC.

    python benchmarks/real_data.py c3d  [--seeds 0 1 2] [--epochs 20] [--work DIR]
    python benchmarks/real_data.py ped2 [--seeds 0 1 2] [--epochs 20] [--work DIR]

``c3d``: the 244 real UCF-Crime training videos' C3D features (``c3d_vantage``) for training,
the 10 official test videos' C3D features (``c3d_sultani``) with the official temporal annotation
for testing; both L2-normalised per segment.

``ped2``: XFeat features extracted by ``memtsm extract`` from the UCSD Ped2 frames; train on normal
training videos 01-04 + anomalous test videos 01, 03, 05 (video label 1), test on normal training
videos 05-08 + test videos 02, 04, 06 with the official frame ground truth (``gt/UCSDped2.m``).

Everything goes through the same library calls as the CLI; validation data (carved from the
training videos) picks the epoch and threshold. Prints one line per run and mean +- std.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

from memtsm.evaluate.protocol import EvalConfig, evaluate
from memtsm.extract import ExtractConfig, extract
from memtsm.extract.external import import_features
from memtsm.train.config import MODEL_NAMES, ScorerOptions, TrainConfig
from memtsm.train.loop import train

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MEMTSM_SHARED_DATA", REPO.parent / "shared" / "data"))
MODELS = MODEL_NAMES


def prepare_c3d(work: Path) -> tuple[Path, Path, Path, Path | None]:
    ucf = SHARED / "ucf_crime"
    train_store, test_store = work / "c3d_train", work / "c3d_test"
    if not (train_store / "index.jsonl").exists():
        import_features([ucf / "c3d_vantage"], train_store, "csv", normalize="l2",
                        frame_counts=ucf / "meta" / "Train_Annotation.txt")
    if not (test_store / "index.jsonl").exists():
        import_features([ucf / "c3d_sultani"], test_store, "sultani-txt", normalize="l2",
                        frame_counts=ucf / "meta" / "Test_Annotation.txt")
    annotations = ucf / "meta" / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"
    return train_store, test_store, annotations, ucf / "meta" / "Test_Annotation.txt"


def prepare_ped2(work: Path) -> tuple[Path, Path, Path, Path | None]:
    ped2 = SHARED / "ucsd_ped2"
    work.mkdir(parents=True, exist_ok=True)
    labels = work / "ped2_labels.csv"
    labels.write_text("video,label,class\n"
                      + "".join(f"training/{i:02d},0,Normal\n" for i in range(1, 9))
                      + "".join(f"testing/{i:02d},1,Ped2Anomaly\n" for i in range(1, 7)))
    lists = {"train": [f"training/{i:02d}" for i in (1, 2, 3, 4)]
             + [f"testing/{i:02d}" for i in (1, 3, 5)],
             "test": [f"training/{i:02d}" for i in (5, 6, 7, 8)]
             + [f"testing/{i:02d}" for i in (2, 4, 6)]}
    stores = {}
    for split, ids in lists.items():
        listing = work / f"ped2_{split}.txt"
        listing.write_text("\n".join(ids) + "\n")
        stores[split] = work / f"ped2_{split}"
        if not (stores[split] / "index.jsonl").exists():
            extract([ped2], stores[split],
                    ExtractConfig(labels_csv=str(labels), video_list=str(listing)))
    return stores["train"], stores["test"], ped2 / "gt" / "UCSDped2.m", None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=("c3d", "ped2"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--steps-per-epoch", type=int, default=None)
    parser.add_argument("--num-segments", type=int, default=32)
    parser.add_argument("--channels", type=int, default=512, help="MemTSM trunk width C")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--work", type=Path, default=Path("real-data-runs"))
    parser.add_argument("--json", type=Path, help="write all results here")
    args = parser.parse_args()
    prepare = prepare_c3d if args.dataset == "c3d" else prepare_ped2
    train_store, test_store, annotations, counts = prepare(args.work)
    results: dict[str, list[dict]] = {model: [] for model in args.models}
    for model in args.models:
        for seed in args.seeds:
            run_dir = args.work / (f"{args.dataset}-{model}-seed{seed}-e{args.epochs}"
                                   f"-s{args.steps_per_epoch}-n{args.num_segments}"
                                   + (f"-c{args.channels}" if args.channels != 512 else ""))
            if not (run_dir / "best.pt").exists():
                train(TrainConfig(features=(str(train_store),), out=str(run_dir), model=model,
                                  seed=seed, epochs=args.epochs, device="cpu",
                                  steps_per_epoch=args.steps_per_epoch,
                                  num_segments=args.num_segments,
                                  scorer=ScorerOptions(channels=args.channels)))
            result = evaluate(EvalConfig(
                checkpoint=str(run_dir / "best.pt"), features=(str(test_store),),
                annotations=str(annotations), frame_counts=str(counts) if counts else None,
                ucsd_name_format="testing/{:02d}", device="cpu"))
            m = result.metrics
            row = {"seed": seed, "roc_auc": m.roc_auc, "pr_auc": m.pr_auc, "f1": m.f1,
                   "anomalous_video_auc": m.anomalous_video_auc}
            results[model].append(row)
            print(f"{args.dataset} {model:<8} seed {seed}: frame ROC-AUC {m.roc_auc:.4f}  "
                  f"PR-AUC {m.pr_auc:.4f}  F1@val-threshold {m.f1 or 0:.4f}", flush=True)
    print(f"\n{args.dataset}: {m.n_videos} test videos, {m.n_frames} frames, epochs {args.epochs}, "
          f"steps/epoch {args.steps_per_epoch or 'one pass'}, segments {args.num_segments}")
    for model, rows in results.items():
        for key in ("roc_auc", "pr_auc"):
            values = [r[key] for r in rows]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            print(f"{model:<8} {key:<8} {statistics.mean(values):.4f} +- {spread:.4f} "
                  f"(seeds {args.seeds})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
