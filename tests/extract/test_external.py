"""Importing the published UCF-Crime C3D features (and NumPy arrays) into a feature store."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from memtsm import __version__
from memtsm.evaluate.annotations import frame_labels, parse_ucf_crime
from memtsm.evaluate.metrics import frame_level_metrics
from memtsm.extract.external import (
    find_feature_files,
    fixed_width_frames,
    import_features,
    l2_normalize,
    sultani_segment_clips,
    sultani_segment_frames,
)
from memtsm.extract.feature_files import read_sultani_txt
from memtsm.extract.sources import read_frame_counts
from memtsm.extract.store import FeatureStore, completed_shards
from memtsm.segments import spread_over_ranges

VANTAGE = ["Explosion/Explosion003_x264.csv.gz",  # 33 rows
           "Abuse/Abuse002_x264.csv.gz",
           "Training_Normal_Videos_Anaomaly/Normal_Videos009_x264.csv.gz"]


@pytest.fixture(scope="module")
def ucf(shared_data: Path) -> Path:
    return shared_data / "ucf_crime"


@pytest.fixture(scope="module")
def sultani_store(ucf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sultani") / "store"
    summary = import_features([ucf / "c3d_sultani"], out, "sultani-txt",
                              frame_counts=ucf / "meta" / "Test_Annotation.txt")
    assert len(summary.imported) == 10 and not summary.failures
    return out


def _covers_exactly(clip_frames: np.ndarray, num_frames: int) -> bool:
    covered = np.zeros(num_frames, dtype=bool)
    for start, end in clip_frames:
        assert 0 <= start < end <= num_frames
        covered[start:end] = True
    return bool(covered.all())


def test_sultani_features_imported(sultani_store: Path, ucf: Path) -> None:
    counts = read_frame_counts(ucf / "meta" / "Test_Annotation.txt")
    store = FeatureStore(sultani_store)
    assert len(store) == 10 and store.feature_dim == 4096
    assert store.identity.to_dict() == {"feature_dim": 4096, "layout": "imported:c3d",
                              "dtype": "float32",
                              "feature_spec": {"feature_name": "c3d",
                                               "normalize": "none", "clip_len": 16}}
    assert store.meta["provenance"]["import"]["format"] == "sultani-txt"
    assert store.meta["provenance"]["memtsm_version"] == __version__
    for record in store:
        raw = read_sultani_txt(ucf / "c3d_sultani" / f"{record.video_id}.txt")
        assert record.features.shape == (32, 4096) and record.features.dtype == np.float32
        assert np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-3)  # published normalised
        assert np.allclose(record.features, raw, atol=1e-6)
        assert record.num_frames == counts[record.video_id]
        assert _covers_exactly(record.clip_frames, record.num_frames)
        assert record.clip_frames[0, 0] == 0 and record.clip_frames[-1, 1] == record.num_frames
        assert (np.diff(record.clip_frames, axis=1) >= 16).all()
        assert record.source.endswith(f"{record.video_id}.txt")
    explosion = store.read("Explosion008_x264")
    assert (explosion.label, explosion.class_name) == (1, "Explosion")
    normal = store.read("Normal_Videos_006_x264")
    assert (normal.label, normal.class_name) == (0, "Normal")
    config = json.loads((sultani_store / "import_config.json").read_text())
    assert config["format"] == "sultani-txt" and config["memtsm_version"] == __version__
    assert config["frame_counts"].endswith("Test_Annotation.txt")


def test_sultani_segment_rule_matches_published_rows(ucf: Path) -> None:
    """Rows that are exactly equal are the segments built from the same single clip."""
    counts = read_frame_counts(ucf / "meta" / "Test_Annotation.txt")
    checked = 0
    for path in sorted((ucf / "c3d_sultani").glob("*.txt")):
        rows = read_sultani_txt(path)
        n_clips = counts[path.stem] // 16
        equal = {i for i in range(31) if np.allclose(rows[i], rows[i + 1], atol=2e-6)}
        clips = sultani_segment_clips(n_clips, 32)
        same = {i for i in range(31) if (clips[i] == clips[i + 1]).all()}
        assert same <= equal
        if path.stem == "Explosion025_x264":
            # plus the last two segments: two different, identical-looking final clips
            assert equal - same == {30}
        else:
            assert equal == same
        checked += len(same)
    assert checked == 2 + 5 + 12  # Explosion025, Normal_Videos_006, RoadAccidents002
    # numpy's half-to-even round, or linspace(0, n_clips, 33), would predict other pairs
    n_clips = 347 // 16  # RoadAccidents002
    observed = [1, 4, 6, 9, 12, 14, 17, 20, 22, 25, 28, 30]
    for bounds in (np.round(np.linspace(0, n_clips - 1, 33)).astype(int),
                   np.floor(np.linspace(0, n_clips, 33) + 0.5).astype(int)):
        pairs = [i for i in range(31)
                 if max(bounds[i + 1], bounds[i] + 1) == max(bounds[i + 2], bounds[i + 1] + 1)
                 and bounds[i] == bounds[i + 1]]
        assert pairs != observed


def test_sultani_segment_frames_short_and_long() -> None:
    frames = sultani_segment_frames(347, 32, 16)  # 21 clips < 32 segments
    assert frames.shape == (32, 2) and frames[0, 0] == 0 and frames[-1, 1] == 347
    assert ((frames[:, 1] - frames[:, 0]) >= 16).all()  # no zero-width segment
    assert _covers_exactly(frames, 347)
    frames = sultani_segment_frames(3630, 32, 16)  # 226 clips: a partition
    assert (frames[1:, 0] == frames[:-1, 1]).all()
    assert frames[-1].tolist() == [int(round(31 * 225 / 32)) * 16, 3630]
    assert sultani_segment_frames(20, 32, 16).tolist() == [[0, 16]] * 31 + [[0, 20]]
    with pytest.raises(ValueError, match="fewer than one"):
        sultani_segment_frames(15, 32, 16)


def test_vantage_csv_import(ucf: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "vantage"
    for rel in VANTAGE:
        (inputs / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ucf / "c3d_vantage" / rel, inputs / rel)
    counts_file = ucf / "meta" / "Train_Annotation.txt"
    summary = import_features([inputs], tmp_path / "store", "csv", frame_counts=counts_file,
                              normalize="l2")
    assert sorted(summary.imported) == sorted(r.removesuffix(".csv.gz") for r in VANTAGE)
    counts = read_frame_counts(counts_file)
    store = FeatureStore(tmp_path / "store")
    assert store.identity.layout == "imported:c3d"
    assert store.identity.feature_spec["normalize"] == "l2"
    for record in store:
        name = record.video_id.rsplit("/", 1)[-1]
        assert record.num_frames == counts[name]
        assert _covers_exactly(record.clip_frames, record.num_frames)
        assert np.allclose(np.linalg.norm(record.features, axis=1), 1.0, atol=1e-5)
    explosion = store.read("Explosion/Explosion003_x264")
    assert explosion.features.shape == (33, 4096)
    assert explosion.clip_frames[:2].tolist() == [[0, 17], [17, 34]]  # width line "17"
    assert explosion.clip_frames[-1].tolist() == [32 * 17, 576]
    assert (explosion.label, explosion.class_name) == (1, "Explosion")
    normal = store.read("Training_Normal_Videos_Anaomaly/Normal_Videos009_x264")
    assert (normal.label, normal.class_name) == (0, "Normal")
    assert normal.features.shape == (32, 4096)


def test_vantage_single_file_without_counts(ucf: Path, tmp_path: Path) -> None:
    path = ucf / "c3d_vantage" / VANTAGE[2]
    summary = import_features([path], tmp_path / "store", "csv")
    assert summary.imported == ("Normal_Videos009_x264",)
    record = FeatureStore(tmp_path / "store").read("Normal_Videos009_x264")
    width = int(gzip.open(path, "rt").readline())
    assert record.num_frames == 32 * width and record.extra["num_frames_source"] == "features"
    assert record.clip_frames.tolist() == [[i * width, (i + 1) * width] for i in range(32)]
    norms = np.linalg.norm(record.features, axis=1)
    assert norms.min() > 10  # these rows are not normalised
    assert record.label == 0


def test_corrupt_files_are_reported_and_the_rest_imported(ucf: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs" / "Explosion"
    inputs.mkdir(parents=True)
    for name in ("Explosion008_x264", "Explosion025_x264"):
        shutil.copy(ucf / "c3d_sultani" / f"{name}.txt", inputs / f"{name}.txt")
    lines = (ucf / "c3d_sultani" / "Shooting008_x264.txt").read_text().splitlines()
    lines[4] = " ".join(lines[4].split()[:-1])  # one value missing on line 5
    (inputs / "Shooting008_x264.txt").write_text("\n".join(lines) + "\n")
    (inputs / "RoadAccidents002_x264.txt").write_text("garbage\x00 not numbers\n" * 32)
    (inputs / "Nowhere001_x264.txt").write_text("0.5 0.5\n" * 32)  # not in the frame counts
    out = tmp_path / "store"
    summary = import_features([tmp_path / "inputs"], out, "sultani-txt",
                              frame_counts=ucf / "meta" / "Test_Annotation.txt")
    assert sorted(summary.imported) == ["Explosion/Explosion008_x264",
                                        "Explosion/Explosion025_x264"]
    failed = {f.video_id: f.error for f in summary.failures}
    assert set(failed) == {"Explosion/Shooting008_x264", "Explosion/RoadAccidents002_x264",
                           "Explosion/Nowhere001_x264"}
    assert failed["Explosion/Shooting008_x264"].startswith(
        f"{inputs / 'Shooting008_x264.txt'}:5: expected 4096 values, got 4095")
    assert "RoadAccidents002_x264.txt:1: not a number" in failed["Explosion/RoadAccidents002_x264"]
    assert "not in the frame counts" in failed["Explosion/Nowhere001_x264"]
    logged = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert [set(entry) for entry in logged] == [{"video_id", "source", "error"}] * 3
    assert {entry["video_id"] for entry in logged} == set(failed)
    store = FeatureStore(out)
    assert sorted(store.video_ids) == sorted(summary.imported)
    groups: list[str] = []
    for shard in completed_shards(out):
        with h5py.File(shard, "r") as handle:
            handle.visititems(lambda name, obj: groups.append(name)
                              if isinstance(obj, h5py.Group) and "features" in obj else None)
    assert sorted(groups) == sorted(summary.imported)  # no partial group of a bad file
    # a second run skips what is stored and reports the bad files again
    again = import_features([tmp_path / "inputs"], out, "sultani-txt",
                            frame_counts=ucf / "meta" / "Test_Annotation.txt")
    assert again.imported == () and sorted(again.skipped) == sorted(summary.imported)
    assert len(again.failures) == 3


def test_corrupt_csv_gz(ucf: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(ucf / "c3d_vantage" / VANTAGE[1], inputs / "Abuse002_x264.csv.gz")
    (inputs / "Abuse005_x264.csv.gz").write_bytes(b"not gzip at all")
    with gzip.open(inputs / "Abuse009_x264.csv.gz", "wt") as handle:
        handle.write("30\n1,2,3\n1,2\n")
    summary = import_features([inputs], tmp_path / "store", "csv")
    assert summary.imported == ("Abuse002_x264",)
    failed = {f.video_id: f.error for f in summary.failures}
    assert set(failed) == {"Abuse005_x264", "Abuse009_x264"}
    assert failed["Abuse009_x264"].endswith("Abuse009_x264.csv.gz:3: expected 3 values, got 2")


def test_sultani_needs_frame_counts(ucf: Path, tmp_path: Path) -> None:
    summary = import_features([ucf / "c3d_sultani" / "Explosion008_x264.txt"],
                              tmp_path / "store", "sultani-txt")
    assert summary.imported == ()
    assert "need frame counts" in summary.failures[0].error


def test_npy_crops_are_averaged(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    inputs = tmp_path / "npy"
    (inputs / "Fighting").mkdir(parents=True)
    crops = rng.normal(size=(7, 10, 32)).astype(np.float32)
    np.save(inputs / "Fighting" / "Fighting001_x264.npy", crops)
    plain = rng.normal(size=(5, 32))
    plain[2] = 0.0
    np.save(inputs / "Fighting" / "Fighting002_x264.npy", plain)
    np.save(inputs / "Fighting" / "Bad003_x264.npy", np.zeros((5, 2, 3, 32)))
    counts = tmp_path / "counts.txt"
    counts.write_text("Fighting/Fighting001_x264.mp4 117\nFighting/Fighting002_x264.mp4 70\n"
                      "Fighting/Bad003_x264.mp4 80\n")
    labels = tmp_path / "labels.csv"
    labels.write_text("video,label,class\nFighting002_x264,0,Normal\n")
    summary = import_features([inputs], tmp_path / "store", "npy", frame_counts=counts,
                              normalize="l2", labels_csv=labels, clip_len=16)
    assert sorted(summary.imported) == ["Fighting/Fighting001_x264", "Fighting/Fighting002_x264"]
    assert "shape (5, 2, 3, 32)" in summary.failures[0].error
    store = FeatureStore(tmp_path / "store")
    first = store.read("Fighting/Fighting001_x264")
    expected = crops.astype(np.float64).mean(axis=1)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(first.features, expected, atol=1e-6)
    assert first.clip_frames.tolist() == [[i * 16, (i + 1) * 16] for i in range(6)] + [[96, 117]]
    assert (first.label, first.class_name) == (1, "Fighting")
    second = store.read("Fighting/Fighting002_x264")  # 5 clips, 70 frames: last clip partial
    assert second.clip_frames[-1].tolist() == [64, 70] and second.last_clip_partial
    assert np.array_equal(second.features[2], np.zeros(32, dtype=np.float32))  # zero row safe
    assert (second.label, second.class_name) == (0, "Normal")  # labels CSV overrides the rule
    # a frame count that does not fit the clips fails that file only
    counts.write_text("Fighting/Fighting001_x264.mp4 300\n")
    again = import_features([inputs / "Fighting" / "Fighting001_x264.npy"], tmp_path / "s2",
                            "npy", frame_counts=counts)
    assert again.imported == () and "do not match" in again.failures[0].error


def test_identity_mismatch_refused(sultani_store: Path, ucf: Path) -> None:
    from memtsm.extract.store import StoreError

    with pytest.raises(StoreError, match="different configuration"):
        import_features([ucf / "c3d_sultani" / "Explosion008_x264.txt"], sultani_store,
                        "sultani-txt", frame_counts=ucf / "meta" / "Test_Annotation.txt",
                        normalize="l2")


def test_find_feature_files_ids(ucf: Path) -> None:
    found = find_feature_files([ucf / "c3d_vantage"], "csv")
    assert len(found) == 244
    ids = [video_id for video_id, _ in found]
    assert "Explosion/Explosion003_x264" in ids
    assert "Training_Normal_Videos_Anaomaly/Normal_Videos009_x264" in ids
    # the same file reached twice (its folder, then itself) is one video
    twice = find_feature_files([ucf / "c3d_sultani", ucf / "c3d_sultani" / "Explosion008_x264.txt"],
                               "sultani-txt")
    assert twice == find_feature_files([ucf / "c3d_sultani"], "sultani-txt") and len(twice) == 10
    with pytest.raises(FileNotFoundError):
        find_feature_files([ucf / "nothing-here"], "npy")


def test_helpers() -> None:
    assert fixed_width_frames(3, 10, None).tolist() == [[0, 10], [10, 20], [20, 30]]
    assert fixed_width_frames(3, 10, 35).tolist() == [[0, 10], [10, 20], [20, 35]]
    assert fixed_width_frames(3, 10, 25).tolist() == [[0, 10], [10, 20], [20, 25]]
    with pytest.raises(ValueError, match="do not fit"):
        fixed_width_frames(3, 10, 20)
    x = np.array([[3.0, 4.0], [0.0, 0.0]])
    assert l2_normalize(x).tolist() == [[0.6, 0.8], [0.0, 0.0]]


def test_imported_segments_evaluate_against_official_annotation(sultani_store: Path,
                                                                ucf: Path) -> None:
    """Store clip_frames + annotation + metrics: an oracle segment score ranks frames well."""
    meta = ucf / "meta"
    annotations = parse_ucf_crime(meta / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt",
                                  read_frame_counts(meta / "Test_Annotation.txt"))
    per_video = {}
    for record in FeatureStore(sultani_store):
        labels = frame_labels(annotations, record.video_id, record.num_frames)
        oracle = np.array([labels[s:e].mean() for s, e in record.clip_frames])
        scores = spread_over_ranges(oracle, record.clip_frames, record.num_frames)
        per_video[record.video_id] = (scores, labels, annotations.classes.get(
            annotations.find(record.video_id) or "", ""))
    result = frame_level_metrics(per_video, threshold=0.5)
    assert result.n_videos == 10
    assert result.n_frames == sum(r.num_frames for r in FeatureStore(sultani_store))
    assert 0.95 < result.roc_auc < 1.0  # segment granularity blurs interval edges
    assert set(result.per_class_auc) == {"Explosion", "RoadAccidents", "Shooting", "Shoplifting"}
