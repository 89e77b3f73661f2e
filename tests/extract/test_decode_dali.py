"""DALI decoder: same frames, indices and timestamps as the PyAV reference; clear errors."""

from __future__ import annotations

import dataclasses
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

pytest.importorskip("nvidia.dali")

from memtsm.extract.decode import DecodeError, open_video  # noqa: E402
from memtsm.extract.decode.dali import DaliDecoder  # noqa: E402
from memtsm.extract.decode.pyav import PyAVDecoder  # noqa: E402

pytestmark = pytest.mark.dali

CPU = torch.device("cpu")
FPS = 25
MAX_MEAN_ABS_DIFF = 2.0  # DALI converts YUV->RGB with exact BT.601; swscale is ~1 level off
SHARED_DATA = Path(
    os.environ.get(
        "MEMTSM_SHARED_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
    )
)
REAL_H264 = SHARED_DATA / "ucf_crime" / "videos" / "Assault018_x264.mp4"
REAL_H264_FRAMES = 361


def _pattern(width: int, height: int, index: int) -> np.ndarray:
    """``uint8 [H, W, 3]``: a smooth gradient with a square that moves every frame."""
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.stack([60 + xx * 100 // width, 50 + yy * 100 // height, np.full_like(xx, 110)], -1)
    side = height // 4
    x0, y0 = (3 * index) % (width - side), (2 * index) % (height - side)
    image[y0 : y0 + side, x0 : x0 + side] = (240, 200, 40)
    return image.astype(np.uint8)


def _write_clip(
    path: Path,
    codec: str,
    width: int,
    height: int,
    num_frames: int,
    pix_fmt: str = "yuv420p",
    frame_ms: list[int] | None = None,
) -> Path:
    """Encode a moving pattern; ``frame_ms`` gives per-frame durations (variable frame rate)."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if frame_ms is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        pts = 0
        for index in range(num_frames):
            frame = av.VideoFrame.from_ndarray(_pattern(width, height, index), format="rgb24")
            if frame_ms is not None:
                frame.pts, frame.time_base = pts, Fraction(1, 1000)
                pts += frame_ms[index]
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("dali_clips")
    return {
        "vp9_64x48": _write_clip(folder / "small.webm", "libvpx-vp9", 64, 48, 43),
        "vp9_160x120": _write_clip(folder / "medium.webm", "libvpx-vp9", 160, 120, 50),
        "mjpeg_64x48": _write_clip(folder / "clip.avi", "mjpeg", 64, 48, 37, "yuvj420p"),
        "vp9_vfr": _write_clip(
            folder / "vfr.webm",
            "libvpx-vp9",
            64,
            48,
            30,
            frame_ms=[100 if i % 3 == 0 else 40 for i in range(30)],
        ),
        "h264": _write_clip(folder / "clip.mp4", "libx264", 64, 48, 20),
    }


def _decode_all(decoder, batch_size: int = 8, want=None) -> tuple[torch.Tensor, ...]:
    """``(frames [N, H, W, 3], indices [N], timestamps [N], batch lengths [B])`` of one pass."""
    with decoder:
        batches = list(
            decoder.batches(batch_size) if want is None else decoder.batches(batch_size, want)
        )
    return (
        torch.cat([b.frames.cpu() for b in batches]),
        torch.cat([b.indices for b in batches]),
        torch.cat([b.timestamps for b in batches]),
        torch.tensor([len(b) for b in batches]),
    )


def _mean_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.float() - b.float()).abs().mean().item()


@pytest.mark.parametrize("name", ["vp9_64x48", "vp9_160x120", "mjpeg_64x48", "vp9_vfr"])
def test_matches_pyav(clips, name):
    path = clips[name]
    decoder = DaliDecoder(path, CPU)
    assert decoder.backend == "dali" and decoder.device == CPU
    assert decoder.info.codec in {"vp9", "mjpeg"}
    frames, indices, stamps, _ = _decode_all(decoder)
    ref_frames, ref_indices, ref_stamps, _ = _decode_all(PyAVDecoder(path))
    assert decoder.frames_decoded == len(ref_indices)
    assert frames.dtype == torch.uint8 and frames.shape == ref_frames.shape
    assert torch.equal(indices, ref_indices)
    assert torch.equal(indices, torch.arange(len(indices)))
    assert stamps.dtype == torch.float64 and torch.allclose(stamps, ref_stamps)
    if name == "vp9_vfr":  # timestamps come from the packets, not from index / fps
        assert len(set(torch.diff(stamps).round(decimals=3).tolist())) == 2
    assert _mean_abs_diff(frames, ref_frames) < MAX_MEAN_ABS_DIFF


@pytest.mark.parametrize("frames_per_sequence", [1, 7, 10, 25, 50, 64])
def test_every_frame_once_in_order(clips, frames_per_sequence):
    """50 frames: sequences that divide it, that don't, one sequence, longer than the video."""
    path = clips["vp9_160x120"]
    frames, indices, _, _ = _decode_all(
        DaliDecoder(path, CPU, frames_per_sequence=frames_per_sequence)
    )
    ref_frames, _, _, _ = _decode_all(PyAVDecoder(path))
    assert torch.equal(indices, torch.arange(50))
    per_frame = (frames.float() - ref_frames.float()).abs().mean(dim=(1, 2, 3))
    assert per_frame.max() < MAX_MEAN_ABS_DIFF  # no frame shifted, duplicated or dropped


def test_want_filter_and_batch_size(clips):
    path = clips["vp9_64x48"]
    every_2nd = lambda index: index % 2 == 0  # noqa: E731
    decoder = DaliDecoder(path, CPU, frames_per_sequence=10)
    frames, indices, _, lengths = _decode_all(decoder, batch_size=5, want=every_2nd)
    ref_frames, ref_indices, _, _ = _decode_all(PyAVDecoder(path), want=every_2nd)
    assert decoder.frames_decoded == 43  # every frame is decoded, only wanted ones come out
    assert torch.equal(indices, ref_indices)
    assert lengths.tolist() == [5, 5, 5, 5, 2]  # 22 wanted frames, the last batch short
    assert _mean_abs_diff(frames, ref_frames) < MAX_MEAN_ABS_DIFF


def test_header_overstating_frame_count_ends_cleanly(clips):
    """When DALI's input runs out before the planned number of runs, decoding just stops."""
    decoder = DaliDecoder(clips["vp9_160x120"], CPU, frames_per_sequence=10)
    decoder._scan = dataclasses.replace(decoder._scan, header_frames=80)
    _, indices, _, _ = _decode_all(decoder)
    assert torch.equal(indices, torch.arange(50))


def test_h264_on_cpu_is_refused_clearly(clips):
    with pytest.raises(DecodeError, match=r"only VP8/VP9/MJPEG; this file is h264") as caught:
        DaliDecoder(clips["h264"], CPU)
    assert caught.value.path == clips["h264"]
    assert str(clips["h264"]) in str(caught.value)


@pytest.mark.skipif(not REAL_H264.is_file(), reason=f"{REAL_H264} not present")
def test_real_h264_on_cpu_is_refused_clearly():
    with pytest.raises(
        DecodeError, match=r"CPU decoder supports only VP8/VP9/MJPEG; this file is h264"
    ):
        DaliDecoder(REAL_H264, CPU)


def test_corrupt_stream_raises_decode_error(clips, tmp_path):
    """Scramble the payloads of frames 20-22 (the container stays intact)."""
    source = clips["vp9_160x120"]
    with av.open(str(source)) as container:
        payloads = [bytes(p) for p in container.demux(video=0) if p.size > 0][20:23]
    data = bytearray(source.read_bytes())
    rng = np.random.default_rng(0)
    for payload in payloads:
        start = data.find(payload)
        assert start > 0
        data[start + 1 : start + len(payload)] = (
            rng.integers(0, 256, len(payload) - 1).astype(np.uint8).tobytes()
        )
    corrupt = tmp_path / "corrupt.webm"
    corrupt.write_bytes(bytes(data))
    with pytest.raises(DecodeError, match="corrupt stream after frame"):
        _decode_all(DaliDecoder(corrupt, CPU))


def test_unreadable_files_raise_decode_error(tmp_path):
    garbage = tmp_path / "garbage.webm"
    garbage.write_bytes(b"not a video" * 10)
    for path in (garbage, tmp_path / "missing.webm"):
        with pytest.raises(DecodeError):
            DaliDecoder(path, CPU)


def test_bad_sequence_length_rejected(clips):
    with pytest.raises(ValueError, match="frames_per_sequence"):
        DaliDecoder(clips["vp9_64x48"], CPU, frames_per_sequence=0)


def test_open_video_selects_dali(clips):
    with open_video(clips["vp9_64x48"], backend="dali", device="cpu") as decoder:
        assert isinstance(decoder, DaliDecoder)
        assert sum(len(b) for b in decoder.batches(16)) == 43


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.skipif(not REAL_H264.is_file(), reason=f"{REAL_H264} not present")
def test_nvdec_decodes_real_h264():
    cuda = torch.device("cuda", 0)
    decoder = DaliDecoder(REAL_H264, cuda)
    assert decoder.device == cuda
    with decoder:
        batches = list(decoder.batches(32))
    assert all(b.frames.is_cuda and b.frames.dtype == torch.uint8 for b in batches)
    frames = torch.cat([b.frames.cpu() for b in batches])
    indices = torch.cat([b.indices for b in batches])
    stamps = torch.cat([b.timestamps for b in batches])
    ref_frames, ref_indices, ref_stamps, _ = _decode_all(PyAVDecoder(REAL_H264), batch_size=32)
    assert decoder.frames_decoded == REAL_H264_FRAMES == len(ref_indices)
    assert torch.equal(indices, ref_indices)
    assert torch.allclose(stamps, ref_stamps)
    assert frames.shape == ref_frames.shape
    assert _mean_abs_diff(frames, ref_frames) < MAX_MEAN_ABS_DIFF
