"""Training data: labelled bags from feature stores, segment resampling, split and sampler.

Bags. Every labelled video of the stores becomes one *bag* of at most ``num_segments`` segment
features (weak supervision: only the video label is known), zero-padded to ``num_segments`` with
a validity mask (:meth:`BagDataset.mask`). Videos without a label are skipped and counted. The raw
clips are not kept in memory: each video is resampled as it is read, so memory is
``videos x num_segments x D`` whatever the video lengths.

Resampling: :mod:`memtsm.segments`.

Split (:func:`stratified_split`). Each class is shuffled with a seeded ``torch.Generator`` and
``round(val_fraction * n)`` of its videos go to validation, clamped to ``[1, n - 1]`` when the
class has at least 2 videos (validation then always holds both classes); a class with a single
video keeps it for training. Validation with ``n0`` normal and ``n1`` anomalous videos has a
ROC-AUC of only ``n0 * n1 + 1`` possible values (1 + 1 videos: 0 or 1), too coarse to rank
epochs; :func:`validation_warning` flags a split with fewer than
:data:`MIN_VAL_VIDEOS_PER_CLASS` validation videos of a class (training still runs, and the run
directory records which videos were held out).

Sampler (:class:`BalancedBatchSampler`). Each batch holds ``batch_size / 2`` normal and
``batch_size / 2`` anomalous bags. An epoch is ``ceil(max(n_normal, n_anomalous) /
(batch_size / 2))`` batches, so every bag of the larger class is seen once per epoch. Each class
is drawn by walking through fresh random permutations of its bags, one after the other, until the
epoch's quota is filled: the smaller class is oversampled (a bag repeats only after every bag of
its class was drawn, which spreads repeats evenly instead of drawing i.i.d. with replacement),
and the last batch of the larger class is topped up from a new permutation. The batches of epoch
``e`` depend only on ``(seed, e)``, so a resumed run sees the same batches as an uninterrupted
one without storing sampler state.

Distributed runs (:func:`split_batch`). Every rank builds the same sampler with the same seed, so
every rank knows the same sequence of *global* batches (``batch_size`` is the global batch). Rank
``r`` of ``W`` takes the ``r``-th ``1/W`` of the normal half and the ``r``-th ``1/W`` of the
anomalous half of each one: the shares are disjoint, each is balanced, and together they are the
global batch. ``batch_size`` must therefore be a multiple of ``2 W``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from memtsm.extract.identity import FeatureIdentity, describe_diff
from memtsm.extract.store import FeatureStore, StoreError
from memtsm.runtime.progress import Progress
from memtsm.segments import resample_segments, segment_frame_ranges

logger = logging.getLogger(__name__)

NORMAL, ANOMALOUS = 0, 1


class DataError(ValueError):
    """The feature stores cannot be used for training (mismatch, bad values, missing class)."""


# -- loading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BagInfo:
    """Where a bag comes from and how its segments map back to clips and frames."""

    video_id: str
    store: str
    label: int
    class_name: str
    num_clips: int
    num_frames: int
    clip_ranges: np.ndarray
    """``int64 [L, 2]`` clip range of each of the bag's ``L <= S`` segments."""
    segment_frames: np.ndarray
    """``int64 [L, 2]`` frame range ``[start, end)`` of each segment."""


@dataclass(frozen=True)
class BagDataset:
    """All labelled bags of the stores, resampled to ``num_segments`` segments.

    Attributes:
        segments: ``float32 [N, S, D]`` segment features, zero after each bag's length.
        lengths: ``int64 [N]`` valid segments of each bag (``min(T, S)``).
        labels: ``int64 [N]`` 0 normal, 1 anomalous.
        bags: per-bag metadata, aligned with ``segments``.
        identity: the stores' common feature identity.
        extract_config: extraction config from the first store's provenance (``None`` for
            imported features).
        stores: the store directories read.
        skipped_unlabelled: videos skipped because their label is unknown.
    """

    segments: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor
    bags: tuple[BagInfo, ...]
    identity: FeatureIdentity
    extract_config: dict[str, Any] | None
    stores: tuple[str, ...]
    skipped_unlabelled: int = 0
    num_segments: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "num_segments", int(self.segments.shape[1]))

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def feature_dim(self) -> int:
        """D."""
        return int(self.segments.shape[2])

    def mask(self, indices: torch.Tensor) -> torch.Tensor:
        """``bool [B, S]`` validity of the segments of bags ``indices`` (True = real segment)."""
        steps = torch.arange(self.num_segments)
        return steps.unsqueeze(0) < self.lengths[indices].unsqueeze(1)

    def class_counts(self) -> tuple[int, int]:
        """``(normal, anomalous)`` bag counts."""
        anomalous = int(self.labels.sum())
        return len(self) - anomalous, anomalous


