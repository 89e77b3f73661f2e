"""Writers for small test videos (real encodes with PyAV/FFmpeg) and their expected frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from memtsm.pipeline.synth import encode_frames

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
