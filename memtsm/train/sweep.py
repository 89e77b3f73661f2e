"""Sweeps: seeds x config variants of a training run, and one table of their validation metrics.

``memtsm sweep -f STORE -o DIR --seeds 0,1,2 --set lr=1e-3,3e-4 --set scorer.channels=64,128``

A *setting* ``key=v1[,v2,...]`` names a :class:`~memtsm.train.config.TrainConfig` field
(``lr``, ``epochs``, ``model``, ...) or a nested one (``scorer.channels``, ``loss.topk``); its
values are parsed with the field's type (:func:`parse_setting`). A setting with one value
changes the base config; the settings with several values span a grid whose every combination
(a *variant*) is trained once per seed. The seed, paths, device and ``resume`` are not settings.

Layout of the sweep directory::

    sweep.yaml                   the resolved sweep (base config, seeds, grid); a rerun must match
    runs/<variant>/seed<k>/      an ordinary run directory (see memtsm.train.loop)
                                 + result.json: the run's outcome and best-epoch metrics
    sweep.csv, sweep.md, sweep.json
                                 per variant: mean and sample std over seeds of every metric
                                 in SWEEP_METRICS (the row of metrics.jsonl of the best epoch)

Processes. Without torchrun the runs train one after the other. Under ``torchrun
--nproc-per-node N -m memtsm sweep ...`` rank ``r`` trains runs ``r, r + N, r + 2N, ...``, each
as a single process on ``cuda:LOCAL_RANK`` (``--device cuda``) or the CPU; results are exchanged
through the ``result.json`` files (no process group; several nodes need the sweep directory on
a shared file system), and rank 0 writes the tables once every run has one.

Reruns. Rerunning a sweep skips the runs that have a ``result.json``, finished or failed (delete
a run's directory to redo it), resumes interrupted runs from their ``last.pt``, and restarts
runs that never finished an epoch.

Length: over 500 lines because settings parsing, the grid, the runner and the tables are one
feature with one file format (sweep.yaml / result.json); each part alone is small.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
import logging
import math
import re
import shutil
import time
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memtsm.model.config import LossConfig
from memtsm.runtime.files import atomic_write_text
from memtsm.runtime.progress import Progress, SilentProgress
from memtsm.runtime.world import SINGLE_PROCESS, World
from memtsm.train.config import ScorerOptions, TrainConfig
from memtsm.train.loop import LAST_NAME, train

logger = logging.getLogger(__name__)

SWEEP_NAME = "sweep.yaml"
RESULT_NAME = "result.json"
TABLE_NAMES = ("sweep.csv", "sweep.md", "sweep.json")
#: Metrics of each run's best epoch that the table aggregates over seeds.
SWEEP_METRICS = ("val_auc", "val_ap", "val_f1", "val_loss", "val_video_threshold",
                 "best_epoch")
#: TrainConfig fields that are not settings (the sweep owns them).
NOT_SETTINGS = ("features", "out", "seed", "device", "resume", "scorer", "loss")
_NESTED = {"scorer": ScorerOptions, "loss": LossConfig}
_TYPE_NAMES = {int: "an int", float: "a number", str: "a string", bool: "true or false"}


class SweepError(ValueError):
    """An invalid sweep: unknown setting, unparsable value, invalid config, or another sweep."""


# -- settings --------------------------------------------------------------------------------


def setting_types() -> dict[str, Any]:
    """Every sweepable key and its type hint (``lr``: float, ``scorer.channels``: int, ...)."""
    hints = {k: v for k, v in typing.get_type_hints(TrainConfig).items()
             if k not in NOT_SETTINGS}
    for prefix, cls in _NESTED.items():
        hints.update({f"{prefix}.{k}": v for k, v in typing.get_type_hints(cls).items()})
    return hints


def _parse_value(key: str, text: str, hint: Any) -> Any:
    text = text.strip()
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        if text.lower() in ("none", "null"):
            return None
        (hint,) = [a for a in args if a is not type(None)]
    try:
        if hint is bool:
            if text.lower() not in ("true", "false"):
                raise ValueError
            return text.lower() == "true"
        if hint in _TYPE_NAMES:
            return hint(text)
    except ValueError:
        raise SweepError(f"--set {key}: {text!r} is not {_TYPE_NAMES[hint]}") from None
    raise SweepError(f"--set {key}: a {hint} cannot be swept from the command line; set it in "
                     "the --config file")


def parse_setting(text: str) -> tuple[str, tuple[Any, ...]]:
    """``"key=v1,v2"`` -> ``(key, (v1, v2))``, values typed like the config field.

    Raises:
        SweepError: No ``=``, an unknown key (the message lists the known ones), an empty or
            repeated value, or a value that does not parse as the field's type.
    """
    key, sep, values = text.partition("=")
    key = key.strip()
    hints = setting_types()
    if not sep or not key:
        raise SweepError(f"--set {text!r}: expected key=value[,value...]")
    if key not in hints:
        why = (f"{key} is set by the sweep itself" if key in NOT_SETTINGS
               else f"unknown setting {key!r}")
        raise SweepError(f"--set {text}: {why} (settings: {', '.join(sorted(hints))})")
    parts = values.split(",")
    if any(not p.strip() for p in parts):
        raise SweepError(f"--set {text}: empty value")
    parsed = tuple(_parse_value(key, p, hints[key]) for p in parts)
    if len(set(parsed)) != len(parsed):
        raise SweepError(f"--set {text}: a value is repeated")
    return key, parsed


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0,1,2"`` (or ``"0-4"``) -> ``(0, 1, 2)``.

    Raises:
        SweepError: Not non-negative ints, or a seed repeated.
    """
    seeds: list[int] = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not match:
            raise SweepError(f"--seeds {text!r}: expected ints >= 0 like 0,1,2 or 0-4")
        first, last = int(match[1]), int(match[2] or match[1])
        seeds.extend(range(first, last + 1))
    if not seeds or len(set(seeds)) != len(seeds):
        raise SweepError(f"--seeds {text!r}: give distinct seeds")
    return tuple(seeds)


