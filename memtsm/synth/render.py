"""Rendering a video frame by frame, and encoding frames to a video file with PyAV.

Everything is deterministic given the seed. The seed is split into independent streams (timing,
background, people, event, noise), so videos of different kinds rendered from the same seed share
their length, planned event window, background, noise and walkers, except that an event with an
actor (running, falling, thrown object) puts the actor in place of the first walker.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from memtsm.constants import NORMAL_CLASS
from memtsm.runtime.files import atomic_path
from memtsm.synth.actors import (
    _SHIRTS,
    _draw_figure,
    _draw_shadow,
    _finalise,
    _Palette,
    _visible,
    _walker,
)
from memtsm.synth.events import (
    _EVENTS,
    _blast_light,
    _blast_smoke,
    _distractors,
    _draw_projectile,
    _Effects,
)
from memtsm.synth.scene import (
    _MIN_EVENT_SECONDS,
    KIND_CLASSES,
    SynthConfig,
    _background,
    _check_kind,
    _lighting,
    _Scene,
    _sensor_noise,
)

#: codec -> (encoder, file suffix, encoder options)
_CODECS = MappingProxyType({
    "h264": ("libx264", ".mp4", {"crf": "20", "preset": "ultrafast"}),
    "vp9": ("libvpx-vp9", ".webm", {"crf": "24", "b": "0", "deadline": "realtime",
                                    "cpu-used": "8"}),
})


@dataclass(frozen=True)
class SynthVideo:
    """One rendered video.

    Attributes:
        frames: ``uint8 [N, H, W, 3]`` RGB.
        event: ``(start, end)`` 0-based half-open frames of the event, ``None`` for normal.
        kind: event kind (one of :data:`EVENT_KINDS`), ``None`` for normal.
        fps: frames per second.
        background: ``uint8 [H, W, 3]`` the static scene (no people, lighting drift or noise).
    """

    frames: np.ndarray
    event: tuple[int, int] | None
    kind: str | None
    fps: int
    background: np.ndarray

    @property
    def num_frames(self) -> int:
        """Number of frames."""
        return int(self.frames.shape[0])

    @property
    def class_name(self) -> str:
        """UCF-Crime style class: ``Running``... or ``Normal``."""
        return NORMAL_CLASS if self.kind is None else KIND_CLASSES[self.kind]

    @property
    def labels(self) -> np.ndarray:
        """``int8 [N]`` per-frame ground truth (1 inside the event)."""
        labels = np.zeros(self.num_frames, dtype=np.int8)
        if self.event is not None:
            labels[self.event[0]:self.event[1]] = 1
        return labels


# --------------------------------------------------------------------------------------------
# Rendering


def _event_window(config: SynthConfig, rng: np.random.Generator, n: int) -> tuple[int, int]:
    """Planned ``[start, end)``: a fraction of the video, not at its very start or end."""
    fraction = rng.uniform(*config.event_fraction)
    duration = max(int(round(fraction * n)), int(_MIN_EVENT_SECONDS * config.fps) + 2, 8)
    duration = min(duration, n - 4)
    first = max(2, int(0.1 * n))
    last = max(first, n - duration - max(1, int(0.05 * n)))
    start = int(rng.integers(first, last + 1))
    return start, min(n, start + duration)


def render_video(config: SynthConfig, kind: str | None = None,
                 seed: int | None = None) -> SynthVideo:
    """Render one video.

    Args:
        config: look of the videos.
        kind: event kind (one of :data:`EVENT_KINDS`), ``None`` for a normal video.
        seed: random seed (default ``config.seed``). The same seed gives the same video; videos
            of different kinds with the same seed share length, scene, walkers and noise.

    Returns:
        The frames with the event's 0-based half-open ``[start, end)`` window.
    """
    _check_kind(kind)
    seed = config.seed if seed is None else int(seed)
    timing, scenery, people, event_rng, noise_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5))
    n = int(timing.integers(config.min_frames, config.max_frames + 1))
    planned = _event_window(config, timing, n)
    horizon = scenery.uniform(0.2, 0.33) * config.height
    scene = _Scene(config.width, config.height, config.fps, n, horizon,
                   horizon + 0.12 * config.height)
    background = _background(scene, scenery)
    ground = background[int(math.ceil(scene.y_min)):].reshape(-1, 3)
    palette = _Palette(list(people.permutation(len(_SHIRTS))),
                       float(ground.mean(axis=0) @ (0.299, 0.587, 0.114)))

    n_walkers = int(people.integers(config.n_people[0], config.n_people[1] + 1))
    figures = [_walker(scene, people, palette) for _ in range(n_walkers)]
    figures += _distractors(scene, people, palette, config.distractor_prob)
    effects = _Effects()
    event = None
    if kind is not None:
        event = _EVENTS[kind](scene, event_rng, palette, figures, effects, *planned)
    for fig in figures:
        _finalise(scene, fig)

    gain = _lighting(config, timing, n)
    noise = _sensor_noise(config, noise_rng, n)
    frames = np.empty((n, config.height, config.width, 3), dtype=np.uint8)
    canvas = np.empty_like(background)
    for t in range(n):
        canvas[:] = background
        shown = [fig for fig in figures if _visible(scene, fig, t)]
        for fig in shown:
            _draw_shadow(canvas, fig, t)
        for fig in sorted(shown, key=lambda f: f.pos[t, 1]):
            _draw_figure(canvas, fig, t)
        for projectile in effects.projectiles:
            _draw_projectile(canvas, projectile, t)
        if effects.blast is not None:
            _blast_smoke(canvas, effects.blast, t, config.fps)
        canvas *= gain[t]
        if effects.blast is not None:
            _blast_light(canvas, effects.blast, t)
        if config.noise > 0:
            noise.add(canvas, t)
        np.clip(canvas + 0.5, 0, 255, out=canvas)
        frames[t] = canvas
    return SynthVideo(frames=frames, event=event, kind=kind, fps=config.fps,
                      background=np.clip(background + 0.5, 0, 255).astype(np.uint8))


# --------------------------------------------------------------------------------------------
# Writing


def write_video(frames: np.ndarray, path: Path | str, fps: int = 25, codec: str = "h264") -> Path:
    """Encode ``frames`` (``uint8 [N, H, W, 3]`` RGB, even H and W) with PyAV.

    ``"h264"``: libx264, yuv420p, CRF 20, preset ultrafast (no B-frames), ``.mp4``.
    ``"vp9"``: libvpx-vp9, yuv420p, CRF 24 constant quality, ``.webm``. The file is written
    under a temporary name and renamed, so a crash never leaves a truncated video.

    Args:
        frames: the frames.
        path: output file; the codec's suffix is added when it has none.
        fps: frame rate.
        codec: ``"h264"`` or ``"vp9"``.

    Returns:
        The written path.
    """
    if codec not in _CODECS:
        raise ValueError(f"unknown codec {codec!r}; expected one of {tuple(_CODECS)}")
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
        raise ValueError(f"frames must be a non-empty uint8 [N, H, W, 3] array, got "
                         f"{frames.dtype} {frames.shape}")
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(f"frame size must be even for yuv420p, got {width}x{height}")
    encoder, suffix, options = _CODECS[codec]
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(suffix)
    with atomic_path(path) as partial:  # keeps the suffix, by which PyAV picks the container
        encode_frames(frames, partial, encoder, "yuv420p", options, fps)
    return path


def encode_frames(frames: np.ndarray, path: Path, encoder: str, pix_fmt: str,
                  options: Mapping[str, str], fps: int,
                  container_options: Mapping[str, str] | None = None) -> Path:
    """Encode ``uint8 [N, H, W, 3]`` RGB frames to ``path`` with an FFmpeg encoder (no checks)."""
    import av

    with av.open(str(path), mode="w", options=dict(container_options or {})) as container:
        stream = container.add_stream(encoder, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = pix_fmt
        stream.options = dict(options)
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
