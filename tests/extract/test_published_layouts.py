"""Feature layouts as the anomaly-detection community publishes them, imported into stores.

Generated files in each layout (small T, the real dimensions): RTFM's ``<Name>_i3d.npy``
``[T, 10, 2048]`` with its ``.list``; UR-DMU / PEL4VAD per-crop ``<Name>__k.npy`` ``[T, 1024]``;
VadCLIP's 512-d CLIP crops with a ``path,label`` CSV; XD-Violence's 5-crop I3D plus VGGish audio
``[T, 128]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from memtsm.extract.external import import_features
from memtsm.extract.feature_files import read_feature_list
from memtsm.extract.identity import FeatureIdentity
from memtsm.extract.sources import resolve_label
from memtsm.extract.store import FeatureStore

T = 3  # snippets per video: small, the dimensions are the real ones


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _mean(crops: np.ndarray) -> np.ndarray:
    """The crop mean as the importer stores it (in float64, then float32)."""
    return crops.astype(np.float64).mean(axis=1).astype(np.float32)


def _rtfm_files(root: Path, names: list[str]) -> dict[str, np.ndarray]:
    root.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for i, name in enumerate(names):
        arrays[name] = _rng(i).standard_normal((T + i, 10, 2048)).astype(np.float32)
        np.save(root / f"{name}_i3d.npy", arrays[name])
    return arrays


def _crop_files(root: Path, names: list[str], crops: int, dim: int) -> dict[str, np.ndarray]:
    root.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for i, name in enumerate(names):
        arrays[name] = _rng(10 + i).standard_normal((T, crops, dim)).astype(np.float32)
        for k in range(crops):
            np.save(root / f"{name}__{k}.npy", arrays[name][:, k])
    return arrays


def test_rtfm_layout_with_its_list(tmp_path: Path) -> None:
    names = ["Abuse028_x264", "Normal_Videos_003_x264", "Arrest001_x264"]
    arrays = _rtfm_files(tmp_path / "feats", names)
    # the list as RTFM publishes it: the authors' Windows paths, no labels, one video left out
    listing = tmp_path / "ucf-i3d-test.list"
    listing.write_text("".join(f"G:\\UCF_Test_ten_crop_i3d\\{n}_i3d.npy\n" for n in names[:2]))
    summary = import_features([tmp_path / "feats"], tmp_path / "store", "rtfm",
                              list_file=listing, feature_name="i3d")
    assert sorted(summary.imported) == sorted(names[:2]) and not summary.failures
    assert summary.unlisted == ("Arrest001_x264",)
    store = FeatureStore(tmp_path / "store")
    record = store.read("Abuse028_x264")
    np.testing.assert_array_equal(record.features, _mean(arrays["Abuse028_x264"]))
    assert record.features.shape == (T, 2048) and record.label == 1
    assert record.clip_frames.tolist() == [[0, 16], [16, 32], [32, 48]]
    assert store.read("Normal_Videos_003_x264").label == 0
    assert store.identity.crops == {"count": 10, "use": "mean"}
    assert store.identity.feature_spec["feature_name"] == "i3d"


def test_every_crop_as_its_own_bag_and_a_named_crop(tmp_path: Path) -> None:
    names = ["Assault006_x264", "Normal_Videos_010_x264"]
    arrays = _crop_files(tmp_path / "feats", names, crops=10, dim=1024)
    each = import_features([tmp_path / "feats"], tmp_path / "each", "crop-files", crops="each",
                           feature_name="i3d")
    assert not each.failures
    store = FeatureStore(tmp_path / "each")
    assert len(store) == 20 and "Assault006_x264__7" in store.video_ids
    np.testing.assert_array_equal(store.read("Assault006_x264__7").features,
                                  arrays["Assault006_x264"][:, 7])
    assert store.read("Normal_Videos_010_x264__3").label == 0
    assert store.identity.crops == {"count": 10, "use": "each"}
    named = import_features([tmp_path / "feats"], tmp_path / "crop0", "crop-files", crops="0",
                            feature_name="i3d")
    assert not named.failures
    crop0 = FeatureStore(tmp_path / "crop0")
    np.testing.assert_array_equal(crop0.read("Assault006_x264").features,
                                  arrays["Assault006_x264"][:, 0])
    # a scorer trained on single crops scores crop means: scoring ignores the crop view
    identity = crop0.identity
    assert identity.diff(store.identity) == {"crops": ({"count": 10, "use": "crop 0"},
                                                      {"count": 10, "use": "each"})}
    assert identity.diff(store.identity, ignore=("dtype", "crops")) == {}
    # rerunning skips what is stored, crop by crop
    again = import_features([tmp_path / "feats"], tmp_path / "each", "crop-files", crops="each",
                            feature_name="i3d")
    assert sorted(again.skipped) == sorted(names) and not again.imported


def test_vadclip_csv_list_gives_labels_and_classes(tmp_path: Path) -> None:
    names = ["Shooting002_x264", "Normal_Videos_015_x264"]
    _crop_files(tmp_path / "feats" / "UCFClipFeatures", names, crops=10, dim=512)
    listing = tmp_path / "ucf_CLIP_rgbtest.csv"
    listing.write_text("path,label\n"
                       "/home/someone/UCFClipFeatures/Shooting002_x264__0.npy,Shooting\n"
                       "/home/someone/UCFClipFeatures/Normal_Videos_015_x264__0.npy,Normal\n")
    summary = import_features([tmp_path / "feats"], tmp_path / "store", "crop-files",
                              list_file=listing, crops="0", feature_name="clip-vit-b16")
    assert not summary.failures and len(summary.imported) == 2
    store = FeatureStore(tmp_path / "store")
    shooting = store.read("UCFClipFeatures/Shooting002_x264")
    assert (shooting.label, shooting.class_name, shooting.label_rule) == (1, "Shooting", "list")
    assert store.read("UCFClipFeatures/Normal_Videos_015_x264").label == 0
    assert store.identity.feature_dim == 512


def test_xd_violence_rgb_with_vggish_audio(tmp_path: Path) -> None:
    names = ["Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6",
             "A.Beautiful.Mind.2001__#00-25-20_00-29-20_label_A"]
    rgb = _crop_files(tmp_path / "rgb", names, crops=5, dim=1024)
    audio_dir = tmp_path / "vggish"
    audio_dir.mkdir()
    audio = {}
    for i, name in enumerate(names):  # the second video's audio has one snippet more
        audio[name] = _rng(20 + i).standard_normal((T + i, 128)).astype(np.float32)
        np.save(audio_dir / f"{name}__vggish.npy", audio[name])
    labels = tmp_path / "labels.csv"  # XD-Violence names normal videos ..._label_A
    labels.write_text(f"{names[0]},1,B2\n{names[1]},0\n")
    summary = import_features([tmp_path / "rgb"], tmp_path / "store", "crop-files",
                              audio_inputs=[audio_dir], labels_csv=labels,
                              feature_name="i3d+vggish")
    assert not summary.failures, summary.failures
    store = FeatureStore(tmp_path / "store")
    record = store.read(names[0])
    assert record.features.shape == (T, 1024 + 128)
    np.testing.assert_array_equal(record.features[:, :1024], _mean(rgb[names[0]]))
    np.testing.assert_array_equal(record.features[:, 1024:], audio[names[0]])
    assert bool(store.read(names[1]).extra.get("audio_trimmed")) is True
    assert "audio_trimmed" not in record.extra
    assert store.identity.feature_spec["audio"] == "vggish"
    # kept apart instead: the audio files alone in their own store, same video ids
    apart = import_features([audio_dir], tmp_path / "audio", "npy", strip_id_suffix="__vggish",
                            feature_name="vggish", labels_csv=labels)
    assert sorted(apart.imported) == sorted(names)
    assert FeatureStore(tmp_path / "audio").identity.feature_dim == 128


def test_bad_layouts_fail_per_video_naming_the_file(tmp_path: Path) -> None:
    feats = tmp_path / "feats"
    _crop_files(feats, ["Arson011_x264", "Arson016_x264"], crops=3, dim=1024)
    (feats / "Arson016_x264__1.npy").unlink()  # a gap in the crops
    np.save(feats / "Arson018_x264__0.npy", np.zeros((T, 1024), np.float32))
    np.save(feats / "Arson018_x264__1.npy", np.zeros((T + 1, 1024), np.float32))
    np.save(feats / "loose.npy", np.zeros((T, 1024), np.float32))
    summary = import_features([feats], tmp_path / "store", "crop-files", feature_name="i3d")
    assert summary.imported == ("Arson011_x264",)
    errors = {f.video_id: f.error for f in summary.failures}
    assert "crop(s) [1] missing" in errors["Arson016_x264"]
    assert "Arson018_x264__1.npy: shape (4, 1024) differs" in errors["Arson018_x264"]
    assert "<video>__<crop>.npy" in errors["loose"]
    with pytest.raises(ValueError, match="--crops"):
        import_features([feats], tmp_path / "x", "npy", crops="each")
    listing = tmp_path / "test.list"
    listing.write_text("/a/Arson011_x264__0.npy\n/a/Missing001_x264__0.npy\n")
    listed = import_features([feats], tmp_path / "listed", "crop-files", list_file=listing)
    assert [f.source for f in listed.failures] == [f"{listing}:2"]
    assert "no feature file for 'Missing001_x264__0.npy'" in listed.failures[0].error


@pytest.mark.parametrize(("text", "message"), [
    ("a.npy\n\nb.npy\n", ":2: blank line amid the list"),
    ("a.npy 2\n", ":1: expected 'path' or 'path 0|1'"),
    ("path,label\nx.npy\n", ":2: expected 'path,label'"),
    ("a.npy\n/x/a.npy\n", ":2: 'a.npy' is listed twice (first on line 1)"),
    ("", ":1: the list names no feature file"),
])
def test_list_parsing_is_strict(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "x.list"
    path.write_text(text)
    with pytest.raises(ValueError, match=r".*".join(map(__import__("re").escape,
                                                       [str(path), message]))):
        read_feature_list(path)


@pytest.mark.parametrize(("name", "expected"), [
    ("Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6", (1, "G")),
    ("v=wVey5JDRf_g__#00-00-00_00-01-20_label_B6-0-0", (1, "B6")),
    ("A.Beautiful.Mind.2001__#00-25-20_00-29-20_label_A", (0, "Normal")),
    ("my_label_B1", (None, "")),  # not an XD-Violence name
    ("01_0014", (1, "")),  # ShanghaiTech: original test videos hold anomalies
    ("12_001", (0, "Normal")),
    ("14_001", (None, "")),  # there is no scene 14
])
def test_xd_violence_and_shanghaitech_names_give_labels(name: str, expected: tuple) -> None:
    label = resolve_label(name)
    assert (label.label, label.class_name) == expected
    rule = "xd-name" if "_label_" in name else "shanghaitech-name"
    assert label.rule == (rule if expected[0] is not None else "none")


def test_old_identities_are_unchanged() -> None:
    """Stores without crops keep their dict form (no ``crops`` key) and compare equal."""
    identity = FeatureIdentity.of_import("c3d", "l2", 16, 4096)
    assert "crops" not in identity.to_dict()
    assert FeatureIdentity.from_dict(identity.to_dict()) == identity