def _apply(config: TrainConfig, settings: Sequence[tuple[str, Any]]) -> TrainConfig:
    """``config`` with ``settings`` (``(key, value)`` pairs, nested keys merged per group)."""
    changes: dict[str, Any] = {}
    for key, value in settings:
        group, _, field = key.rpartition(".")
        if group:
            changes.setdefault(group, {})[field] = value
        else:
            changes[key] = value
    return config.replace(**changes)


def _format(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


# -- the plan --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepRun:
    """One training run of a sweep.

    Attributes:
        index: Position in the sweep (rank ``index % world_size`` trains it).
        variant: Name of its variant (``"lr=0.001,scorer.channels=64"``, ``"base"``).
        settings: The variant's ``(key, value)`` pairs.
        seed: Its seed.
        config: Its full config (``out`` is its run directory).
    """

    index: int
    variant: str
    settings: tuple[tuple[str, Any], ...]
    seed: int
    config: TrainConfig

    @property
    def run_dir(self) -> Path:
        """``config.out``."""
        return Path(self.config.out)


@dataclass(frozen=True)
class SweepConfig:
    """A sweep: a base config, seeds, and a grid of settings with several values each.

    Attributes:
        base: The config every run starts from; ``out`` is the sweep directory and ``seed``
            is replaced by each run's.
        seeds: Seeds, each run once per variant.
        grid: ``(key, values)`` per swept setting (at least two values each).

    Raises:
        SweepError: On construction: no seed, a key given twice, a grid key with fewer than
            two values, or a variant whose config is invalid (naming it).
    """

    base: TrainConfig
    seeds: tuple[int, ...] = (0,)
    grid: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds", tuple(self.seeds))
        object.__setattr__(self, "grid", tuple((k, tuple(v)) for k, v in self.grid))
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise SweepError(f"a sweep needs distinct seeds, got {self.seeds!r}")
        keys = [k for k, _ in self.grid]
        if len(set(keys)) != len(keys):
            raise SweepError(f"a setting is swept twice: {', '.join(keys)}")
        hints = setting_types()
        for key, values in self.grid:
            if key not in hints:
                raise SweepError(f"unknown setting {key!r}")
            if len(values) < 2:
                raise SweepError(f"setting {key} sweeps {len(values)} value(s); give at least 2 "
                                 "(a single value belongs in the base config)")
        self.runs()  # every variant must be a valid config

    @classmethod
    def from_settings(cls, base: TrainConfig, seeds: Sequence[int],
                      settings: Sequence[str]) -> SweepConfig:
        """Build from ``--set`` texts: one-value settings change ``base``, the others the grid.

        Raises:
            SweepError: As :func:`parse_setting`, a key set twice, or an invalid config.
        """
        parsed = [parse_setting(text) for text in settings]
        keys = [k for k, _ in parsed]
        if len(set(keys)) != len(keys):
            raise SweepError(f"--set names a setting twice ({', '.join(keys)}); give its values "
                             "as one comma-separated list")
        fixed = [(k, v[0]) for k, v in parsed if len(v) == 1]
        try:
            base = _apply(base, fixed)
        except ValueError as exc:
            raise SweepError(f"--set {', '.join(f'{k}={_format(v)}' for k, v in fixed)}: "
                             f"{exc}") from None
        return cls(base=base, seeds=tuple(seeds),
                   grid=tuple((k, v) for k, v in parsed if len(v) > 1))

    def variants(self) -> list[tuple[tuple[str, Any], ...]]:
        """Every combination of the grid's values, first key slowest."""
        return [tuple(zip((k for k, _ in self.grid), combo))
                for combo in itertools.product(*(values for _, values in self.grid))]

    def runs(self) -> tuple[SweepRun, ...]:
        """Every run, variant by variant, seed by seed.

        Raises:
            SweepError: A variant's config is invalid.
        """
        root = Path(self.base.out)
        runs = []
        for settings in self.variants():
            name = ",".join(f"{k}={_format(v)}" for k, v in settings) or "base"
            try:
                config = _apply(self.base, settings)
            except ValueError as exc:
                raise SweepError(f"variant {name}: {exc}") from None
            folder = re.sub(r"[^A-Za-z0-9._=,+-]", "_", name)
            for seed in self.seeds:
                runs.append(SweepRun(
                    index=len(runs), variant=name, settings=settings, seed=seed,
                    config=config.replace(seed=seed, resume=False,
                                          out=str(root / "runs" / folder / f"seed{seed}"))))
        return tuple(runs)

    def resolved(self) -> SweepConfig:
        """The same sweep with absolute paths."""
        return dataclasses.replace(self, base=self.base.resolved())

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML-able dict."""
        return {"base": self.base.to_dict(), "seeds": list(self.seeds),
                "grid": [{"key": k, "values": list(v)} for k, v in self.grid]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepConfig:
        """Rebuild from :meth:`to_dict`.

        Raises:
            SweepError: Malformed data.
        """
        try:
            return cls(base=TrainConfig.from_dict(data["base"]), seeds=tuple(data["seeds"]),
                       grid=tuple((g["key"], tuple(g["values"])) for g in data["grid"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise SweepError(f"not a sweep description: {exc}") from None

    def to_yaml(self) -> str:
        """YAML text of :meth:`to_dict`."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False)


# -- running ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepResult:
    """Outcome of :func:`run_sweep` (the same on every rank).

    Attributes:
        out: The sweep directory.
        runs: Every run's ``result.json`` contents, in run order.
        table: One row per variant (see :func:`summarize`).
        markdown: The table as Markdown (what ``sweep.md`` holds).
    """

    out: Path
    runs: tuple[dict[str, Any], ...]
    table: tuple[dict[str, Any], ...]
    markdown: str

    @property
    def failed(self) -> tuple[dict[str, Any], ...]:
        """Results of the runs that raised."""
        return tuple(r for r in self.runs if r["status"] != "ok")


def _claim_sweep_dir(config: SweepConfig, is_main: bool) -> None:
    """Check (every rank) and write (rank 0) ``sweep.yaml``; only the device may differ.

    Raises:
        SweepError: The directory holds another sweep.
    """
    import yaml

    path = Path(config.base.out) / SWEEP_NAME
    if path.is_file():
        theirs = SweepConfig.from_dict(yaml.safe_load(path.read_text(encoding="utf-8")))
        mine, other = config.to_dict(), theirs.to_dict()
        for data in (mine, other):  # the device may change between reruns
            data["base"].pop("device")
        if mine != other:
            diffs = [f"{k}: {other[k]!r} there, {mine[k]!r} now" for k in mine
                     if mine[k] != other[k]]
            raise SweepError(f"{path.parent} holds another sweep ({'; '.join(diffs)}); choose "
                             "another --out or rerun the same sweep to continue it")
    elif is_main:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, config.to_yaml())


