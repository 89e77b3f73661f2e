"""Frame-level metrics and plots: hand-checkable cases and agreement with scikit-learn."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    auc,
    average_precision_score,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)

from memtsm.evaluate.metrics import (
    EvalMetrics,
    f1_threshold,
    frame_level_metrics,
)
from memtsm.evaluate.plots import plot_roc_pr
from memtsm.segments import spread_over_ranges

# -------------------------------------------------------------------- clip -> frame mapping


def test_clip_scores_follow_stored_boundaries_with_uneven_last_clip() -> None:
    frames = spread_over_ranges(np.array([0.1, 0.5, 0.9]),
                                   np.array([[0, 16], [16, 32], [32, 40]]), 40)
    assert frames.shape == (40,)
    assert np.array_equal(frames, np.repeat([0.1, 0.5, 0.9], [16, 16, 8]))
    # clips of 10 frames: nothing assumes 16
    frames = spread_over_ranges(np.array([1.0, 2.0]), np.array([[0, 10], [10, 20]]), 20)
    assert np.array_equal(frames, np.repeat([1.0, 2.0], 10))


def test_clip_past_the_end_is_clipped() -> None:
    frames = spread_over_ranges(np.array([3.0, 4.0]), np.array([[0, 16], [16, 32]]), 20)
    assert np.array_equal(frames, np.repeat([3.0, 4.0], [16, 4]))


def test_uncovered_frames_take_nearest_clip() -> None:
    frames = spread_over_ranges(np.array([1.0, 2.0]), np.array([[0, 4], [8, 12]]), 16)
    #  covered 0-3 -> 1, 8-11 -> 2; 4, 5 nearer clip 0; 6, 7 nearer clip 1; tail 12-15 -> 2
    assert frames.tolist() == [1] * 6 + [2] * 10
    # a tie (frame 3: two frames from both) goes to the earlier clip; leading frames -> first
    frames = spread_over_ranges(np.array([1.0, 2.0]), np.array([[2, 3], [5, 6]]), 7)
    assert frames.tolist() == [1, 1, 1, 1, 2, 2, 2]


def test_overlapping_clips_average_and_zero_width_clips_are_ignored() -> None:
    frames = spread_over_ranges(np.array([1.0, 3.0]), np.array([[0, 10], [5, 15]]), 15)
    assert frames.tolist() == [1.0] * 5 + [2.0] * 5 + [3.0] * 5
    frames = spread_over_ranges(np.array([1.0, 100.0, 2.0]),
                                   np.array([[0, 8], [8, 8], [8, 16]]), 16)
    assert frames.tolist() == [1.0] * 8 + [2.0] * 8


@pytest.mark.parametrize(("scores", "clip_frames", "num_frames", "message"), [
    ([1.0], [[5, 2]], 10, "start <= end"),
    ([np.nan], [[0, 2]], 10, "NaN"),
    ([1.0, 2.0], [[0, 2]], 10, "disagree"),
    ([1.0], [[10, 12]], 10, "no range covers"),
    ([1.0], [[0, 2]], 0, "positive"),
])
def test_spread_over_ranges_errors(scores, clip_frames, num_frames, message) -> None:
    with pytest.raises(ValueError, match=message):
        spread_over_ranges(np.array(scores), np.array(clip_frames), num_frames)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(1, 20), st.floats(-5, 5)),
                min_size=1, max_size=8), st.integers(1, 60))
def test_spread_over_ranges_matches_brute_force(clips, num_frames) -> None:
    starts = np.array([c[0] for c in clips])
    clip_frames = np.stack([starts, starts + np.array([c[1] for c in clips])], axis=1)
    scores = np.array([c[2] for c in clips])
    covering = [[s for (a, b), s in zip(clip_frames, scores) if a <= f < b]
                for f in range(num_frames)]
    if not any(covering):
        with pytest.raises(ValueError):
            spread_over_ranges(scores, clip_frames, num_frames)
        return
    covered_value = {f: float(np.mean(c)) for f, c in enumerate(covering) if c}
    expected = []
    for f in range(num_frames):
        nearest = min(covered_value, key=lambda g: (abs(g - f), g))
        expected.append(covered_value[nearest])
    assert np.allclose(spread_over_ranges(scores, clip_frames, num_frames), expected)


# ----------------------------------------------------------------------------------- metrics


def _video(scores, labels, class_name=""):
    return np.asarray(scores, dtype=float), np.asarray(labels), class_name


def test_perfect_and_reversed_scores() -> None:
    per_video = {"a": _video([0.9, 0.8, 0.1], [1, 1, 0], "Arson"),
                 "n": _video([0.2, 0.3], [0, 0], "Normal")}
    perfect = frame_level_metrics(per_video, threshold=0.5)
    assert perfect.roc_auc == 1.0 and perfect.pr_auc == 1.0 and perfect.pr_auc_trapz == 1.0
    assert perfect.f1 == perfect.precision == perfect.recall == 1.0
    assert (perfect.n_videos, perfect.n_frames, perfect.n_anomalous_frames) == (2, 5, 2)
    assert perfect.per_class_auc == {"Arson": 1.0} and perfect.anomalous_video_auc == 1.0
    reversed_ = frame_level_metrics({k: (-s, y, c) for k, (s, y, c) in per_video.items()}, -0.5)
    assert reversed_.roc_auc == 0.0 and reversed_.anomalous_video_auc == 0.0
    assert reversed_.precision == 0.0 and reversed_.recall == 0.0 and reversed_.f1 == 0.0


def test_single_class_gives_none_not_crash() -> None:
    normal_only = frame_level_metrics({"n1": _video([0.1, 0.7], [0, 0], "Normal")}, 0.5)
    assert normal_only.roc_auc is None and normal_only.pr_auc is None
    assert normal_only.pr_auc_trapz is None and normal_only.recall is None
    assert normal_only.f1 == 0.0 and normal_only.precision == 0.0
    assert normal_only.anomalous_video_auc is None and normal_only.per_class_auc == {}
    assert any("roc_auc" in m and "no anomalous" in m for m in normal_only.messages)
    anomalous_only = frame_level_metrics({"a": _video([0.1, 0.7], [1, 1], "Arson")}, 0.9)
    assert anomalous_only.roc_auc is None and anomalous_only.per_class_auc == {"Arson": None}
    assert anomalous_only.pr_auc == 1.0 and anomalous_only.precision is None
    assert anomalous_only.recall == 0.0 and anomalous_only.f1 == 0.0
    json.dumps(anomalous_only.to_json_dict())


def test_metrics_agree_with_sklearn_and_per_class() -> None:
    rng = np.random.default_rng(0)
    per_video = {}
    for i, class_name in enumerate(["Arson", "Arson", "Fighting", "Normal", "Normal", "Normal"]):
        n = int(rng.integers(30, 80))
        labels = np.zeros(n, dtype=int)
        if class_name != "Normal":
            start = int(rng.integers(0, n // 2))
            labels[start:start + n // 3] = 1
        scores = rng.normal(size=n) + labels * 0.8
        per_video[f"v{i}"] = (scores, labels, class_name)
    threshold = 0.4
    result = frame_level_metrics(per_video, threshold)
    scores = np.concatenate([v[0] for v in per_video.values()])
    labels = np.concatenate([v[1] for v in per_video.values()])
    assert result.roc_auc == pytest.approx(roc_auc_score(labels, scores))
    assert result.pr_auc == pytest.approx(average_precision_score(labels, scores))
    precision, recall, _ = precision_recall_curve(labels, scores)
    assert result.pr_auc_trapz == pytest.approx(auc(recall, precision))
    assert result.pr_auc != result.pr_auc_trapz
    predicted = scores >= threshold
    assert result.f1 == pytest.approx(f1_score(labels, predicted))
    assert result.precision == pytest.approx(precision_score(labels, predicted))
    assert result.recall == pytest.approx(recall_score(labels, predicted))
    assert result.n_frames == labels.size and result.n_anomalous_frames == labels.sum()
    anomalous = [v for v in per_video.values() if v[1].any()]
    assert result.anomalous_video_auc == pytest.approx(roc_auc_score(
        np.concatenate([v[1] for v in anomalous]), np.concatenate([v[0] for v in anomalous])))
    normal = [v for v in per_video.values() if not v[1].any()]
    for class_name in ("Arson", "Fighting"):
        subset = [v for v in anomalous if v[2] == class_name] + normal
        assert result.per_class_auc[class_name] == pytest.approx(roc_auc_score(
            np.concatenate([v[1] for v in subset]), np.concatenate([v[0] for v in subset])))
    assert set(result.per_class_auc) == {"Arson", "Fighting"}


def test_scores_are_not_normalised() -> None:
    # an affine change of all scores keeps the AUC but moves F1 at a fixed threshold
    per_video = {"a": _video([0.6, 0.4, 0.2], [1, 0, 0], "X")}
    shifted = {"a": _video([10.6, 10.4, 10.2], [1, 0, 0], "X")}
    base, moved = frame_level_metrics(per_video, 0.5), frame_level_metrics(shifted, 0.5)
    assert base.roc_auc == moved.roc_auc == 1.0
    assert base.precision == 1.0 and moved.precision == pytest.approx(1 / 3)


def test_to_json_dict_is_plain_json() -> None:
    result = frame_level_metrics({"a": _video([0.9, 0.1], [1, 0], "Arson")}, 0.5)
    data = json.loads(json.dumps(result.to_json_dict()))
    assert data["roc_auc"] == 1.0 and data["per_class_auc"] == {"Arson": 1.0}
    assert data["threshold"] == 0.5 and data["n_frames"] == 2
    assert "average_precision" in data["pr_auc_definition"]
    assert isinstance(result, EvalMetrics)
    with pytest.raises(AttributeError):
        result.roc_auc = 0.0  # type: ignore[misc]


@pytest.mark.parametrize("per_video", [
    {},
    {"a": _video([0.1, np.nan], [0, 1])},
    {"a": _video([0.1, 0.2], [0, 2])},
    {"a": _video([0.1, 0.2], [0, 1, 1])},
    {"a": _video([], [])},
])
def test_frame_level_metrics_rejects_bad_input(per_video) -> None:
    with pytest.raises(ValueError):
        frame_level_metrics(per_video, 0.5)


# ------------------------------------------------------------------------------- threshold


def test_f1_threshold_hand_case() -> None:
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    labels = np.array([0, 0, 1, 1])
    # flag >= 0.8 -> F1 2/3; >= 0.4 -> P 1/2 R 1/2; >= 0.35 -> P 2/3 R 1 -> F1 0.8 (best);
    # returned midway between the lowest flagged score (0.35) and the highest unflagged (0.1)
    threshold, f1 = f1_threshold(scores, labels)
    assert threshold == pytest.approx(0.225) and f1 == pytest.approx(0.8)
    with pytest.raises(ValueError, match="anomalous"):
        f1_threshold(scores, np.zeros(4, dtype=int))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1, allow_subnormal=False), st.integers(0, 1)),
                min_size=2, max_size=30).filter(lambda v: any(label for _, label in v)))
def test_f1_threshold_maximises_f1(values) -> None:
    scores = np.array([v[0] for v in values])
    labels = np.array([v[1] for v in values])
    chosen, f1 = f1_threshold(scores, labels)
    best = max(f1_score(labels, scores >= t) for t in np.unique(scores))
    assert f1_score(labels, scores >= chosen) == pytest.approx(best) == pytest.approx(f1)


# ------------------------------------------------------------------------------------ plots


def test_plot_roc_pr(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 500)
    scores = rng.normal(size=500) + labels
    paths = plot_roc_pr(scores, labels, tmp_path / "plots")
    assert [p.name for p in paths] == ["roc.png", "pr.png"]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    with pytest.raises(ValueError, match="both"):
        plot_roc_pr(scores, np.zeros(500, dtype=int), tmp_path / "none")
    assert not (tmp_path / "none").exists()


def test_plots_do_not_touch_pyplot(tmp_path: Path) -> None:
    code = ("import sys, numpy as np\n"
            "from memtsm.evaluate.plots import plot_roc_pr\n"
            f"plot_roc_pr(np.array([0.1, 0.9, 0.4]), np.array([0, 1, 1]), {str(tmp_path)!r})\n"
            "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2],
                   env={"MPLBACKEND": "", "PATH": ""})
    assert (tmp_path / "roc.png").is_file()
