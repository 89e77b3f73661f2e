"""Fixed-seed renders and data sets match those of the original single-file ``memtsm.synth``.

The digests below were taken from the single-file implementation (``memtsm/synth/__init__.py``
at commit 185f902) before it was split into modules, so these tests prove the split changed no
random stream and no pixel. They cover every event kind, distractors, and what
:func:`make_dataset` hands to the encoder and writes as annotations (the encoded bytes are left
out: they depend on the FFmpeg build, not on this code).

They also pin numpy's random streams and float32 arithmetic: after a numpy upgrade, or on a
machine whose BLAS/SIMD kernels round differently, they may fail with no change to this code.
Then check the change is expected and regenerate: ``python tests/synth/test_fingerprints.py``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

import memtsm.synth.dataset
from memtsm.synth import SynthConfig, make_dataset, render_video

RENDER = SynthConfig(width=96, height=64, min_frames=32, max_frames=40)
CROWDED = SynthConfig(width=96, height=64, min_frames=32, max_frames=40, distractor_prob=1.0)
DATASET = SynthConfig(width=96, height=64, min_frames=32, max_frames=36)

# (config, kind, seed) -> (num_frames, event, sha256 of the uint8 frames)
RENDERS = {
    ("RENDER", None, 0): (
        39, None, "e30dfcecae94eccfcd9a50e1f5ccbf846ee08da5081ccd2361f728fa5377f34f"),
    ("RENDER", "running", 1): (
        32, (11, 28), "adc878721eb8bc3ab3a33446041e0090e6c7fb21fd74ca30acea2644ee90e04b"),
    ("RENDER", "fighting", 2): (
        34, (16, 33), "0cb228ba2054b4a5fc6111fc7ca3ff8f9b01c7b98abcd66ad46d188472674c4c"),
    ("RENDER", "falling", 3): (
        37, (12, 29), "41c685c557681fe3290bf2a8b2668ef6ea2ceedab7c0751dc9ec4aa1636be9c8"),
    ("RENDER", "thrown_object", 4): (
        34, (15, 34), "5063465d7fc838c3d22b274b73cee41c6acf7e43c1151270cf5dc6e7a25efe53"),
    ("RENDER", "explosion", 5): (
        33, (8, 25), "d7a58fe5ba3e5de47c9cfd3e9f1e19225575ac0b6b2045890b0a627b253907a6"),
    ("RENDER", "scatter", 6): (
        33, (13, 30), "1ae0cb93e048db607f877304117f10ff6bb9b5bb9e07a84f445159767a474f21"),
    ("CROWDED", None, 7): (
        34, None, "34ce143cbd103a25dec8bf03eb756b97fdb3d5db9dd72f02cfd155be1ee53370"),
    ("CROWDED", "explosion", 8): (
        39, (13, 30), "18b5da11d23609ccd3639bc97048721d282232d96a37930f58d026105a0d4b20"),
}
# make_dataset(root, 1, 2, 1, 2, config=DATASET, seed=7): per video, in writing order,
# (split/Class/Name, num_frames, event, sha256 of the frames handed to write_video).
DATASET_VIDEOS = [
    ("train/Running/Running001_x264.mp4", 35, (9, 26),
     "85552e3d02fd0226abadf835dc7d0c845b6e83cf5c50cc82ee54dc0dc38c279b"),
    ("train/Fighting/Fighting001_x264.mp4", 32, (3, 20),
     "a3d88ea0bf267c7a8320ee0735594a58e0131c51806e9290ba30ac73ae20dd49"),
    ("train/Training_Normal_Videos/Normal_Videos001_x264.mp4", 36, None,
     "8af11dd989f5c8562ded4e725f8699b61d037d60fa59ecc695da17d2952e39dc"),
    ("test/Running/Running002_x264.mp4", 36, (10, 27),
     "0456848f829f0c4a559cbe89799c6ec245d908bc535218d003a9e7c84f2b12e4"),
    ("test/Fighting/Fighting002_x264.mp4", 32, (9, 26),
     "35cdbbc9d9f878651cc6f51a7011ad2c42ec480418085d579c0ea82f1bfa6664"),
    ("test/Testing_Normal_Videos/Normal_Videos002_x264.mp4", 36, None,
     "c6f79d702ddfaba4ca86fe02a5cd6379018f1ad98b604daa908421bc7ee140ce"),
]
# sha256 of each annotation file's bytes.
DATASET_ANNOTATIONS = {
    "Temporal_Anomaly_Annotation_for_Testing_Videos.txt":
        "547d9d16845f2e5d2317bcf10d34b547774eb02fd3bbbaef35719c8e48078880",
    "Test_Annotation.txt": "4c231fe28b76791e6106118f8be9423d345964759af579455a7057cdc5b0da41",
    "Train_Annotation.txt": "6432a4ac5e03f3afebaa22b4002730938bf01a3a4a609d9dabda44da805a3717",
}


def _sha256(data: np.ndarray | bytes) -> str:
    if isinstance(data, np.ndarray):
        data = np.ascontiguousarray(data).tobytes()
    return hashlib.sha256(data).hexdigest()


def _render(config_name: str, kind: str | None, seed: int) -> tuple:
    video = render_video(globals()[config_name], kind, seed=seed)
    return video.num_frames, video.event, _sha256(video.frames)


def _dataset(root: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[tuple], dict[str, str]]:
    """Write the fingerprinted data set, recording the frames handed to the encoder."""
    handed: dict[Path, str] = {}
    write_video = memtsm.synth.dataset.write_video

    def spy(frames, path, fps=25, codec="h264"):
        handed[Path(path)] = _sha256(frames)
        return write_video(frames, path, fps, codec)

    monkeypatch.setattr(memtsm.synth.dataset, "write_video", spy)
    paths = make_dataset(root, 1, 2, 1, 2, config=DATASET, seed=7)
    videos = [(v.path.relative_to(root).as_posix(), v.num_frames, v.event, handed[v.path])
              for v in paths.videos]
    annotations = {p.name: _sha256(p.read_bytes()) for p in (
        paths.temporal_annotation, paths.test_annotation, paths.train_annotation)}
    return videos, annotations


@pytest.mark.parametrize("case", list(RENDERS), ids=lambda case: f"{case[1]}-{case[2]}")
def test_render_matches_the_single_file_implementation(case):
    assert _render(*case) == RENDERS[case]


def test_make_dataset_matches_the_single_file_implementation(tmp_path, monkeypatch):
    videos, annotations = _dataset(tmp_path / "ds", monkeypatch)
    assert videos == DATASET_VIDEOS
    assert annotations == DATASET_ANNOTATIONS


if __name__ == "__main__":  # print the current fingerprints, to regenerate the constants
    import tempfile

    for case in RENDERS:
        print(case, _render(*case))
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        videos, annotations = _dataset(Path(folder) / "ds", patch)
    for video in videos:
        print(video)
    print(annotations)