def _train_run(run: SweepRun, device: str, rank: int) -> dict[str, Any]:
    """Train ``run`` in this process (resuming a ``last.pt``); its ``result.json`` contents."""
    config = run.config.replace(device=device)
    if (run.run_dir / LAST_NAME).is_file():
        config = config.replace(resume=True)
    elif run.run_dir.exists():  # started but never finished an epoch: start again
        shutil.rmtree(run.run_dir)
    result: dict[str, Any] = {"run": run.index, "variant": run.variant,
                              "settings": dict(run.settings), "seed": run.seed, "rank": rank,
                              "device": device}
    started = time.perf_counter()
    try:
        outcome = train(config, SilentProgress(), world=SINGLE_PROCESS)
    except (OSError, ValueError, RuntimeError) as exc:
        run.run_dir.mkdir(parents=True, exist_ok=True)
        return {**result, "status": "failed", "error": f"{type(exc).__name__}: {exc}",
                "seconds": time.perf_counter() - started}
    row = outcome.metrics[outcome.best_epoch - 1]
    metrics = {k: row[k] for k in SWEEP_METRICS if k != "best_epoch"}
    return {**result, "status": "ok", "best_epoch": outcome.best_epoch, "metrics": metrics,
            "seconds": time.perf_counter() - started}