def open_stores(store_dirs: Sequence[Path | str]) -> tuple[list[FeatureStore], FeatureIdentity]:
    """Open stores and check they hold interchangeable features.

    Returns:
        ``(stores, identity)``.

    Raises:
        DataError: No store given, a directory that is not a store, an empty store, differing
            identities, or a video id held by two stores.
    """
    if not store_dirs:
        raise DataError("no feature store given (--features)")
    try:
        stores = [FeatureStore(d) for d in store_dirs]
    except StoreError as exc:  # not a directory, duplicate ids inside a store
        raise DataError(str(exc)) from None
    identity: FeatureIdentity | None = None
    seen: dict[str, Path] = {}
    for store in stores:
        if len(store) == 0:
            raise DataError(f"{store.root}: feature store holds no video")
        try:
            this = store.identity
        except StoreError as exc:
            raise DataError(str(exc)) from None
        if identity is None:
            identity = this
        elif differences := identity.diff(this):
            raise DataError(
                f"{store.root} holds features that differ from {stores[0].root} "
                f"({describe_diff(differences, 'the first', 'this one')}); stores "
                "can only be combined when their feature identity is the same")
        for video_id in store.video_ids:
            if video_id in seen:
                raise DataError(f"video id {video_id!r} is in both {seen[video_id]} and "
                                f"{store.root}")
            seen[video_id] = store.root
    assert identity is not None
    return stores, identity


def load_bags(
    store_dirs: Sequence[Path | str],
    num_segments: int,
    progress: Progress | None = None,
) -> BagDataset:
    """Read every labelled video of the stores and resample it to ``num_segments`` segments.

    Args:
        store_dirs: Feature store directories (same feature identity).
        num_segments: S.
        progress: Optional progress report (item = video, unit = clips).

    Returns:
        The bags, in store then index order.

    Raises:
        DataError: Not a store, stores differ, a store holds a single video, features hold
            NaN/inf, or there is no labelled normal or no labelled anomalous video.
    """
    stores, identity = open_stores(store_dirs)
    for store in stores:
        if len(store) == 1:
            raise DataError(
                f"{store.root} holds a single video ({store.video_ids[0]!r}); training needs "
                "many labelled normal and anomalous videos (wrong --features directory?)")
    labelled = [(store, e) for store in stores for e in store.entries if e.label is not None]
    skipped = sum(len(store) for store in stores) - len(labelled)
    if skipped:
        logger.info("skipping %d video(s) without a label", skipped)
    labels = [e.label for _, e in labelled]
    where = ", ".join(str(s.root) for s in stores)
    if ANOMALOUS not in labels:
        raise DataError(f"no anomalous (label 1) video in {where} ({labels.count(NORMAL)} "
                        f"normal, {skipped} unlabelled): weak supervision needs both classes")
    if NORMAL not in labels:
        raise DataError(f"no normal (label 0) video in {where} ({labels.count(ANOMALOUS)} "
                        f"anomalous, {skipped} unlabelled): weak supervision needs both classes")
    dim = identity.feature_dim
    segments = np.zeros((len(labelled), num_segments, dim), dtype=np.float32)
    lengths = np.zeros(len(labelled), dtype=np.int64)
    bags: list[BagInfo] = []
    if progress is not None:
        progress.start(len(labelled), sum(e.num_clips for _, e in labelled), "clips")
    for row, (store, entry) in enumerate(labelled):
        try:
            record = store.read(entry.video_id)
        except ValueError as exc:  # VideoRecord validation: NaN/inf, bad shapes
            raise DataError(f"{store.root}: {exc}") from None
        features = record.features
        if not np.isfinite(features).all():
            raise DataError(f"{store.root}: {entry.video_id}: features contain NaN or inf")
        if features.shape[1] != dim:
            raise DataError(f"{store.root}: {entry.video_id}: feature dim {features.shape[1]} "
                            f"!= store's {dim}")
        resampled, ranges = resample_segments(features, num_segments)
        lengths[row] = resampled.shape[0]
        segments[row, : lengths[row]] = resampled
        bags.append(BagInfo(
            video_id=record.video_id, store=str(store.root), label=int(entry.label),
            class_name=record.class_name, num_clips=record.num_clips,
            num_frames=record.num_frames, clip_ranges=ranges,
            segment_frames=segment_frame_ranges(record.clip_frames, ranges)))
        if progress is not None:
            progress.advance(record.num_clips)
            progress.item_done(record.video_id, True)
    if progress is not None:
        progress.close()
    provenance = stores[0].meta.get("provenance", {}) or {}
    extract_config = provenance.get("extract_config")
    for store in stores[1:]:
        other = (store.meta.get("provenance", {}) or {}).get("extract_config")
        if other != extract_config:
            logger.warning("%s was extracted with another config than %s; the checkpoint "
                           "records the first one", store.root, stores[0].root)
    return BagDataset(
        segments=torch.from_numpy(segments),
        lengths=torch.from_numpy(lengths),
        labels=torch.tensor(labels, dtype=torch.int64),
        bags=tuple(bags),
        identity=identity,
        extract_config=extract_config,
        stores=tuple(str(s.root) for s in stores),
        skipped_unlabelled=skipped,
    )


