"""The standard weakly-supervised benchmarks' test protocols, and the card printed with results.

A :class:`Protocol` fixes what a benchmark's published evaluation code fixes, so a result can be
compared with the papers' tables:

==================  =================  ==============================  ======================
protocol            headline metric    ground truth                    frames per video
==================  =================  ==============================  ======================
``ucf-crime``       frame ROC-AUC      temporal annotation (Sultani    the video's frame count
                                       et al.), 1-based inclusive      (annotation/frame
                                                                       counts)
``xd-violence``     frame AP           ``name s1 e1 ...``, 0-based     ``T x 16`` (the
                                       half-open                       features' snippets)
``shanghaitech``    frame ROC-AUC      ``test_frame_mask/<video>.npy`` the mask's length
==================  =================  ==============================  ======================

Clip length 16 for all three (C3D, I3D and CLIP features are computed over 16-frame snippets:
``clip_len = 16`` in RTFM's, UR-DMU's and VadCLIP's test code, which repeat each snippet score
16 times). Scores are spread over frames from the stored ``clip_frames``
(:func:`memtsm.segments.spread_over_ranges`); where the protocol counts a video's frames from
its annotation, the last snippet's score covers the frames up to that count (fewer than one
clip) and a count further off than one clip is refused as features of another video.

The card (:func:`protocol_card`) states with every result what was evaluated and how the
checkpoint and the threshold were chosen: on held-out training videos, never on the test set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from memtsm.constants import CLIP_FRAMES

if TYPE_CHECKING:  # pragma: no cover
    from memtsm.evaluate.protocol import EvalResult


@dataclass(frozen=True)
class Protocol:
    """A benchmark's test protocol.

    Attributes:
        name: ``ucf-crime``, ``xd-violence`` or ``shanghaitech``.
        title: how papers name the benchmark.
        headline: the :class:`~memtsm.evaluate.metrics.EvalMetrics` field papers report first.
        headline_name: its name in tables.
        annotation_format: the ground-truth reader (:data:`ANNOTATION_FORMATS`).
        frames: ``"annotation"`` (a video's frames are its annotated count) or ``"features"``
            (the stored ``num_frames``: ``T x clip_len`` for snippet features without counts).
        clip_len: frames per snippet of the features the protocol is defined for.
        ground_truth: how the ground truth is read, for the card.
    """

    name: str
    title: str
    headline: str
    headline_name: str
    annotation_format: str
    frames: str
    clip_len: int
    ground_truth: str


PROTOCOLS: Mapping[str, Protocol] = {
    "ucf-crime": Protocol(
        "ucf-crime", "UCF-Crime", "roc_auc", "frame ROC-AUC", "ucf-crime", "annotation",
        CLIP_FRAMES, "temporal annotation, 1-based inclusive intervals, ends clipped to the "
        "frame count"),
    "xd-violence": Protocol(
        "xd-violence", "XD-Violence", "pr_auc", "frame AP", "xd-violence", "features",
        CLIP_FRAMES, "annotations.txt frame pairs, 0-based half-open, clipped to T x 16 frames"),
    "shanghaitech": Protocol(
        "shanghaitech", "ShanghaiTech (weakly supervised split)", "roc_auc", "frame ROC-AUC",
        "shanghaitech", "annotation", CLIP_FRAMES, "test_frame_mask/<video>.npy, one 0/1 value "
        "per frame"),
}
#: Names ``--protocol`` accepts.
PROTOCOL_NAMES: tuple[str, ...] = tuple(PROTOCOLS)


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    if name not in PROTOCOLS:
        raise ValueError(f"--protocol: unknown protocol {name!r}; expected one of "
                         f"{', '.join(PROTOCOL_NAMES)}")
    return PROTOCOLS[name]


def _number(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _crops(view: Mapping[str, Any] | None) -> str:
    if not view:
        return "no crops"
    use = view.get("use")
    return {"mean": f"mean of {view.get('count')} crops",
            "each": f"each of {view.get('count')} crops as its own bag"}.get(
                str(use), f"{use} of {view.get('count')}")


def card_facts(result: EvalResult) -> dict[str, Any]:
    """What the card states, as plain values (also written to JSON)."""
    metrics = result.metrics
    anomalous = sum(1 for v in result.videos.values() if v.frame_labels.any())
    checkpoint = result.extra.get("checkpoint", {})
    return {
        "protocol": result.config.protocol,
        "test_videos": metrics.n_videos,
        "anomalous_videos": anomalous,
        "normal_videos": metrics.n_videos - anomalous,
        "frames": metrics.n_frames,
        "anomalous_frames": metrics.n_anomalous_frames,
        "annotations": result.config.annotations,
        "test_features": list(result.config.features),
        "test_crops": result.extra.get("test_crops"),
        "train_crops": result.extra.get("train_crops"),
        "checkpoint": checkpoint,
        "threshold": metrics.threshold,
        "threshold_source": result.threshold_source,
    }


def protocol_card(result: EvalResult) -> str:
    """The protocol card of a result: every fact a paper table needs next to the number."""
    protocol = get_protocol(result.config.protocol) if result.config.protocol else None
    facts = card_facts(result)
    metrics = result.metrics
    checkpoint = facts["checkpoint"]
    title = f"{protocol.title}: {protocol.headline_name}" if protocol else "frame-level"
    frames_rule = ("each video's annotated frame count" if protocol and
                   protocol.frames == "annotation" else "the stored frame count of each video")
    val = checkpoint.get("val_metrics") or {}
    selection = (f"epoch {checkpoint.get('epoch')} of {checkpoint.get('epochs')}, best validation "
                 f"ROC-AUC {_number(val.get('val_auc'))} on {checkpoint.get('val_videos')} "
                 "held-out training videos (the test set chose nothing)")
    lines = [
        f"protocol card: {title}",
        f"  test videos   {facts['test_videos']} ({facts['anomalous_videos']} anomalous, "
        f"{facts['normal_videos']} normal) from {', '.join(facts['test_features'])}",
        f"  frames        {facts['frames']} ({facts['anomalous_frames']} anomalous, "
        f"{100 * metrics.anomalous_fraction:.2f}%); frames per video: {frames_rule}; clip "
        f"length {protocol.clip_len if protocol else 'from clip_frames'}",
        f"  ground truth  {facts['annotations']}"
        + (f" ({protocol.ground_truth})" if protocol else ""),
        f"  crops         test: {_crops(facts['test_crops'])}; training: "
        f"{_crops(facts['train_crops'])}",
        f"  checkpoint    {checkpoint.get('path', '?')}: {selection}",
        f"  threshold     {metrics.threshold:.4f}: {facts['threshold_source']}",
    ]
    if protocol is not None:
        lines.append(f"  headline      {protocol.headline_name} "
                     f"{_number(getattr(metrics, protocol.headline))}")
    lines.append(f"  also          frame ROC-AUC {_number(metrics.roc_auc)}, frame AP "
                 f"{_number(metrics.pr_auc)}, ROC-AUC over anomalous videos only "
                 f"{_number(metrics.anomalous_video_auc)}, false-alarm rate on normal videos at "
                 f"the threshold {_number(metrics.normal_false_alarm_rate)}")
    return "\n".join(lines) + "\n"