def _read_result(run: SweepRun) -> dict[str, Any] | None:
    path = run.run_dir / RESULT_NAME
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def run_sweep(config: SweepConfig, progress: Progress | None = None, world: World | None = None,
              poll_seconds: float = 1.0) -> SweepResult:
    """Train every run of ``config`` (this rank's share), gather all results, write the table.

    Args:
        config: The sweep (``base.out`` is the sweep directory).
        progress: Reports this rank's runs (items and units).
        world: The processes sharing the runs (default: :meth:`World.from_env`, i.e. the
            ranks torchrun started, or this process alone).
        poll_seconds: How often a rank that finished its runs looks for the others' results.

    Returns:
        :class:`SweepResult`; rank 0 has written ``sweep.csv``, ``sweep.md``, ``sweep.json``.

    Raises:
        SweepError: The directory holds another sweep.
        RuntimeError: ``--device cuda`` without CUDA, a distributed set-up error.
    """
    config = config.resolved()
    world = World.from_env() if world is None else world
    progress = progress or SilentProgress()
    device = str(world.device(config.base.device))
    _claim_sweep_dir(config, world.is_main)
    runs = config.runs()
    mine = [run for run in runs if run.index % world.world_size == world.rank]
    progress.start(len(mine), len(mine), "runs")
    try:
        for run in mine:
            result = _read_result(run)
            if result is None:
                result = _train_run(run, device, world.rank)
                atomic_write_text(run.run_dir / RESULT_NAME, json.dumps(result, indent=1) + "\n")
            info = (f"val_auc={_fmt(result['metrics']['val_auc'])} (best epoch "
                    f"{result['best_epoch']})" if result["status"] == "ok" else result["error"])
            logger.info("run %d/%d %s seed %d: %s", run.index + 1, len(runs), run.variant,
                        run.seed, info)
            progress.advance(1)
            progress.item_done(f"{run.variant} seed {run.seed}", result["status"] == "ok", info)
    finally:
        progress.close()
    results = _gather(runs, poll_seconds)
    table = summarize(config, results)
    markdown = table_markdown(config, table)
    if world.is_main:
        _write_tables(config, results, table, markdown)
    return SweepResult(out=Path(config.base.out), runs=tuple(results), table=tuple(table),
                       markdown=markdown)


