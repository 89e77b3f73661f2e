"""Writers for small test videos (real encodes with PyAV/FFmpeg) and their expected frames."""

from __future__ import annotations

import math
import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from memtsm.synth import encode_frames

# codec name -> (container suffix, pixel format, encoder options)
CODECS = {
    "h264": (".mp4", "yuv420p", {"crf": "18", "preset": "ultrafast"}),
    "h264-lossless": (".mp4", "rgb24", {"crf": "0", "preset": "ultrafast"}),
    "vp9": (".webm", "yuv420p", {"deadline": "realtime", "cpu-used": "8", "crf": "20",
                                 "b": "0"}),
    "mjpeg": (".avi", "yuvj420p", {"q:v": "3"}),
}
_ENCODER = {"h264": "libx264", "h264-lossless": "libx264rgb", "vp9": "libvpx-vp9",
            "mjpeg": "mjpeg"}


def moving_frames(num_frames: int, width: int = 64, height: int = 48, seed: int = 0,
                  speed: int = 2) -> np.ndarray:
    """``uint8 [N, H, W, 3]``: a textured background with a bright square moving across it."""
    rng = np.random.default_rng(seed)
    background = rng.integers(40, 120, size=(height, width, 3), dtype=np.uint8)
    frames = np.repeat(background[None], num_frames, axis=0)
    side = max(4, min(width, height) // 4)
    for t in range(num_frames):
        x = (t * speed) % max(1, width - side)
        y = (height - side) // 2
        frames[t, y:y + side, x:x + side] = (230, 200, 60)
    return frames


def write_video(path: Path, frames: np.ndarray, fps: int = 25, codec: str = "h264") -> Path:
    """Encode ``frames uint8 [N, H, W, 3]`` (RGB) to ``path`` (suffix added if missing)."""
    suffix, pix_fmt, options = CODECS[codec]
    path = Path(path)
    if path.suffix == "":
        path = path.with_suffix(suffix)
    return encode_frames(frames, path, _ENCODER[codec], pix_fmt, options, fps)


def write_encoded(path: Path, frames: np.ndarray, encoder: str, pix_fmt: str,
                  options: dict | None = None, fps: int = 25,
                  container_options: dict | None = None) -> Path:
    """Encode with any FFmpeg encoder and pixel format (odd formats for the bad-input tests)."""
    return encode_frames(frames, Path(path), encoder, pix_fmt, options or {}, fps,
                         container_options)


def write_vfr(path: Path, frames: np.ndarray, gaps_ms: list[int], encoder: str = "libx264",
              pix_fmt: str = "yuv420p") -> Path:
    """Encode frames at irregular times: frame ``i + 1`` comes ``gaps_ms[i % n]`` ms after ``i``."""
    time_base = Fraction(1, 1000)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(encoder, rate=25)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = pix_fmt
        stream.time_base = stream.codec_context.time_base = time_base
        stream.options = {"bf": "0"} if encoder == "libx264" else {"deadline": "realtime"}
        pts = 0
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts, frame.time_base = pts, time_base
            pts += gaps_ms[index % len(gaps_ms)]
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return Path(path)


def write_audio_only(path: Path, seconds: float = 1.0, rate: int = 16000) -> Path:
    """An AAC file with a sine tone and no video stream."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=rate)
        samples = np.sin(np.arange(int(seconds * rate)) * 2 * np.pi * 440 / rate)
        chunk = 1024
        for start in range(0, samples.size, chunk):
            block = samples[None, start:start + chunk].astype(np.float32)
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return Path(path)


def truncated_copy(source: Path, target: Path, fraction: float = 0.5) -> Path:
    """Copy of ``source`` cut after ``fraction`` of its bytes (an interrupted copy or recording)."""
    data = Path(source).read_bytes()
    Path(target).write_bytes(data[: int(len(data) * fraction)])
    return Path(target)


def with_display_rotation(source: Path, target: Path, clockwise_degrees: int) -> Path:
    """Copy of an MP4 whose track header says: show the frames turned ``clockwise_degrees``.

    Rewrites the 3x3 matrix of the ``tkhd`` box in place, which is how phones store portrait
    video (FFmpeg then reports a display rotation of ``-clockwise_degrees``).
    """
    data = bytearray(Path(source).read_bytes())
    box = data.find(b"tkhd") - 4
    version = data[box + 8]
    offset = box + (48 if version == 0 else 60)
    turn = math.radians(clockwise_degrees)
    cos, sin = round(math.cos(turn)), round(math.sin(turn))

    def fixed(value: float, fraction_bits: int = 16) -> bytes:
        return struct.pack(">i", int(value * (1 << fraction_bits)))

    matrix = (fixed(cos) + fixed(sin) + fixed(0, 30) + fixed(-sin) + fixed(cos) + fixed(0, 30)
              + fixed(0) + fixed(0) + fixed(1, 30))
    data[offset:offset + 36] = matrix
    Path(target).write_bytes(bytes(data))
    return Path(target)
