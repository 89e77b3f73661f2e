"""Scores of a stream's clips as they arrive, over a sliding window of the scorer's receptive field.

The scorer's temporal operations reach ``R = model.receptive_field`` clips on each side
(:mod:`memtsm.model.scorer`), so the score of clip ``t`` depends only on clips ``t - R .. t + R``
and a window holding them (or reaching the run's start) gives exactly the whole-video score.
Each clip therefore gets

* a *provisional* score as soon as it is complete, computed with the future clips that exist
  (as if the video ended there), and
* its *final* score once ``R`` later clips arrived, or when the run ends (a gap, the end of the
  stream, a shutdown): then it is the score ``memtsm score`` gives the video that ends there.

A scorer with ``R = 0``, or a causal one (``model.lookahead == 0``: ``memtsm train
--causal``), gives final scores at once; one whose reach is the whole video
(``receptive_field is None``) cannot be streamed (the runner refuses it). Memory is bounded:
only the last ``2 R`` clip vectors are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from memtsm.score.stored import score_features


@dataclass(frozen=True)
class Clip:
    """One complete clip of a stream: where it is, and when its last frame arrived."""

    index: int
    """Segment index in the stream (counts on across gaps)."""
    start_frame: int
    end_frame: int
    """Frames of the stream, 0-based, end exclusive (frames count on across gaps)."""
    start_time: float
    end_time: float
    """Seconds of stream time, end exclusive."""
    arrived: float
    """``time.time()`` when its last frame arrived."""


@dataclass(frozen=True)
class SegmentScore:
    """A clip's score: provisional (``final=False``) or final."""

    stream: str
    clip: Clip
    score: float
    recon_error: float
    flagged: bool
    final: bool
    wall_time: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON line of a segment (``score`` and ``recon_error`` rounded as by score)."""
        clip = self.clip
        return {"event": "segment", "stream": self.stream, "index": clip.index,
                "start_frame": clip.start_frame, "end_frame": clip.end_frame,
                "start_time": clip.start_time, "end_time": clip.end_time,
                "wall_time": round(self.wall_time, 4), "score": self.score,
                "recon_error": self.recon_error, "flagged": self.flagged, "final": self.final,
                "lag": round(self.wall_time - clip.arrived, 4)}


class WindowScorer:
    """Provisional and final scores of one run of consecutive clips of one stream.

    Call :meth:`push` with each batch of new clips, :meth:`finish` when the run ends (then the
    scorer is empty and may start a new run).
    """

    def __init__(self, stream: str, model: nn.Module, device: torch.device,
                 threshold: float) -> None:
        self.stream = stream
        self.model = model
        self.device = device
        self.threshold = threshold
        self.context = int(getattr(model, "receptive_field", 0))
        #: Future clips a score depends on (0 for a causal scorer: final at once).
        self.lookahead = int(getattr(model, "lookahead", self.context))
        self._clips: list[Clip] = []
        self._features: list[np.ndarray] = []
        self._final = 0  # clips of self._clips already scored final (a prefix)

    def push(self, clips: list[Clip], features: np.ndarray, now: float) -> list[SegmentScore]:
        """Add complete clips (``features float32 [n, D]``); return the scores now known."""
        self._clips += clips
        self._features += list(features)
        return self._score(len(clips), now, ending=False)

    def finish(self, now: float) -> list[SegmentScore]:
        """End the run: final scores of every clip that had none."""
        scores = self._score(0, now, ending=True) if self._clips else []
        self._clips, self._features, self._final = [], [], 0
        return scores

    def _score(self, new: int, now: float, ending: bool) -> list[SegmentScore]:
        result = score_features(self.model, np.stack(self._features), self.device)
        count = len(self._clips)
        out = []
        # At most L (look-ahead) clips are pending and R + L are kept, so every pending clip
        # has R clips of left context here (or the window reaches the run's start).
        for position in range(self._final, count):
            final = ending or position + self.lookahead < count
            if not final and position < count - new:
                continue  # already has its provisional score
            out.append(self._segment(position, result, final, now))
            if final:
                self._final = position + 1
        keep = self.context + self.lookahead
        if count > keep:
            drop = count - keep
            del self._clips[:drop], self._features[:drop]
            self._final -= drop
        return out

    def _segment(self, position: int, result, final: bool, now: float) -> SegmentScore:
        score = float(result.scores[position])
        return SegmentScore(self.stream, self._clips[position], round(score, 6),
                            round(float(result.recon_error[position]), 6),
                            bool(score >= self.threshold), final, now)