def _gather(runs: Sequence[SweepRun], poll_seconds: float) -> list[dict[str, Any]]:
    """Every run's result, waiting for those other ranks are still training."""
    results: dict[int, dict[str, Any]] = {}
    waiting_logged = False
    while True:
        for run in runs:
            if run.index not in results:
                result = _read_result(run)
                if result is not None:
                    results[run.index] = result
        if len(results) == len(runs):
            return [results[run.index] for run in runs]
        if not waiting_logged:
            logger.info("waiting for %d run(s) of other ranks", len(runs) - len(results))
            waiting_logged = True
        time.sleep(poll_seconds)


# -- the table -------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (ddof 1; ``None`` below 2 values)."""
    if not values:
        return None, None
    mean = math.fsum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def summarize(config: SweepConfig, results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per variant: its settings, seeds, failures and per metric mean / std over seeds.

    Keys of a row: ``variant``, every grid key, ``seeds`` (those that finished), ``n``,
    ``failed``, and ``<metric>_mean``, ``<metric>_std`` for every :data:`SWEEP_METRICS`
    (``None`` where undefined, e.g. the std of one seed).
    """
    rows = []
    for settings in config.variants():
        name = ",".join(f"{k}={_format(v)}" for k, v in settings) or "base"
        mine = [r for r in results if r["variant"] == name]
        done = [r for r in mine if r["status"] == "ok"]
        row: dict[str, Any] = {"variant": name, **dict(settings),
                               "seeds": [r["seed"] for r in done], "n": len(done),
                               "failed": len(mine) - len(done)}
        for metric in SWEEP_METRICS:
            values = [float(r["best_epoch"] if metric == "best_epoch" else r["metrics"][metric])
                      for r in done
                      if metric == "best_epoch" or r["metrics"][metric] is not None]
            row[f"{metric}_mean"], row[f"{metric}_std"] = _mean_std(values)
        rows.append(row)
    return rows


def table_markdown(config: SweepConfig, table: Sequence[dict[str, Any]]) -> str:
    """The table as Markdown: ``mean ± std`` per metric."""
    keys = [k for k, _ in config.grid]
    header = [*(keys or ["variant"]), "seeds", *SWEEP_METRICS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table:
        cells = [_format(row[k]) for k in keys] or [row["variant"]]
        seeds = ",".join(map(str, row["seeds"])) + (f" ({row['failed']} failed)"
                                                     if row["failed"] else "")
        cells.append(seeds or "-")
        for metric in SWEEP_METRICS:
            mean, std = row[f"{metric}_mean"], row[f"{metric}_std"]
            digits = 1 if metric == "best_epoch" else 4
            cells.append(_fmt(mean, digits) + ("" if std is None else f" ± {_fmt(std, digits)}"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _write_tables(config: SweepConfig, results: Sequence[dict[str, Any]],
                  table: Sequence[dict[str, Any]], markdown: str) -> None:
    out = Path(config.base.out)
    columns = list(table[0]) if table else []
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in table:
        writer.writerow(["" if row[c] is None else
                         " ".join(map(str, row[c])) if isinstance(row[c], list) else
                         _format(row[c]) for c in columns])
    csv_name, md_name, json_name = TABLE_NAMES
    atomic_write_text(out / csv_name, buffer.getvalue())
    atomic_write_text(out / md_name, markdown)
    atomic_write_text(out / json_name, json.dumps({"sweep": config.to_dict(), "table": list(table),
                                             "runs": list(results)}, indent=1) + "\n")
