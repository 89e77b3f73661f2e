"""One persistent DALI pipeline for many videos (CPU VP9 here, NVDEC on a GPU): same frames as
one pipeline per video, network input prepared inside DALI, failures confined to their video."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch
from _videos import moving_frames, write_encoded

pytest.importorskip("nvidia.dali")

from memtsm.extract import ExtractConfig, FeatureSpec, FeatureStore, extract  # noqa: E402
from memtsm.extract.decode import DecodeError, DecoderSession  # noqa: E402
from memtsm.extract.decode.dali import DaliDecoder, DaliStream  # noqa: E402
from memtsm.extract.decode.pyav import PyAVDecoder  # noqa: E402
from memtsm.extract.xfeat import preprocess_frames  # noqa: E402

pytestmark = pytest.mark.dali

CPU = torch.device("cpu")
SPEC = FeatureSpec(long_side=96)


def _vp9(path: Path, frames: int, width: int, height: int, seed: int) -> Path:
    return write_encoded(path, moving_frames(frames, height=height, width=width, seed=seed),
                         "libvpx-vp9", "yuv420p")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("dali_stream")
    return {
        "a": _vp9(folder / "a.webm", 40, 128, 96, seed=1),   # 16 + 16 + 8
        "b": _vp9(folder / "b.webm", 32, 160, 96, seed=2),   # exactly two runs, another size
        "c": _vp9(folder / "c.webm", 21, 128, 96, seed=3),
    }


def _read(decoder, batch_size: int = 8, want=None):
    with decoder:
        batches = list(decoder.batches(batch_size) if want is None
                       else decoder.batches(batch_size, want))
    return (torch.cat([b.frames for b in batches]), torch.cat([b.indices for b in batches]),
            torch.cat([b.timestamps for b in batches]))


def _reference(path: Path):
    """Frames of one pipeline per video, preprocessed by torch: what the stream must match."""
    frames, indices, stamps = _read(DaliDecoder(path, CPU))
    return preprocess_frames(frames, SPEC, CPU), indices, stamps


def test_one_pipeline_streams_many_videos(corpus):
    stream = DaliStream(CPU, network_size=SPEC.network_size)
    with stream:
        for name in ("a", "b", "c", "a"):
            images, indices, stamps = _read(stream.open(corpus[name]))
            ref_images, ref_indices, ref_stamps = _reference(corpus[name])
            width, height = SPEC.network_size(*_size(corpus[name]))
            assert images.dtype == torch.float32 and images.shape[1:] == (1, height, width)
            assert torch.equal(indices, ref_indices) and torch.allclose(stamps, ref_stamps)
            assert 0.0 <= images.min() and images.max() <= 1.0
            # DALI's antialiased resize and BT.601 grey against torch's (F.interpolate, kornia)
            assert (images - ref_images).abs().mean() < 2 / 255
    assert stream.pipelines_built == 1


def _size(path: Path) -> tuple[int, int]:
    with PyAVDecoder(path) as decoder:
        return decoder.info.width, decoder.info.height


def test_frame_filter_and_rgb_stream(corpus):
    stream = DaliStream(CPU)
    want = lambda index: index % 3 == 0  # noqa: E731
    for name in ("c", "a"):
        frames, indices, _ = _read(stream.open(corpus[name]), batch_size=5, want=want)
        ref_frames, ref_indices, _ = _read(DaliDecoder(corpus[name], CPU), batch_size=5,
                                           want=want)
        assert frames.dtype == torch.uint8 and frames.shape[-1] == 3
        assert torch.equal(indices, ref_indices) and torch.equal(frames, ref_frames)
    assert stream.pipelines_built == 1


def test_failed_and_half_read_videos_do_not_leak_into_the_next(corpus, tmp_path):
    source = corpus["a"]
    with av.open(str(source)) as container:  # scramble frames 20-22; the container stays intact
        payloads = [bytes(p) for p in container.demux(video=0) if p.size > 0][20:23]
    data = bytearray(source.read_bytes())
    rng = np.random.default_rng(0)
    for payload in payloads:
        start = data.find(payload)
        data[start + 1:start + len(payload)] = rng.integers(
            0, 256, len(payload) - 1).astype(np.uint8).tobytes()
    broken = tmp_path / "broken.webm"
    broken.write_bytes(bytes(data))
    stream = DaliStream(CPU, network_size=SPEC.network_size)
    first, _, _ = _read(stream.open(corpus["c"]))
    with pytest.raises(DecodeError, match="broken.webm: corrupt stream after frame"):
        _read(stream.open(broken))
    with stream.open(corpus["a"]) as decoder:  # stop after the first batch
        next(iter(decoder.batches(4)))
    again, indices, _ = _read(stream.open(corpus["c"]))
    assert torch.equal(indices, torch.arange(21)) and torch.equal(again, first)
    assert stream.pipelines_built == 3  # a fresh pipeline after the failure and the half read


def test_extract_with_dali_matches_pyav(corpus, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a", "b", "c"):
        (videos / corpus[name].name).write_bytes(corpus[name].read_bytes())
    (videos / "bad.webm").write_bytes(b"not a video at all" * 100)
    stores = {}
    for decoder in ("dali", "pyav"):
        out = tmp_path / decoder
        summary = extract([videos], out, ExtractConfig(spec=SPEC, decoder=decoder,
                                                       device="cpu", engine="torch"))
        assert summary.stored == ["a", "b", "c"]
        assert [failure.video_id for failure in summary.failures] == ["bad"]
        stores[decoder] = FeatureStore(out)
    for video_id in ("a", "b", "c"):
        dali, pyav = stores["dali"].read(video_id), stores["pyav"].read(video_id)
        assert np.array_equal(dali.clip_frames, pyav.clip_frames)
        cosine = (dali.features * pyav.features).sum(1) / (
            np.linalg.norm(dali.features, axis=1) * np.linalg.norm(pyav.features, axis=1))
        assert cosine.min() > 0.99, (video_id, cosine)


def test_session_builds_one_dali_pipeline_for_a_run(corpus):
    with DecoderSession("dali", CPU, network_size=SPEC.network_size) as session:
        for name in ("a", "c", "a"):
            with session.open(corpus[name]) as decoder:
                assert sum(len(batch) for batch in decoder.batches(16)) == \
                    {"a": 40, "c": 21}[name]
        assert session.pipelines_built == 1
    with DecoderSession("pyav", CPU, luma=True) as session:
        with session.open(corpus["a"]) as decoder:
            assert isinstance(decoder, PyAVDecoder) and decoder.channels == 1
        assert session.pipelines_built == 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_nvdec_stream_delivers_network_input_on_the_gpu(ucf_videos):
    """Real H.264 clips through one NVDEC pipeline: CUDA float frames, the PyAV frame count."""
    cuda = torch.device("cuda", 0)
    paths = sorted(ucf_videos.glob("*.mp4"))[:3]
    stream = DaliStream(cuda, network_size=FeatureSpec().network_size)
    for path in paths:
        images, indices, _ = _read(stream.open(path), batch_size=32)
        with PyAVDecoder(path) as reference:
            count = sum(len(batch) for batch in reference.batches(64))
        assert images.is_cuda and images.dtype == torch.float32 and images.shape[1] == 1
        assert torch.equal(indices.cpu(), torch.arange(count))
    assert stream.pipelines_built == 1
