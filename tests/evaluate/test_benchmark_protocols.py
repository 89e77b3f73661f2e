"""The three standard protocols on tiny data sets whose metrics are computed by hand.

Every example has two videos of two 16-frame snippets: an anomalous one with clip scores
``[0.9, 0.2]`` whose frames 8..23 (0-based) are anomalous, and a normal one with ``[0.5, 0.1]``.
Frame by frame (16 anomalous frames: 8 at 0.9, 8 at 0.2; normal frames: 8 at 0.9, 16 at 0.5,
8 at 0.2, 16 at 0.1, plus what a protocol adds):

* ROC-AUC = P(anomalous frame > normal frame) + ties / 2 = (8 * 44 + 8 * 20) / (16 * 48) = 2/3;
* AP = sum over thresholds of (recall gain) x precision = 0.5 * 8/16 + 0.5 * 16/48 = 5/12;
* false-alarm rate at 0.5 = normal-video frames >= 0.5 / its frames = 16 / 32 = 1/2;
* ROC-AUC over the anomalous video only: (8 * 12 + 8 * 4) / (16 * 16) = 1/2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from memtsm.evaluate.annotations import (
    load_annotations,
    match_videos,
    parse_shanghaitech_masks,
    parse_xd_violence,
)
from memtsm.evaluate.metrics import frame_level_metrics
from memtsm.evaluate.protocol import EvalConfig, frame_results
from memtsm.evaluate.protocols import PROTOCOL_NAMES, get_protocol
from memtsm.score.stored import VideoScores

CLIPS = np.array([[0, 16], [16, 32]])


def _scored(anomalous: str, normal: str, num_frames: int = 32) -> dict[str, VideoScores]:
    return {
        anomalous: VideoScores(np.array([0.9, 0.2], np.float32), np.zeros(2, np.float32),
                               CLIPS, num_frames, 1, ""),
        normal: VideoScores(np.array([0.5, 0.1], np.float32), np.zeros(2, np.float32),
                            CLIPS, num_frames, 0, "Normal"),
    }


def _metrics(scored, annotations, protocol_name, threshold=0.5):
    protocol = get_protocol(protocol_name)
    mapping, _ = match_videos(annotations, list(scored))
    videos = frame_results(scored, annotations, mapping, protocol)
    per_video = {k: (v.frame_scores, v.frame_labels, v.class_name) for k, v in videos.items()}
    return frame_level_metrics(per_video, threshold), videos


def test_xd_violence_frame_ap_by_hand(tmp_path: Path) -> None:
    anomalous = "Bad.Boys.1995__#01-11-55_01-12-40_label_B1-0-0"
    normal = "A.Beautiful.Mind.2001__#00-25-20_00-29-20_label_A"
    path = tmp_path / "annotations.txt"
    path.write_text(f"{anomalous} 8 24\n")  # 0-based half-open: frames 8..23
    metrics, videos = _metrics(_scored(anomalous, normal),
                               load_annotations(path, "xd-violence"), "xd-violence")
    assert get_protocol("xd-violence").headline == "pr_auc"
    assert metrics.pr_auc == pytest.approx(5 / 12, abs=1e-12)
    assert metrics.roc_auc == pytest.approx(2 / 3, abs=1e-12)
    assert metrics.normal_false_alarm_rate == 0.5
    assert metrics.anomalous_video_auc == pytest.approx(0.5, abs=1e-12)
    assert (metrics.n_frames, metrics.n_anomalous_frames) == (64, 16)
    assert videos[anomalous].class_name == "B1"
    assert np.flatnonzero(videos[anomalous].frame_labels).tolist() == list(range(8, 24))


def test_ucf_crime_frame_auc_by_hand(tmp_path: Path) -> None:
    path = tmp_path / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"
    # the official layout: double spaces, 1-based inclusive, -1 for no event
    path.write_text("Arson011_x264.mp4  Arson  9  24  -1  -1  \n"
                    "Normal_Videos_003_x264.mp4  Normal  -1  -1  -1  -1  \n")
    scored = _scored("Arson/Arson011_x264", "Normal_Videos_003_x264")
    metrics, videos = _metrics(scored, load_annotations(path, "ucf-crime"), "ucf-crime")
    assert metrics.roc_auc == pytest.approx(2 / 3, abs=1e-12)
    assert metrics.pr_auc == pytest.approx(5 / 12, abs=1e-12)
    assert np.flatnonzero(videos["Arson/Arson011_x264"].frame_labels).tolist() == \
        list(range(8, 24))


def test_shanghaitech_masks_count_the_frames(tmp_path: Path) -> None:
    masks = tmp_path / "test_frame_mask"
    masks.mkdir()
    gt = np.zeros(40, np.int64)  # 8 frames more than the two snippets cover
    gt[8:24] = 1
    np.save(masks / "01_0014.npy", gt)
    np.save(masks / "01_001.npy", np.zeros(32, np.int64))
    annotations = load_annotations(masks)  # a folder: auto-detected
    metrics, videos = _metrics(_scored("01_0014", "01_001"), annotations, "shanghaitech")
    # the 8 extra frames are normal and take the last snippet's score, 0.2: 56 normal frames,
    # AUC = (8 * 52 + 8 * 24) / (16 * 56) = 19/28
    assert metrics.roc_auc == pytest.approx(19 / 28, abs=1e-12)
    assert videos["01_0014"].frame_scores[32:].tolist() == pytest.approx([0.2] * 8)
    assert metrics.n_frames == 72
    # a mask a whole clip longer than the features: features of another video
    np.save(masks / "01_0014.npy", np.zeros(48, np.int64))
    with pytest.raises(ValueError, match="01_0014 has 48 frames.*cover 32"):
        _metrics(_scored("01_0014", "01_001"), parse_shanghaitech_masks(masks), "shanghaitech")


def test_real_ucf_test_annotation_frame_totals(shared_data: Path) -> None:
    """All 290 official test videos: 1,111,808 frames, 84,338 anomalous (1-based inclusive)."""
    meta = shared_data / "ucf_crime" / "meta"
    annotations = load_annotations(meta / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt",
                                   "ucf-crime", meta / "Test_Annotation.txt")
    names = [line.split("/")[-1].strip() for line in
             (meta / "Anomaly_Test.txt").read_text().splitlines() if line.strip()]
    assert len(names) == 290
    counts = annotations.num_frames
    scored = {name[:-4]: VideoScores(np.zeros(1, np.float32), np.zeros(1, np.float32),
                                     np.array([[0, counts[name]]]), counts[name], None, "")
              for name in names}
    mapping, missing = match_videos(annotations, list(scored))
    assert not missing and len(mapping) == 290
    videos = frame_results(scored, annotations, mapping, get_protocol("ucf-crime"))
    assert sum(v.frame_labels.size for v in videos.values()) == 1_111_808
    assert sum(int(v.frame_labels.sum()) for v in videos.values()) == 84_182 + 156


@pytest.mark.parametrize(("text", "message"), [
    ("v=a_label_B1-0-0 1 2 3\n", ":1: expected 'name start1 end1"),
    ("v=a_label_B1-0-0 5 2\n", ":1: invalid frame range \\[5, 2\\)"),
    ("v=a_label_B1-0-0 1 x\n", ":1: frame number must be an integer"),
    ("v=a_label_B1-0-0 1 2\nv=a_label_B1-0-0 3 4\n", ":2: video .* is listed twice"),
])
def test_xd_violence_parsing_is_strict(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "annotations.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"{path}{message}"):
        parse_xd_violence(path)


def test_bad_masks_are_named(tmp_path: Path) -> None:
    np.save(tmp_path / "01_0014.npy", np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="01_0014.npy: frame 2: mask value 2"):
        parse_shanghaitech_masks(tmp_path)
    np.save(tmp_path / "01_0014.npy", np.zeros((2, 2), np.int64))
    with pytest.raises(ValueError, match="01_0014.npy: a frame mask is a non-empty 1-D"):
        parse_shanghaitech_masks(tmp_path)


def test_protocol_config_checks() -> None:
    assert PROTOCOL_NAMES == ("ucf-crime", "xd-violence", "shanghaitech")
    with pytest.raises(ValueError, match="the xd-violence protocol reads xd-violence"):
        EvalConfig(checkpoint="c.pt", features=("s",), annotations="a.txt",
                   annotation_format="ucf-crime", protocol="xd-violence")
    with pytest.raises(ValueError, match="unknown protocol 'kinetics'"):
        EvalConfig(checkpoint="c.pt", features=("s",), annotations="a.txt",
                   protocol="kinetics")
