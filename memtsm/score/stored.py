"""Score stored clip features with a trained scorer: per-clip anomaly scores of whole videos.

Granularity. Training resamples every video to ``num_segments`` (32) segments, but by default
scoring runs the temporal model over **all clips** of a video (``segments=None``), one score per
clip. This is the standard protocol of the weakly-supervised VAD literature (Sultani et al.
train on 32 segments; RTFM, MGFN, UR-DMU train on 32 segments and test on every snippet), and it
is the right one for *frame-level* evaluation: a clip is the finest unit that has a feature, and
averaging ~T/32 clips into one segment would smear a short anomaly over a long block of frames.
The price is a change of time scale between training and test for the temporal layers (one step
is T/32 clips in training, one clip at test); ``segments=S`` scores the ``S`` resampled segments
instead, exactly as in training, and gives each clip the score of its segment (the mean of its
segments when a short video repeats a clip), so both protocols return per-clip arrays that map
to frames through the stored ``clip_frames``
(:func:`memtsm.segments.spread_over_ranges`).

Long videos can be scored in windows of ``window`` clips (bounded memory): each window is run
with ``model.receptive_field`` clips of real context on each side, which gives the same scores
as one pass over the whole video (the scorer's receptive field is finite by design).

Compatibility. :func:`score_store` refuses a store whose feature identity (feature_dim, layout,
feature_spec, extractor weights, ...; every identity key except the storage ``dtype``) differs
from the one the checkpoint was trained on: such features are not interchangeable, and scores
computed from them would be silently meaningless.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from memtsm.extract.identity import SCORING_IGNORES, FeatureIdentity, describe_diff
from memtsm.runtime.devices import resolve_device
from memtsm.runtime.progress import Progress
from memtsm.segments import resample_segments, spread_over_ranges
from memtsm.train.checkpoint import Checkpoint, build_model_from_checkpoint, load_checkpoint
from memtsm.train.data import open_stores

#: Threshold used when a checkpoint carries none (never chosen on test data).
DEFAULT_THRESHOLD = 0.5


class IncompatibleFeaturesError(ValueError):
    """A feature store's identity differs from the checkpoint's."""


@dataclass(frozen=True)
class ScoreResult:
    """Per-clip outputs of a scorer for one video.

    Attributes:
        scores: ``float32 [T]`` anomaly probabilities in ``(0, 1)``.
        recon_error: ``float32 [T]`` memory reconstruction error (zeros for ``mil-mlp``).
    """

    scores: np.ndarray
    recon_error: np.ndarray


class VideoScores(NamedTuple):
    """Scores of one stored video and what is needed to map them to frames."""

    scores: np.ndarray
    """``float32 [T]`` per-clip scores."""
    recon_error: np.ndarray
    """``float32 [T]`` per-clip memory reconstruction error."""
    clip_frames: np.ndarray
    """``int64 [T, 2]`` ``[start, end)`` frames of each clip."""
    num_frames: int
    label: int | None
    class_name: str


def _device_of(model: nn.Module) -> torch.device:
    param = next(iter(model.parameters()), None)
    return param.device if param is not None else torch.device("cpu")


@torch.no_grad()
def _run(model: nn.Module, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``[T, D]`` -> ``(scores [T], recon_error [T])`` in one pass."""
    output = model(features.unsqueeze(0))
    return output.scores[0], output.recon_error[0]


