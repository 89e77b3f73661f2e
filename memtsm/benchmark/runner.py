"""``memtsm benchmark``: a standard benchmark's table from feature files, by one command.

Steps, each done by an existing owner:

1. **Import** (rank 0): a training or test input that is not a feature store is imported with
   :func:`memtsm.extract.external.import_features` into ``out/features/train`` or
   ``out/features/test`` (format, list, crops, audio as :class:`FeatureInput` says); stores are
   used as they are.
2. **Train** every seed: a :class:`~memtsm.train.sweep.SweepConfig` of the base
   :class:`~memtsm.train.config.TrainConfig` over the seeds (:func:`memtsm.train.sweep.run_sweep`),
   so under ``torchrun`` rank ``r`` trains seeds ``r, r + N, ...``. The checkpoint of each seed
   is its ``best.pt``: chosen on held-out *training* videos (validation ROC-AUC), with the
   validation threshold; the test set chooses nothing.
3. **Evaluate** (rank 0) each seed's ``best.pt`` with the benchmark's protocol
   (:func:`memtsm.evaluate.protocol.evaluate`, ``protocol=name``).
4. **Tabulate**: ``results.json`` (config, versions, every seed's metrics and card) and
   ``results.md`` (mean ± sample std over seeds of the headline and the other metrics, one column
   per seed, and the protocol card), written atomically.

Layout of ``out``::

    benchmark.json        the resolved benchmark config (a rerun must match)
    features/train|test   imported stores (when the inputs were feature files)
    sweep/                the seeds' run directories (memtsm.train.sweep)
    results.json, results.md

Reruns continue: imports skip stored videos, the sweep skips finished seeds; evaluation and the
tables are redone.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memtsm.evaluate.protocols import get_protocol
from memtsm.extract.external import import_features, parse_crops
from memtsm.extract.store import read_store_identity
from memtsm.runtime.files import atomic_write_text
from memtsm.runtime.progress import Progress, SilentProgress
from memtsm.runtime.world import World
from memtsm.train.config import TrainConfig

logger = logging.getLogger(__name__)

CONFIG_NAME = "benchmark.json"
RESULTS_NAMES = ("results.json", "results.md")
IMPORT_DONE_NAME = "imported.json"
#: Metrics of every seed's evaluation that the table reports (headline first, then these).
TABLE_METRICS = (("roc_auc", "frame ROC-AUC"), ("pr_auc", "frame AP"),
                 ("anomalous_video_auc", "ROC-AUC, anomalous videos only"),
                 ("normal_false_alarm_rate", "false-alarm rate on normal videos"),
                 ("f1", "frame F1 at the threshold"))
#: Default seeds (``--seeds 0-4``).
DEFAULT_SEEDS = (0, 1, 2, 3, 4)


class BenchmarkError(ValueError):
    """An invalid benchmark: inputs, options, or another benchmark in ``out``."""


@dataclass(frozen=True)
class FeatureInput:
    """One side (training or test) of a benchmark: feature stores, or files to import.

    Attributes:
        paths: feature store directories, or files / folders in ``format``.
        format: import format (:data:`~memtsm.extract.external.FEATURE_FORMATS`); ``None``
            when ``paths`` are stores.
        list_file: the published list naming this side's videos (and maybe labels).
        frame_counts: ``Class/Name.mp4 n_frames`` file (UCF-Crime ``meta/*_Annotation.txt``).
        crops: ``mean``, ``each`` or a crop number (crop formats).
        audio: folders of ``<Name>__vggish.npy`` to concatenate (XD-Violence).
        labels: ``video,label[,class]`` CSV overriding the label rules.
    """

    paths: tuple[str, ...]
    format: str | None = None
    list_file: str | None = None
    frame_counts: str | None = None
    crops: str = "mean"
    audio: tuple[str, ...] = ()
    labels: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "paths", tuple(str(p) for p in self.paths))
        object.__setattr__(self, "audio", tuple(str(p) for p in self.audio))
        if not self.paths:
            raise BenchmarkError("give the features of both the training and the test videos")
        parse_crops(self.crops)


@dataclass(frozen=True)
class BenchmarkConfig:
    """A benchmark run.

    Attributes:
        name: the protocol (:data:`~memtsm.evaluate.protocols.PROTOCOL_NAMES`).
        train, test: the two sides' features.
        annotations: the test ground truth the protocol reads.
        out: the benchmark directory.
        base: the training run of every seed (``features`` and ``out`` are set here; ``seed``
            by each seed); its ``model`` is the scorer benchmarked.
        seeds: the seeds, each trained and evaluated once.
        feature_name, normalize: identity of imported features (as ``import-features``).
    """

    name: str
    train: FeatureInput
    test: FeatureInput
    annotations: str
    out: str
    base: TrainConfig | None = None
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    feature_name: str = "i3d"
    normalize: str = "none"
    device: str = "auto"

    def __post_init__(self) -> None:
        get_protocol(self.name)
        object.__setattr__(self, "seeds", tuple(self.seeds))
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise BenchmarkError(f"--seeds: give distinct seeds, got {self.seeds!r}")

    @property
    def root(self) -> Path:
        """``out`` as a path."""
        return Path(self.out)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (what ``benchmark.json`` holds)."""
        data = dataclasses.asdict(dataclasses.replace(self, base=None))
        data["base"] = None if self.base is None else self.base.to_dict()
        return data


@dataclass(frozen=True)
class BenchmarkResult:
    """What :func:`run_benchmark` produced (complete on rank 0).

    Attributes:
        out: the benchmark directory.
        seeds: per seed: ``status``, metrics, card text (rank 0), or the error.
        table: metric -> ``{"mean", "std", "values"}`` over the seeds that finished.
        markdown: ``results.md``.
    """

    out: Path
    seeds: tuple[dict[str, Any], ...]
    table: dict[str, dict[str, Any]] = field(default_factory=dict)
    markdown: str = ""

    @property
    def failed(self) -> tuple[dict[str, Any], ...]:
        """Seeds that did not train or evaluate."""
        return tuple(s for s in self.seeds if s["status"] != "ok")


# -- import ----------------------------------------------------------------------------------


def _is_store(path: Path) -> bool:
    return path.is_dir() and read_store_identity(path) is not None


def _stores_of(side: FeatureInput, where: Path, config: BenchmarkConfig) -> tuple[str, ...]:
    """The store(s) of one side, importing its files first when they are not stores.

    Raises:
        BenchmarkError: a mix of stores and files, files without ``format``, or an import
            that stored nothing.
    """
    paths = [Path(p) for p in side.paths]
    stores = [p for p in paths if _is_store(p)]
    if len(stores) == len(paths):
        return tuple(str(p) for p in paths)
    if stores:
        raise BenchmarkError(f"{', '.join(map(str, stores))} are feature stores but "
                             f"{', '.join(str(p) for p in paths if p not in stores)} are not: "
                             "give stores or feature files, not both")
    if side.format is None:
        raise BenchmarkError(f"{paths[0]} is not a feature store: name the file layout "
                             "(--format) to import it")
    summary = import_features(
        paths, where, side.format,  # type: ignore[arg-type]
        frame_counts=side.frame_counts, normalize=config.normalize,  # type: ignore[arg-type]
        labels_csv=side.labels, feature_name=config.feature_name, crops=side.crops,
        list_file=side.list_file, audio_inputs=side.audio)
    for failure in summary.failures:
        logger.warning("not imported: %s: %s", failure.source, failure.error)
    if not _is_store(where):
        raise BenchmarkError(f"nothing was imported from {', '.join(map(str, paths))} "
                             f"({len(summary.failures)} failures, see {where}/failures.jsonl)")
    logger.info("imported %d videos (%d already stored, %d failed) -> %s",
                len(summary.imported), len(summary.skipped), len(summary.failures), where)
    return (str(where),)


def _claim(config: BenchmarkConfig) -> None:
    """Write ``benchmark.json``, or check that the one there describes the same benchmark.

    Raises:
        BenchmarkError: ``out`` holds another benchmark (the device may differ).
    """
    path = config.root / CONFIG_NAME
    mine = json.loads(json.dumps(config.to_dict()))  # tuples as the file has them: lists
    if path.is_file():
        theirs = json.loads(path.read_text(encoding="utf-8"))
        strip = [mine, theirs]
        for data in strip:
            data.pop("device", None)
            if data.get("base"):
                data["base"].pop("device", None)
        if mine != theirs:
            diffs = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            raise BenchmarkError(f"{config.root} holds another benchmark (differs in "
                                 f"{', '.join(diffs)}); choose another --out or rerun the same "
                                 "command to continue it")
        return
    config.root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(mine, indent=1) + "\n")


def _import_all(config: BenchmarkConfig, world: World, poll_seconds: float
                ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Rank 0 imports both sides; the other ranks wait for its record of the stores."""
    done = config.root / "features" / IMPORT_DONE_NAME
    if world.is_main:
        done.unlink(missing_ok=True)
        train = _stores_of(config.train, config.root / "features" / "train", config)
        test = _stores_of(config.test, config.root / "features" / "test", config)
        atomic_write_text(done, json.dumps({"train": train, "test": test}) + "\n")
        return train, test
    while not done.is_file():
        time.sleep(poll_seconds)
    stores = json.loads(done.read_text(encoding="utf-8"))
    return tuple(stores["train"]), tuple(stores["test"])


# -- run -------------------------------------------------------------------------------------


def run_benchmark(config: BenchmarkConfig, progress: Progress | None = None,
                  world: World | None = None, poll_seconds: float = 1.0) -> BenchmarkResult:
    """Import, train every seed, evaluate each with the protocol, write the tables.

    Args:
        config: the benchmark.
        progress: reports this rank's training runs.
        world: the processes sharing the seeds (default :meth:`World.from_env`).
        poll_seconds: how often a waiting rank looks for rank 0's imports.

    Returns:
        :class:`BenchmarkResult`; on ranks other than 0 without evaluations (``seeds`` holds
        the training outcomes only).

    Raises:
        BenchmarkError: invalid inputs or another benchmark in ``out``.
        FileNotFoundError, ValueError: bad feature files, lists or annotations.
        RuntimeError: ``--device cuda`` without CUDA, a distributed set-up error.
    """
    from memtsm.train.sweep import SweepConfig, run_sweep

    world = World.from_env() if world is None else world
    progress = progress or SilentProgress()
    config = dataclasses.replace(config, out=str(Path(config.out).expanduser().resolve()))
    protocol = get_protocol(config.name)
    if world.is_main:
        _claim(config)
    train_stores, test_stores = _import_all(config, world, poll_seconds)
    base = (config.base or TrainConfig(features=train_stores, out="."))
    base = base.replace(features=train_stores, out=str(config.root / "sweep"),
                        device=config.device)
    plan = SweepConfig(base=base, seeds=config.seeds)
    sweep = run_sweep(plan, progress, world)
    if not world.is_main:
        return BenchmarkResult(config.root, tuple(sweep.runs))
    seeds = [_evaluate_seed(config, run.run_dir, run.seed, outcome, test_stores)
             for run, outcome in zip(plan.resolved().runs(), sweep.runs)]
    table = _table(seeds, protocol.headline)
    markdown = _markdown(config, seeds, table)
    results = {"config": config.to_dict(), "protocol": protocol.name,
               "headline": protocol.headline, "train_stores": list(train_stores),
               "test_stores": list(test_stores), "versions": _versions(), "table": table,
               "seeds": seeds}
    json_name, md_name = RESULTS_NAMES
    atomic_write_text(config.root / json_name, json.dumps(results, indent=1) + "\n")
    atomic_write_text(config.root / md_name, markdown)
    return BenchmarkResult(config.root, tuple(seeds), table, markdown)


def _evaluate_seed(config: BenchmarkConfig, run_dir: Path, seed: int, outcome: dict[str, Any],
                   test_stores: Sequence[str]) -> dict[str, Any]:
    """One seed's protocol evaluation of its ``best.pt`` (or why there is none)."""
    from memtsm.evaluate.protocol import EvalConfig, evaluate
    from memtsm.train.loop import BEST_NAME

    entry: dict[str, Any] = {"seed": seed, "run_dir": str(run_dir),
                             "best_epoch": outcome.get("best_epoch"),
                             "val_auc": (outcome.get("metrics") or {}).get("val_auc")}
    if outcome["status"] != "ok":
        return {**entry, "status": "failed", "error": outcome.get("error", "training failed")}
    try:
        result = evaluate(EvalConfig(
            checkpoint=str(run_dir / BEST_NAME), features=tuple(test_stores),
            annotations=config.annotations, frame_counts=config.test.frame_counts,
            device=config.device, protocol=config.name))
    except (OSError, ValueError, RuntimeError) as exc:
        return {**entry, "status": "failed", "error": f"evaluation: {type(exc).__name__}: {exc}"}
    result.write_json(run_dir / "test.json")
    metrics = result.metrics
    return {**entry, "status": "ok",
            "metrics": {name: getattr(metrics, name) for name, _ in TABLE_METRICS},
            "threshold": metrics.threshold, "n_videos": metrics.n_videos,
            "n_frames": metrics.n_frames, "n_anomalous_frames": metrics.n_anomalous_frames,
            "card": result.card()}


def _table(seeds: Sequence[dict[str, Any]], headline: str) -> dict[str, dict[str, Any]]:
    """Metric -> mean, sample std (``None`` below two seeds) and per-seed values."""
    done = [s for s in seeds if s["status"] == "ok"]
    names = [headline] + [name for name, _ in TABLE_METRICS if name != headline] + \
        ["val_auc", "best_epoch"]
    table = {}
    for name in names:
        values = [s[name] if name in ("val_auc", "best_epoch") else s["metrics"][name]
                  for s in done]
        defined = [float(v) for v in values if v is not None]
        table[name] = {"mean": statistics.fmean(defined) if defined else None,
                       "std": statistics.stdev(defined) if len(defined) > 1 else None,
                       "values": values, "seeds": [s["seed"] for s in done]}
    return table


def _cell(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _markdown(config: BenchmarkConfig, seeds: Sequence[dict[str, Any]],
              table: dict[str, dict[str, Any]]) -> str:
    protocol = get_protocol(config.name)
    labels = dict(TABLE_METRICS) | {"val_auc": "validation ROC-AUC (selection)",
                                    "best_epoch": "best epoch"}
    model = config.base.model if config.base is not None else TrainConfig.model
    done = [s["seed"] for s in seeds if s["status"] == "ok"]
    header = ["metric", f"mean ± std ({len(done)} seeds)", *(f"seed {s}" for s in done)]
    lines = [f"# {protocol.title}: {model}", "",
             f"Headline: **{protocol.headline_name}**; checkpoints and thresholds chosen on "
             "held-out training videos only.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in table.items():
        digits = 1 if name == "best_epoch" else 4
        label = labels[name] + (" (headline)" if name == protocol.headline else "")
        mean = _cell(row["mean"], digits) + ("" if row["std"] is None
                                             else f" ± {_cell(row['std'], digits)}")
        lines.append("| " + " | ".join([label, mean, *(_cell(v, digits) for v in row["values"])])
                     + " |")
    for seed in seeds:
        if seed["status"] != "ok":
            lines.append(f"\nseed {seed['seed']} failed: {seed['error']}")
    first = next((s for s in seeds if s["status"] == "ok"), None)
    if first is not None:
        lines += ["", f"Protocol card (seed {first['seed']}; every seed's is in results.json):",
                  "", "```", first["card"].rstrip("\n"), "```"]
    return "\n".join(lines) + "\n"


def _versions() -> dict[str, str]:
    import numpy
    import torch

    from memtsm import __version__

    return {"memtsm": __version__, "torch": str(torch.__version__), "numpy": numpy.__version__}

