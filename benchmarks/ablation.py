"""Ablation of MemTSM on dev data, with both baselines in the same run: which parts earn a place.

    python benchmarks/ablation.py c3d  [--seeds 0 1 2] [--variants ...] [--work DIR] [--json F]
    python benchmarks/ablation.py ped2 [--seeds 0 1 2] [--variants ...] [--work DIR] [--json F]
        [--precision fp32|bf16|int8]

Dev data only (``../shared/data``; never the held-out set):

``c3d``: train on the 244 ``c3d_vantage`` UCF-Crime training videos (20 % of each class held out
for validation), test on the 10 official ``c3d_sultani`` test videos with the official temporal
annotation; both L2-normalised per segment (see ``benchmarks/real_data.py``).

``ped2``: XFeat features of all 14 shared UCSD Ped2 videos (8 normal training videos, 6 test
videos with anomalies), split into 3 folds (normal videos 1,4,7 / 2,5,8 / 3,6 and anomalous
1,4 / 2,5 / 3,6); each fold trains on the other two (video labels only) and is tested frame by
frame with the official ground truth. A seed's figure is the mean over the 3 folds.
``--precision`` extracts the Ped2 features with the XFeat network at that precision (into
``WORK/ped2-<precision>``), which measures what bf16 or int8 features cost in frame AUC.

Every variant is the default ``memtsm train`` configuration with one change (:data:`VARIANTS`);
``mil-mlp`` and ``rtfm`` are the baselines with their own recipes. Best epoch and threshold are
chosen on validation videos only. Prints one line per run and a table of mean +- std over seeds
(sample standard deviation), and with ``--json`` writes every figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_data import SHARED, prepare_c3d  # noqa: E402

from memtsm.evaluate.protocol import EvalConfig, evaluate  # noqa: E402
from memtsm.extract import ExtractConfig, extract  # noqa: E402
from memtsm.extract.config import PRECISIONS  # noqa: E402
from memtsm.extract.store import FeatureStore, FeatureStoreWriter  # noqa: E402
from memtsm.runtime.threads import configure_threads  # noqa: E402
from memtsm.train.config import TrainConfig  # noqa: E402
from memtsm.train.loop import train  # noqa: E402

#: One change each to the default training configuration (nested dicts merge key by key).
VARIANTS: dict[str, dict[str, Any]] = {
    "memtsm": {},
    "no-shift": {"scorer": {"temporal_shift": False}},
    "no-conv": {"scorer": {"temporal_kernel": 1}},
    "no-se": {"scorer": {"squeeze_excite": False}},
    "no-readout": {"scorer": {"head_readout": False}},
    "no-recon": {"loss": {"recon_weight": 0.0}},
    "no-memreg": {"loss": {"mem_reg_weight": 0.0}},
    "bce": {"loss": {"focal_gamma": 0.0, "focal_alpha": 0.5}},
    "topk1": {"loss": {"topk": 1}},
    "topk8": {"loss": {"topk": 8}},
    "c128": {"scorer": {"channels": 128}},
    "1-block": {"scorer": {"num_blocks": 1}},
    "dropout0": {"scorer": {"dropout": 0.0}},
    "dropout0.3": {"scorer": {"dropout": 0.3}},
    "seg16": {"num_segments": 16},
    "steps250": {"steps": 250},
    "steps1500": {"steps": 1500},
    "tie-val-loss": {"tie_break": "val-loss"},
    "causal": {"scorer": {"causal": True}},
    "sparse1e-3": {"loss": {"sparsity_weight": 1e-3}},
    "sparse1e-2": {"loss": {"sparsity_weight": 1e-2}},
    "sparse3e-2": {"loss": {"sparsity_weight": 3e-2}},
    "noise0.5": {"feature_noise": 0.5},
    "noise1": {"feature_noise": 1.0},
    "noise2": {"feature_noise": 2.0},
    "noise4": {"feature_noise": 4.0},
    "noise2-topk8-seg16": {"feature_noise": 2.0, "loss": {"topk": 8}, "num_segments": 16},
    "noise2-seg16": {"feature_noise": 2.0, "num_segments": 16},
    "ensemble3": {"ensemble": 3},
    "ensemble5": {"ensemble": 5},
    "noise2-topk8-seg16-ensemble3": {"feature_noise": 2.0, "loss": {"topk": 8},
                                     "num_segments": 16, "ensemble": 3},
    "mil-mlp": {"model": "mil-mlp"},
    "rtfm": {"model": "rtfm"},
}

PED2_NORMAL_FOLDS = ((1, 4, 7), (2, 5, 8), (3, 6))
PED2_ANOMALOUS_FOLDS = ((1, 4), (2, 5), (3, 6))


def _subset(source: FeatureStore, out: Path, video_ids: list[str]) -> Path:
    if not (out / "index.jsonl").exists():
        with FeatureStoreWriter(out, source.identity, source.meta.get("provenance")) as writer:
            for video_id in video_ids:
                writer.add(source.read(video_id))
    return out


def prepare_ped2_folds(work: Path, precision: str = "fp32") -> list[dict[str, Any]]:
    """Extract the 14 Ped2 videos once (XFeat at ``precision``); one train and one test store
    per fold."""
    ped2 = SHARED / "ucsd_ped2"
    work.mkdir(parents=True, exist_ok=True)
    labels = work / "ped2_labels.csv"
    labels.write_text("video,label,class\n"
                      + "".join(f"training/{i:02d},0,Normal\n" for i in range(1, 9))
                      + "".join(f"testing/{i:02d},1,Ped2Anomaly\n" for i in range(1, 7)))
    full = work / "ped2_all"
    if not (full / "index.jsonl").exists():
        extract([ped2], full, ExtractConfig(labels_csv=str(labels), precision=precision))
    source = FeatureStore(full)
    folds = []
    for k, (normal, anomalous) in enumerate(zip(PED2_NORMAL_FOLDS, PED2_ANOMALOUS_FOLDS)):
        test = [f"training/{i:02d}" for i in normal] + [f"testing/{i:02d}" for i in anomalous]
        train_ids = [v for v in source.video_ids if v not in test]
        folds.append({"name": f"fold{k}",
                      "train": _subset(source, work / f"ped2_fold{k}_train", train_ids),
                      "test": _subset(source, work / f"ped2_fold{k}_test", test),
                      "annotations": ped2 / "gt" / "UCSDped2.m", "counts": None})
    return folds


def c3d_folds(work: Path) -> list[dict[str, Any]]:
    train_store, test_store, annotations, counts = prepare_c3d(work)
    return [{"name": "dev", "train": train_store, "test": test_store,
             "annotations": annotations, "counts": counts}]


def run_one(fold: dict[str, Any], variant: str, seed: int, work: Path) -> dict[str, Any]:
    """Train (unless done) and evaluate one variant on one fold with one seed."""
    run_dir = work / f"{fold['name']}-{variant}-seed{seed}"
    base = TrainConfig(features=(str(fold["train"]),), out=str(run_dir), seed=seed,
                       device="cpu")
    started = time.perf_counter()
    # resume: an interrupted run continues, a finished one returns at once
    train(base.replace(resume=True, **VARIANTS[variant]))
    seconds = time.perf_counter() - started
    result = evaluate(EvalConfig(
        checkpoint=str(run_dir / "best.pt"), features=(str(fold["test"]),),
        annotations=str(fold["annotations"]),
        frame_counts=str(fold["counts"]) if fold["counts"] else None,
        ucsd_name_format="testing/{:02d}", device="cpu"))
    m = result.metrics
    return {"fold": fold["name"], "variant": variant, "seed": seed, "roc_auc": m.roc_auc,
            "pr_auc": m.pr_auc, "train_seconds": round(seconds, 1)}


def summarise(rows: list[dict[str, Any]], variants: list[str], seeds: list[int]) -> list[str]:
    """Markdown table: per variant, the mean +- std over seeds of the fold-mean ROC-AUC / AP."""
    lines = ["| variant | frame ROC-AUC | PR-AUC | vs memtsm |", "|---|---|---|---|"]
    base = None
    for variant in variants:
        per_seed = {key: [] for key in ("roc_auc", "pr_auc")}
        for seed in seeds:
            mine = [r for r in rows if r["variant"] == variant and r["seed"] == seed]
            for key in per_seed:
                per_seed[key].append(statistics.mean(r[key] for r in mine))
        mean = statistics.mean(per_seed["roc_auc"])
        std = statistics.stdev(per_seed["roc_auc"]) if len(seeds) > 1 else 0.0
        ap = statistics.mean(per_seed["pr_auc"])
        ap_std = statistics.stdev(per_seed["pr_auc"]) if len(seeds) > 1 else 0.0
        base = mean if variant == "memtsm" else base
        delta = "" if base is None or variant == "memtsm" else f"{mean - base:+.3f}"
        lines.append(f"| {variant} | {mean:.3f} ± {std:.3f} | {ap:.3f} ± {ap_std:.3f} | {delta} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=("c3d", "ped2"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--work", type=Path, default=Path("ablation-runs"))
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--threads", type=int, help="torch threads (default: the CPUs)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="ped2: precision of the XFeat network that extracts the features")
    args = parser.parse_args()
    if args.dataset == "c3d" and args.precision != "fp32":
        parser.error("--precision applies to ped2 (the C3D features are published ones)")
    configure_threads(args.threads)
    suffix = "" if args.precision == "fp32" else f"-{args.precision}"
    work = args.work / (args.dataset + suffix)
    folds = (c3d_folds(work) if args.dataset == "c3d"
             else prepare_ped2_folds(work, args.precision))
    rows = []
    for variant in args.variants:
        for seed in args.seeds:
            for fold in folds:
                row = run_one(fold, variant, seed, work)
                rows.append(row)
                print(f"{args.dataset} {variant:<13} seed {seed} {fold['name']}: ROC-AUC "
                      f"{row['roc_auc']:.4f} PR-AUC {row['pr_auc']:.4f} "
                      f"({row['train_seconds']} s)", flush=True)
            if args.json:
                args.json.write_text(json.dumps(rows, indent=1))
    print(f"\n{args.dataset}{suffix}: seeds {args.seeds}, {len(folds)} fold(s)")
    print("\n".join(summarise(rows, args.variants, args.seeds)))


if __name__ == "__main__":
    main()