# -- split and sampling ----------------------------------------------------------------------


def derive_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed for a sub-stream identified by ``keys`` (independent of other streams)."""
    state = np.random.SeedSequence([seed, *keys]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


#: Stream ids for :func:`derive_seed` (dropout: per epoch and rank in distributed runs; member:
#: the model seed of an ensemble member, :attr:`memtsm.train.config.TrainConfig.model_seed`).
SPLIT_STREAM, SAMPLER_STREAM, DROPOUT_STREAM, MEMBER_STREAM = 1, 2, 3, 4


def stratified_split(
    labels: Sequence[int] | torch.Tensor, val_fraction: float, seed: int,
    groups: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Split bag indices into train and validation, per class (see the module docstring).

    Args:
        labels: ``[N]`` 0/1 labels.
        val_fraction: Fraction of each class to hold out, in (0, 1).
        seed: Seeds the ``torch.Generator`` that shuffles each class.
        groups: Optional ``[N]`` group of each bag (the crops of one video): a group's bags all
            go to the same side, and the fraction counts groups. ``None``: every bag alone.

    Returns:
        ``(train_indices, val_indices)``, each sorted ``int64``.

    Raises:
        ValueError: If ``val_fraction`` is not in (0, 1).
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    labels = torch.as_tensor(labels, dtype=torch.int64)
    if groups is not None:
        return _grouped_split(labels, val_fraction, seed, list(groups))
    generator = torch.Generator().manual_seed(derive_seed(seed, SPLIT_STREAM))
    train: list[torch.Tensor] = []
    val: list[torch.Tensor] = []
    for cls in (NORMAL, ANOMALOUS):
        members = torch.nonzero(labels == cls).flatten()
        n = int(members.numel())
        n_val = 0 if n < 2 else min(n - 1, max(1, math.floor(val_fraction * n + 0.5)))
        shuffled = members[torch.randperm(n, generator=generator)]
        val.append(shuffled[:n_val])
        train.append(shuffled[n_val:])
    return (torch.cat(train).sort().values.numpy(), torch.cat(val).sort().values.numpy())


def _grouped_split(labels: torch.Tensor, val_fraction: float, seed: int,
                   groups: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`stratified_split` over groups: split the groups, then expand them to bags."""
    if len(groups) != labels.numel():
        raise ValueError(f"groups has {len(groups)} entries for {labels.numel()} bags")
    names = sorted(set(groups))
    members = {name: [] for name in names}
    for index, name in enumerate(groups):
        members[name].append(index)
    group_labels = []
    for name in names:
        values = {int(labels[i]) for i in members[name]}
        if len(values) != 1:
            raise ValueError(f"the bags of {name!r} have different labels")
        group_labels.append(values.pop())
    train_groups, val_groups = stratified_split(group_labels, val_fraction, seed)

    def expand(chosen: np.ndarray) -> np.ndarray:
        return np.sort(np.array([i for g in chosen for i in members[names[g]]], dtype=np.int64))

    return expand(train_groups), expand(val_groups)


def crop_groups(bags: Sequence[BagInfo], identity: FeatureIdentity) -> list[str] | None:
    """The video of each bag when the stores hold every crop as its own bag (``Name__k``)."""
    crops = identity.crops or {}
    if crops.get("use") != "each":
        return None
    return [bag.video_id.rsplit("__", 1)[0] for bag in bags]


#: Fewest validation videos of each class for a validation ROC-AUC that can rank epochs (fewer:
#: :func:`validation_warning`).
MIN_VAL_VIDEOS_PER_CLASS = 5


def validation_warning(val_labels: Sequence[int] | torch.Tensor | np.ndarray) -> str | None:
    """Why a validation set is too small to choose an epoch and a threshold, or ``None``.

    Args:
        val_labels: 0/1 labels of the validation videos.

    Returns:
        A message when a class has fewer than :data:`MIN_VAL_VIDEOS_PER_CLASS` videos.
    """
    labels = np.asarray(val_labels, dtype=np.int64)
    n_normal, n_anomalous = int((labels == NORMAL).sum()), int((labels == ANOMALOUS).sum())
    if min(n_normal, n_anomalous) >= MIN_VAL_VIDEOS_PER_CLASS:
        return None
    return (f"validation holds only {n_normal} normal and {n_anomalous} anomalous video(s), "
            f"fewer than {MIN_VAL_VIDEOS_PER_CLASS} of each: its ROC-AUC can take only "
            f"{n_normal * n_anomalous + 1} values, so it cannot rank epochs, and the best epoch "
            "and the video-level threshold are chosen on very little evidence; train on more "
            "videos or raise --val-fraction")