def score_features(
    model: nn.Module,
    features: np.ndarray | torch.Tensor,
    device: torch.device | str | None = None,
    *,
    segments: int | None = None,
    window: int | None = None,
) -> ScoreResult:
    """Score one whole video.

    The model runs in eval mode (its mode is restored afterwards) without gradients.

    Args:
        model: A scorer (``memtsm`` or ``mil-mlp``).
        features: ``[T, D]`` clip features of one video.
        device: Where to run; default the model's device.
        segments: ``None``: score every clip (default). ``S``: resample to ``S`` segments as in
            training, score them, and give each clip its segment's score.
        window: Score at most this many steps (clips or segments) per forward pass, each with
            ``model.receptive_field`` steps of context on both sides; ``None``: one pass
            (always one pass for a scorer whose ``receptive_field`` is ``None``).

    Returns:
        :class:`ScoreResult` with one value per clip (``[T]``).

    Raises:
        ValueError: ``features`` is not ``[T, D]`` with ``T >= 1``, or ``window < 1``.
    """
    values = features.detach().cpu().numpy() if isinstance(features, torch.Tensor) \
        else np.asarray(features)
    if values.ndim != 2 or values.shape[0] < 1:
        raise ValueError(f"features must be [T, D] with T >= 1, got {values.shape}")
    if window is not None and window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    num_clips = values.shape[0]
    ranges = None
    if segments is not None:
        values, ranges = resample_segments(values, segments)
    device = _device_of(model) if device is None else torch.device(device)
    x = torch.as_tensor(np.ascontiguousarray(values), dtype=torch.float32, device=device)
    was_training = model.training
    model.eval()
    try:
        length = x.shape[0]
        # receptive_field None: the scorer sees the whole video (RTFM's attention), no window.
        unbounded = getattr(model, "receptive_field", 0) is None
        if window is None or window >= length or unbounded:
            scores, recon = _run(model, x)
        else:
            context = int(getattr(model, "receptive_field", 0))
            score_parts, recon_parts = [], []
            for start in range(0, length, window):
                end = min(start + window, length)
                lo, hi = max(0, start - context), min(length, end + context)
                s, r = _run(model, x[lo:hi])
                score_parts.append(s[start - lo:end - lo])
                recon_parts.append(r[start - lo:end - lo])
            scores, recon = torch.cat(score_parts), torch.cat(recon_parts)
    finally:
        model.train(was_training)
    scores_np = scores.float().cpu().numpy()
    recon_np = recon.float().cpu().numpy()
    if ranges is not None:
        scores_np = spread_over_ranges(scores_np, ranges, num_clips).astype(np.float32)
        recon_np = spread_over_ranges(recon_np, ranges, num_clips).astype(np.float32)
    return ScoreResult(scores=scores_np, recon_error=recon_np)


def check_identity(checkpoint_identity: FeatureIdentity, features_identity: FeatureIdentity,
                   source: str = "feature store") -> None:
    """Refuse features that are not interchangeable with the checkpoint's training features.

    Every identity field but :data:`~memtsm.extract.identity.SCORING_IGNORES` must match.

    Raises:
        IncompatibleFeaturesError: Naming every differing field.
    """
    differences = FeatureIdentity.from_dict(checkpoint_identity).diff(features_identity,
                                                                       SCORING_IGNORES)
    if differences:
        raise IncompatibleFeaturesError(
            f"{source} holds features the checkpoint was not trained on "
            f"({describe_diff(differences, 'checkpoint', 'features')}); extract them again "
            "with the checkpoint's extract_config")


def score_store(
    checkpoint: Checkpoint | Path | str,
    store_dirs: Sequence[Path | str] | Path | str,
    *,
    device: torch.device | str = "auto",
    segments: int | None = None,
    window: int | None = None,
    progress: Progress | None = None,
) -> dict[str, VideoScores]:
    """Score every video (labelled or not) of one or more feature stores.

    Args:
        checkpoint: A :class:`Checkpoint` or the path of one (loaded with weights_only=True).
        store_dirs: Feature store directories (same identity as the checkpoint's).
        device: ``auto`` / ``cpu`` / ``cuda[:N]``.
        segments: See :func:`score_features` (``None``: per clip, the default).
        window: See :func:`score_features`.
        progress: Reports videos (items) and clips (units).

    Returns:
        ``{video_id: VideoScores}`` in store then index order.

    Raises:
        IncompatibleFeaturesError: A store's feature identity differs from the checkpoint's.
        CheckpointError: The checkpoint cannot be loaded safely.
        memtsm.train.data.DataError: Stores differ from each other or share a video id.
    """
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    if isinstance(store_dirs, (str, Path)):
        store_dirs = [store_dirs]
    stores, _ = open_stores(store_dirs)
    for store in stores:
        check_identity(ckpt.feature_identity, store.identity, str(store.root))
    torch_device = resolve_device(str(device))
    model = build_model_from_checkpoint(ckpt, torch_device)
    total_clips = sum(e.num_clips for store in stores for e in store.entries)
    if progress is not None:
        progress.start(sum(len(s) for s in stores), total_clips, "clips")
    results: dict[str, VideoScores] = {}
    try:
        for store in stores:
            for record in store:
                result = score_features(model, record.features.astype(np.float32),
                                        torch_device, segments=segments, window=window)
                results[record.video_id] = VideoScores(
                    scores=result.scores, recon_error=result.recon_error,
                    clip_frames=record.clip_frames.astype(np.int64),
                    num_frames=record.num_frames, label=record.label,
                    class_name=record.class_name)
                if progress is not None:
                    progress.advance(record.num_clips)
                    progress.item_done(record.video_id, True)
    finally:
        if progress is not None:
            progress.close()
    return results