class BalancedBatchSampler:
    """Batches of ``batch_size / 2`` normal + ``batch_size / 2`` anomalous bag indices.

    See the module docstring for the epoch length and the oversampling rule.

    Args:
        labels: ``[N]`` 0/1 labels of the bags this sampler draws from.
        batch_size: Even batch size.
        seed: Base seed; epoch ``e`` uses a stream derived from ``(seed, e)``.
        indices: Dataset indices of the bags (default ``range(N)``); batches hold these.

    Raises:
        ValueError: Odd batch size or a class without bags.
    """

    def __init__(self, labels: Sequence[int] | torch.Tensor, batch_size: int, seed: int,
                 indices: Sequence[int] | np.ndarray | None = None,
                 steps_per_epoch: int | None = None) -> None:
        if batch_size < 2 or batch_size % 2:
            raise ValueError(f"batch_size must be even and >= 2, got {batch_size}")
        labels = torch.as_tensor(labels, dtype=torch.int64)
        index = torch.arange(len(labels)) if indices is None else torch.as_tensor(
            np.asarray(indices), dtype=torch.int64)
        if index.numel() != labels.numel():
            raise ValueError("indices and labels differ in length")
        self.normal = index[labels == NORMAL]
        self.anomalous = index[labels == ANOMALOUS]
        if self.normal.numel() == 0 or self.anomalous.numel() == 0:
            raise ValueError("the balanced sampler needs at least one bag of each class, got "
                             f"{self.normal.numel()} normal and {self.anomalous.numel()} "
                             "anomalous")
        self.half = batch_size // 2
        self.seed = seed
        self.steps_per_epoch = steps_per_epoch

    def __len__(self) -> int:
        """Batches per epoch.

        ``steps_per_epoch`` if given, else one pass over the larger class:
        ``ceil(max(n_normal, n_anomalous) / (batch_size / 2))``.
        """
        if self.steps_per_epoch is not None:
            return self.steps_per_epoch
        return math.ceil(max(self.normal.numel(), self.anomalous.numel()) / self.half)

    def _draw(self, pool: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
        passes = [pool[torch.randperm(pool.numel(), generator=generator)]
                  for _ in range(math.ceil(count / pool.numel()))]
        return torch.cat(passes)[:count]

    def epoch(self, epoch: int) -> list[torch.Tensor]:
        """The batches of epoch ``epoch`` (0-based), each ``int64 [batch_size]``: normal first.

        Deterministic in ``(seed, epoch)``.
        """
        generator = torch.Generator().manual_seed(derive_seed(self.seed, SAMPLER_STREAM, epoch))
        count = len(self) * self.half
        normal = self._draw(self.normal, count, generator).view(len(self), self.half)
        anomalous = self._draw(self.anomalous, count, generator).view(len(self), self.half)
        return list(torch.cat([normal, anomalous], dim=1).unbind(0))

    def __iter__(self) -> Iterator[torch.Tensor]:
        """Batches of epoch 0 (use :meth:`epoch` for later epochs)."""
        return iter(self.epoch(0))


def check_batch_split(batch_size: int, world_size: int) -> None:
    """Check that a global balanced batch splits into ``world_size`` equal balanced shares.

    Raises:
        ValueError: ``batch_size`` is not a multiple of ``2 * world_size``.
    """
    if batch_size % (2 * world_size):
        raise ValueError(
            f"--batch-size {batch_size} is the global batch, split over {world_size} processes "
            f"into equal shares of half normal and half anomalous bags: it must be a multiple "
            f"of 2 x {world_size} = {2 * world_size}")


def split_batch(batch: torch.Tensor, world_size: int) -> torch.Tensor:
    """Split a balanced batch (normal half first) into ``world_size`` balanced shares.

    Row ``r`` is rank ``r``'s share: the ``r``-th slice of the normal half, then the ``r``-th
    slice of the anomalous half. ``split_batch(b, 1)[0]`` is ``b``.

    Args:
        batch: ``int64 [B]`` from :meth:`BalancedBatchSampler.epoch`.
        world_size: W.

    Returns:
        ``int64 [W, B / W]``, each row normal first.

    Raises:
        ValueError: ``B`` is not a multiple of ``2 W``.
    """
    check_batch_split(int(batch.numel()), world_size)
    half = batch.numel() // 2
    normal = batch[:half].view(world_size, -1)
    anomalous = batch[half:].view(world_size, -1)
    return torch.cat([normal, anomalous], dim=1)
