"""Synthetic surveillance-like videos with labelled anomalous events (demo and tests).

A scene is a static, textured street view (a wall with bricks and windows above a tiled pavement
seen in perspective, street furniture, stains and a building shadow) filmed by a fixed camera,
with per-frame sensor noise and a slow global lighting drift. Two to five pedestrians (body,
legs, arms and head drawn as antialiased capsules, distinct clothes) walk steady straight paths
at walking speed with a leg/arm gait, entering and leaving the frame. Normal videos may also hold
distractors that look like the anomalies but are not: a pair that meets and talks, a group
standing together (that may walk off together), a loiterer.

An anomalous video holds one time-bounded event, ``[start, end)`` 0-based half-open frames:

* ``running``: a walker suddenly runs (4-6x walking speed) around the scene, then walks again.
* ``fighting``: two people meet, then shove, lunge and punch with erratic jittery motion, then
  walk apart.
* ``falling``: a walker falls (the figure rotates to horizontal), lies there (struggling now and
  then), and gets up at the end of the event.
* ``thrown_object``: a person stops and throws small objects that fly fast on parabolas and
  shatter where they land.
* ``explosion``: a bright flash expanding from a point, a flickering fireball and debris, then
  dark smoke that spreads, rises and fades out by the end of the event; walkers flee.
* ``scatter``: a group standing together suddenly runs outward in all directions; walkers flee.

Speeds and durations are physical (heights per second, seconds), so any ``fps`` and frame size
work; sizes scale with the frame height (160x120 and 320x240 are the tested sizes).

Everything is deterministic given the seed. The seed is split into independent streams (timing,
background, people, event, noise), so videos of different kinds rendered from the same seed share
their length, planned event window, background, noise and walkers, except that an event with an
actor (running, falling, thrown object) puts the actor in place of the first walker.

:func:`make_dataset` writes a UCF-Crime style tree with the official annotation files.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import av
import numpy as np

EVENT_KINDS: tuple[str, ...] = (
    "running", "fighting", "falling", "thrown_object", "explosion", "scatter",
)
#: Event kind -> UCF-Crime style class (folder and file-name prefix).
KIND_CLASSES = MappingProxyType({
    "running": "Running", "fighting": "Fighting", "falling": "Falling",
    "thrown_object": "ThrownObject", "explosion": "Explosion", "scatter": "Scatter",
})
NORMAL_CLASS = "Normal"
TRAIN_NORMAL_DIR = "Training_Normal_Videos"
TEST_NORMAL_DIR = "Testing_Normal_Videos"
TEMPORAL_ANNOTATION_FILE = "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"
TEST_ANNOTATION_FILE = "Test_Annotation.txt"
TRAIN_ANNOTATION_FILE = "Train_Annotation.txt"

#: codec -> (encoder, file suffix, encoder options)
_CODECS = MappingProxyType({
    "h264": ("libx264", ".mp4", {"crf": "20", "preset": "ultrafast"}),
    "vp9": ("libvpx-vp9", ".webm", {"crf": "24", "b": "0", "deadline": "realtime",
                                    "cpu-used": "8"}),
})

# Physical constants; lengths are in person heights (1 height ~ 1.7 m).
_WALK_SPEED = (0.65, 1.0)        # heights / s  (1.1-1.7 m/s)
_RUN_FACTOR = (4.0, 6.0)         # x walking speed
_FLEE_FACTOR = (3.5, 5.0)
_SCATTER_FACTOR = (3.5, 5.5)
_GRAVITY = 5.8                   # heights / s^2
_HEIGHT_FRACTION = (0.22, 0.28)  # person height / frame height, at the bottom of the frame
_MIN_EVENT_SECONDS = 0.6

_SHIRTS = (
    (200, 40, 40), (40, 70, 190), (40, 150, 60), (230, 200, 40), (240, 240, 235),
    (25, 25, 30), (235, 120, 30), (120, 50, 150), (30, 150, 160), (200, 90, 150),
    (120, 80, 40), (90, 200, 230),
)
_TROUSERS = ((30, 35, 60), (25, 25, 28), (90, 90, 95), (150, 130, 95), (60, 45, 35),
             (200, 200, 195))
_SKINS = ((240, 200, 170), (210, 160, 120), (160, 110, 75), (100, 65, 45))
_OBJECT_COLOURS = ((235, 235, 215), (90, 200, 110), (220, 110, 50), (240, 220, 90))
_HAIRS = ((30, 22, 18), (90, 55, 30), (210, 180, 110), (150, 150, 150), (15, 15, 15))


@dataclass(frozen=True)
class SynthConfig:
    """How synthetic videos look.

    Attributes:
        width: frame width in pixels (even, >= 64).
        height: frame height in pixels (even, >= 48).
        fps: frames per second (speeds are physical, so they scale with it).
        min_frames: shortest video, in frames.
        max_frames: longest video, in frames (lengths are drawn uniformly in between).
        n_people: inclusive range of walkers per video (event actors replace a walker;
            distractors and the scatter group come on top).
        noise: standard deviation of the per-frame sensor noise, in 0-255 grey levels.
        lighting_drift: amplitude of the slow global brightness drift (relative).
        distractor_prob: probability of each distractor (meeting pair, standing group,
            loiterer) in a video.
        event_fraction: range of the planned event length as a fraction of the video.
        event_kinds: kinds :func:`make_dataset` cycles through for anomalous videos.
        seed: default seed.
    """

    width: int = 160
    height: int = 120
    fps: int = 25
    min_frames: int = 96
    max_frames: int = 160
    n_people: tuple[int, int] = (2, 5)
    noise: float = 2.5
    lighting_drift: float = 0.06
    distractor_prob: float = 0.35
    event_fraction: tuple[float, float] = (0.25, 0.5)
    event_kinds: tuple[str, ...] = EVENT_KINDS
    seed: int = 0

    def __post_init__(self) -> None:
        if self.width < 64 or self.height < 48 or self.width % 2 or self.height % 2:
            raise ValueError(f"frame size must be even and at least 64x48, got "
                             f"{self.width}x{self.height}")
        if self.fps < 1:
            raise ValueError(f"fps must be >= 1, got {self.fps}")
        if not 32 <= self.min_frames <= self.max_frames:
            raise ValueError(f"need 32 <= min_frames <= max_frames, got {self.min_frames}, "
                             f"{self.max_frames}")
        low, high = self.n_people
        if not 0 < low <= high:
            raise ValueError(f"n_people must be a range 1 <= low <= high, got {self.n_people}")
        if self.noise < 0 or self.lighting_drift < 0:
            raise ValueError("noise and lighting_drift must be >= 0")
        if not 0 <= self.distractor_prob <= 1:
            raise ValueError(f"distractor_prob must be in [0, 1], got {self.distractor_prob}")
        f_low, f_high = self.event_fraction
        if not 0.1 <= f_low <= f_high <= 0.7:
            raise ValueError(f"event_fraction must be a range within [0.1, 0.7], got "
                             f"{self.event_fraction}")
        if not self.event_kinds:
            raise ValueError("event_kinds must not be empty")
        for kind in self.event_kinds:
            _check_kind(kind)


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


@dataclass(frozen=True)
class VideoRecord:
    """A video written by :func:`make_dataset`.

    Attributes:
        path: the video file.
        split: ``"train"`` or ``"test"``.
        class_name: ``Normal`` or the event class (``Running``...).
        kind: event kind, ``None`` for normal.
        num_frames: frame count.
        event: 0-based half-open ``(start, end)``, ``None`` for normal.
    """

    path: Path
    split: str
    class_name: str
    kind: str | None
    num_frames: int
    event: tuple[int, int] | None

    @property
    def relative_name(self) -> str:
        """``Class/Name.mp4`` (the folder within the split and the file name)."""
        return f"{self.path.parent.name}/{self.path.name}"


@dataclass(frozen=True)
class DatasetPaths:
    """What :func:`make_dataset` wrote.

    Attributes:
        root: the output folder.
        train_dir: ``root/train``.
        test_dir: ``root/test``.
        temporal_annotation: ``Temporal_Anomaly_Annotation_for_Testing_Videos.txt`` (test videos,
            ``Name  Class  s1  e1  s2  e2``, 1-based inclusive frames, ``-1`` for none).
        test_annotation: ``Test_Annotation.txt`` (``Class/Name n_frames Class s1 e1 s2 e2``).
        train_annotation: ``Train_Annotation.txt`` (same format, training videos).
        videos: every video written, train first.
    """

    root: Path
    train_dir: Path
    test_dir: Path
    temporal_annotation: Path
    test_annotation: Path
    train_annotation: Path
    videos: tuple[VideoRecord, ...]

    @property
    def train_videos(self) -> tuple[VideoRecord, ...]:
        """Training videos."""
        return tuple(v for v in self.videos if v.split == "train")

    @property
    def test_videos(self) -> tuple[VideoRecord, ...]:
        """Test videos."""
        return tuple(v for v in self.videos if v.split == "test")


def _check_kind(kind: str | None) -> None:
    if kind is not None and kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind!r}; expected one of {EVENT_KINDS} or None")


# --------------------------------------------------------------------------------------------
# Scene geometry and figures


@dataclass(frozen=True)
class _Scene:
    """Per-video geometry: frame size, walkable band, perspective, timing."""

    width: int
    height: int
    fps: int
    num_frames: int
    horizon: float      # wall / pavement boundary (y)
    y_min: float        # highest feet position on the pavement

    @property
    def band(self) -> float:
        """Height of the walkable band."""
        return self.height - self.y_min

    def depth_scale(self, y: np.ndarray | float) -> np.ndarray | float:
        """Apparent size factor of a person whose feet are at ``y`` (1 at the bottom)."""
        rel = np.clip((np.asarray(y, dtype=np.float64) - self.y_min) / self.band, -0.3, 1.5)
        return 0.7 + 0.3 * rel

    def random_ground(self, rng: np.random.Generator, x: tuple[float, float],
                      y: tuple[float, float]) -> np.ndarray:
        """A feet position with ``x`` in a fraction range of the width, ``y`` of the band."""
        return np.array([rng.uniform(*x) * self.width,
                         self.y_min + rng.uniform(*y) * self.band])


@dataclass
class _Figure:
    """A person: per-frame feet position plus pose controls (internal, mutable while built)."""

    height: float                  # pixels, at the bottom of the frame
    shirt: np.ndarray
    trousers: np.ndarray
    skin: np.ndarray
    hair: np.ndarray
    walk_speed: float              # pixels / frame
    pos: np.ndarray                # (N, 2) feet
    tilt: np.ndarray               # (N,) extra body rotation (rad, + = head towards +x)
    lift: np.ndarray               # (N,) feet raised by this many heights (lying body)
    gait: np.ndarray               # (N,) gait swing multiplier
    arms: np.ndarray               # (N, 2) arm angles override, NaN = driven by the gait
    facing: np.ndarray             # (N,) +1 / -1 forced facing, 0 = from the motion
    phase0: float = 0.0
    # filled by _finalise
    angle: np.ndarray = field(default_factory=lambda: np.zeros(0))
    phase: np.ndarray = field(default_factory=lambda: np.zeros(0))
    swing: np.ndarray = field(default_factory=lambda: np.zeros(0))
    face: np.ndarray = field(default_factory=lambda: np.zeros(0))
    arm_angles: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    size: np.ndarray = field(default_factory=lambda: np.zeros(0))  # apparent height (px)
    colours: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))


def _contrast(colour: Sequence[float], reference: float, rng: np.random.Generator,
              min_gap: float = 45.0) -> np.ndarray:
    """Jitter ``colour`` and push its luminance at least ``min_gap`` away from ``reference``."""
    c = np.clip(np.asarray(colour, dtype=np.float64) + rng.normal(0, 8, 3), 0, 255)
    lum = float(c @ (0.299, 0.587, 0.114))
    gap = lum - reference
    if abs(gap) < min_gap:
        target = reference + (min_gap if (gap >= 0 and reference < 200) or reference < 55
                              else -min_gap)
        c = np.clip(c + (target - lum), 0, 255)
    return c.astype(np.float32)


@dataclass
class _Palette:
    """Colour choices of one video: shirts not handed out yet (distinct), ground luminance."""

    shirts: list[int]
    ground_lum: float


def _new_figure(scene: _Scene, rng: np.random.Generator, palette: _Palette,
                pos: np.ndarray, walk_speed: float | None = None) -> _Figure:
    n = scene.num_frames
    index = palette.shirts.pop(0) if palette.shirts else int(rng.integers(len(_SHIRTS)))
    height = scene.height * rng.uniform(*_HEIGHT_FRACTION)
    if walk_speed is None:
        walk_speed = rng.uniform(*_WALK_SPEED) * height / scene.fps
    return _Figure(
        height=height,
        shirt=_contrast(_SHIRTS[index], palette.ground_lum, rng),
        trousers=_contrast(_TROUSERS[rng.integers(len(_TROUSERS))], palette.ground_lum, rng,
                           30.0),
        skin=_contrast(_SKINS[rng.integers(len(_SKINS))], palette.ground_lum, rng, 20.0),
        hair=np.asarray(_HAIRS[rng.integers(len(_HAIRS))], dtype=np.float32),
        walk_speed=float(walk_speed),
        pos=np.asarray(pos, dtype=np.float64).copy(),
        tilt=np.zeros(n), lift=np.zeros(n), gait=np.ones(n),
        arms=np.full((n, 2), np.nan), facing=np.zeros(n),
        phase0=float(rng.uniform(0, 2 * np.pi)),
    )


def _heading(rng: np.random.Generator, diagonal_prob: float = 0.25) -> np.ndarray:
    """Unit walking direction, mostly along the pavement."""
    angle = rng.uniform(-0.3, 0.3)
    if rng.random() < diagonal_prob:
        angle = rng.choice((-1.0, 1.0)) * rng.uniform(0.4, 1.0)
    sign = rng.choice((-1.0, 1.0))
    return np.array([sign * math.cos(angle), math.sin(angle)])


def _straight_path(scene: _Scene, t_ref: float, at: np.ndarray, velocity: np.ndarray
                   ) -> np.ndarray:
    t = np.arange(scene.num_frames, dtype=np.float64)
    pos = at[None, :] + (t - t_ref)[:, None] * velocity[None, :]
    pos[:, 1] = np.maximum(pos[:, 1], scene.y_min)
    return pos


def _walker(scene: _Scene, rng: np.random.Generator, palette: _Palette,
            t_ref: float | None = None, at: np.ndarray | None = None) -> _Figure:
    """A pedestrian on a straight path, at ``at`` at frame ``t_ref`` (random if not given)."""
    if t_ref is None:
        t_ref = rng.uniform(0, scene.num_frames)
    if at is None:
        at = scene.random_ground(rng, (0.05, 0.95), (0.0, 0.97))
    fig = _new_figure(scene, rng, palette, np.zeros((scene.num_frames, 2)))
    fig.pos = _straight_path(scene, t_ref, at, _heading(rng) * fig.walk_speed)
    return fig


def _visible(scene: _Scene, fig: _Figure, t: int) -> bool:
    x, y = fig.pos[t]
    h = fig.height * float(scene.depth_scale(y))
    return bool(-1.1 * h < x < scene.width + 1.1 * h and y - h < scene.height and y > -0.2 * h)


def _steer(direction: np.ndarray, desired: np.ndarray, max_turn: float) -> np.ndarray:
    a = math.atan2(direction[1], direction[0])
    b = math.atan2(desired[1], desired[0])
    turn = (b - a + math.pi) % (2 * math.pi) - math.pi
    a += max(-max_turn, min(max_turn, turn))
    return np.array([math.cos(a), math.sin(a)])


def _run_from(scene: _Scene, fig: _Figure, start: int, stop: int, direction: np.ndarray,
              speed: float, rng: np.random.Generator, wobble: float = 0.05,
              ramp: int = 3) -> None:
    """Run in ``direction`` from ``start`` until ``stop``, then walk on the same way.

    Positions from ``start + 1`` on are replaced; the heading wobbles a little, and slides
    along the wall when it would lead into it.
    """
    n = scene.num_frames
    fig.facing[start:] = 0.0
    fig.arms[start:] = np.nan
    fig.tilt[start:] = 0.0
    fig.gait[start:] = 1.0
    d = direction / (np.linalg.norm(direction) + 1e-9)
    p = fig.pos[start].copy()
    current = float(np.linalg.norm(fig.pos[min(start + 1, n - 1)] - fig.pos[start]))
    for t in range(start + 1, n):
        if t < stop:
            target = speed
            d = _steer(d, d + rng.normal(0, wobble, 2), wobble * 2)
        else:
            target = fig.walk_speed
        rate = 1.0 / max(1, ramp) if t < stop else 0.15
        current += (target - current) * min(1.0, rate * 1.5)
        p = p + current * d
        if p[1] < scene.y_min:
            p[1] = scene.y_min
            d = np.array([math.copysign(1.0, d[0] if abs(d[0]) > 1e-3 else 1.0), 0.0])
        fig.pos[t] = p


def _flee(scene: _Scene, figures: Sequence[_Figure], centre: np.ndarray, start: int, stop: int,
          rng: np.random.Generator) -> None:
    """Walkers in view at ``start`` run away from ``centre`` after a short reaction delay."""
    for fig in figures:
        if not _visible(scene, fig, start):
            continue
        begin = min(scene.num_frames - 1, start + int(rng.uniform(0.15, 0.6) * scene.fps))
        if begin >= stop - 1:
            continue
        away = fig.pos[begin] - centre
        if np.linalg.norm(away) < 1e-6:
            away = rng.normal(0, 1, 2)
        away[1] *= 1.5  # the ground plane is foreshortened
        speed = fig.walk_speed * rng.uniform(*_FLEE_FACTOR)
        _run_from(scene, fig, begin, stop, away, speed, rng)


def _step_length(speed_hps: np.ndarray) -> np.ndarray:
    """Step length (heights) at a speed in heights per second (walk 0.4, sprint 1.2)."""
    return np.clip(0.4 + 0.2 * (speed_hps - 0.8), 0.4, 1.2)


def _finalise(scene: _Scene, fig: _Figure) -> None:
    """Derive gait phase, swing, lean, facing and arm angles from the path and overrides."""
    pos = fig.pos
    vel = np.gradient(pos, axis=0) if len(pos) > 1 else np.zeros_like(pos)
    speed = np.hypot(vel[:, 0], vel[:, 1])
    h = fig.height * scene.depth_scale(pos[:, 1])
    fig.size = h
    fig.colours = _figure_colours(fig)
    hps = speed / h * scene.fps
    dphase = np.pi * (speed / h) / _step_length(hps)
    fig.phase = fig.phase0 + np.cumsum(dphase)
    fig.swing = (np.clip(hps / 0.5, 0, 1) * (1 + 0.5 * np.clip((hps - 1) / 3, 0, 1))
                 * fig.gait)
    moving = speed > 0.05 * fig.walk_speed
    sign = np.where(vel[:, 0] >= 0, 1.0, -1.0)
    face = np.where(moving & (np.abs(vel[:, 0]) > 0.2 * speed), sign, 0.0)
    # Hold the last facing while standing still (forward fill, then back fill).
    idx = np.where(face != 0, np.arange(len(face)), 0)
    np.maximum.accumulate(idx, out=idx)
    filled = face[idx]
    first = np.flatnonzero(face)
    filled[filled == 0] = face[first[0]] if first.size else 1.0
    fig.face = np.where(fig.facing != 0, fig.facing, filled)
    lean = 0.045 * np.clip(hps, 0, 5) * np.where(speed > 0, vel[:, 0] / np.maximum(speed, 1e-9),
                                                 0.0)
    fig.angle = fig.tilt + lean * np.clip(fig.gait, 0, 1)
    walk_arm = 0.5 * fig.swing * np.sin(fig.phase)
    arms = np.stack([walk_arm, -walk_arm], axis=1)
    fig.arm_angles = np.where(np.isnan(fig.arms), arms, fig.arms)


# --------------------------------------------------------------------------------------------
# Drawing primitives (float32 canvases, 0-255)


def _box(canvas: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[int, int, int, int] | None:
    height, width = canvas.shape[:2]
    x0, y0 = max(int(math.floor(lo[0])), 0), max(int(math.floor(lo[1])), 0)
    x1, y1 = min(int(math.ceil(hi[0])) + 1, width), min(int(math.ceil(hi[1])) + 1, height)
    if x0 >= x1 or y0 >= y1:
        return None
    return x0, y0, x1, y1


def _draw_capsules(canvas: np.ndarray, a: np.ndarray, b: np.ndarray, radius: np.ndarray,
                   colours: np.ndarray, opacity: float = 1.0) -> None:
    """Paint antialiased capsules (segments ``a[k]-b[k]`` of ``radius[k]`` px), in order."""
    reach = float(radius.max()) + 1.5
    box = _box(canvas, np.minimum(a, b).min(axis=0) - reach, np.maximum(a, b).max(axis=0) + reach)
    if box is None:
        return
    x0, y0, x1, y1 = box
    xs = np.arange(x0, x1, dtype=np.float32)[None, None, :]
    ys = np.arange(y0, y1, dtype=np.float32)[None, :, None]
    a32, ba = a.astype(np.float32), (b - a).astype(np.float32)
    pax = xs - a32[:, 0, None, None]
    pay = ys - a32[:, 1, None, None]
    bax, bay = ba[:, 0, None, None], ba[:, 1, None, None]
    denom = np.maximum(bax * bax + bay * bay, 1e-6)
    t = np.clip((pax * bax + pay * bay) / denom, 0.0, 1.0)
    dist = np.sqrt((pax - bax * t) ** 2 + (pay - bay * t) ** 2) - radius.astype(np.float32)[
        :, None, None]
    alpha = np.clip(0.5 - dist, 0.0, 1.0)
    if opacity != 1.0:
        alpha *= np.float32(opacity)
    sub = canvas[y0:y1, x0:x1]
    if len(a) == 1:
        sub += alpha[0][..., None] * (colours[0] - sub)
        return
    # "Over" compositing of all layers at once: layer k shows through the layers above it.
    through = np.cumprod((1.0 - alpha)[::-1], axis=0)[::-1]  # through[k] = prod_{j >= k}
    weights = alpha
    weights[:-1] *= through[1:]
    sub *= through[0][..., None]
    sub += np.tensordot(weights, colours.astype(np.float32), axes=(0, 0))


def _darken_ellipse(canvas: np.ndarray, cx: float, cy: float, rx: float, ry: float,
                    strength: float) -> None:
    box = _box(canvas, np.array([cx - rx - 1, cy - ry - 1]), np.array([cx + rx + 1, cy + ry + 1]))
    if box is None:
        return
    x0, y0, x1, y1 = box
    xs = (np.arange(x0, x1, dtype=np.float32) - cx) / rx
    ys = (np.arange(y0, y1, dtype=np.float32) - cy) / ry
    q = ys[:, None] ** 2 + xs[None, :] ** 2
    shade = np.clip(1.0 - q, 0.0, 1.0) ** 0.6 * np.float32(strength)
    canvas[y0:y1, x0:x1] *= (1.0 - shade)[..., None]


def _add_glow(canvas: np.ndarray, cx: float, cy: float, sigma: float, colour: np.ndarray) -> None:
    reach = 3.0 * sigma
    box = _box(canvas, np.array([cx - reach, cy - reach]), np.array([cx + reach, cy + reach]))
    if box is None or sigma <= 0:
        return
    x0, y0, x1, y1 = box
    gx = np.exp(-0.5 * ((np.arange(x0, x1, dtype=np.float32) - cx) / sigma) ** 2)
    gy = np.exp(-0.5 * ((np.arange(y0, y1, dtype=np.float32) - cy) / sigma) ** 2)
    canvas[y0:y1, x0:x1] += (gy[:, None] * gx[None, :])[..., None] * colour.astype(np.float32)


# Figure parts in body coordinates (u up along the body, v sideways towards the facing side),
# in heights: legs, torso, head. Arms are added from their angles.
_HIP_U, _FOOT_U, _LEG_V, _LEG_R = 0.46, 0.03, 0.055, 0.055
_TORSO = ((0.50, 0.0), (0.74, 0.0), 0.125)
_SHOULDER_U, _SHOULDER_V, _ARM_LEN, _ARM_R = 0.76, 0.10, 0.32, 0.04


_PART_RADII = np.array([_ARM_R, _LEG_R, _LEG_R, _TORSO[2], 0.082, 0.066, _ARM_R])


def _figure_colours(fig: _Figure) -> np.ndarray:
    """Colours of the parts in drawing order (back arm, legs, torso, hair, face, front arm)."""
    return np.stack([fig.shirt * 0.8, fig.trousers * 0.85, fig.trousers, fig.shirt, fig.hair,
                     fig.skin, fig.shirt * 0.9]).astype(np.float32)


def _draw_figure(canvas: np.ndarray, fig: _Figure, t: int) -> None:
    h = float(fig.size[t])
    theta = float(fig.angle[t])
    f = float(fig.face[t])
    swing = float(fig.swing[t]) * math.sin(float(fig.phase[t]))
    arm_a, arm_b = fig.arm_angles[t]
    sv = _SHOULDER_V * 0.4
    ends = np.array([
        [[_SHOULDER_U, -sv], [_HIP_U, -_LEG_V * 0.5], [_HIP_U, _LEG_V * 0.5], _TORSO[0],
         [0.895, -0.012], [0.875, 0.018], [_SHOULDER_U, sv]],
        [[_SHOULDER_U - _ARM_LEN * math.cos(arm_b), -sv + _ARM_LEN * math.sin(arm_b)],
         [_FOOT_U + max(0.0, -swing) * 0.05, -0.2 * swing],
         [_FOOT_U + max(0.0, swing) * 0.05, 0.2 * swing], _TORSO[1],
         [0.905, -0.012], [0.875, 0.018],
         [_SHOULDER_U - _ARM_LEN * math.cos(arm_a), sv + _ARM_LEN * math.sin(arm_a)]],
    ])
    # (u, v) body coordinates -> pixels: u along the body axis, v towards the facing side.
    c, s = math.cos(theta), math.sin(theta)
    rotation = np.array([[s, -c], [f * c, f * s]]) * h
    feet = fig.pos[t] - np.array([0.0, fig.lift[t] * h])
    points = ends @ rotation + feet
    _draw_capsules(canvas, points[0], points[1], np.maximum(_PART_RADII * h, 0.7), fig.colours)


def _draw_shadow(canvas: np.ndarray, fig: _Figure, t: int) -> None:
    x, y = fig.pos[t]
    h = float(fig.size[t])
    lying = abs(math.sin(float(fig.angle[t])))
    cx = x + 0.45 * h * math.sin(float(fig.angle[t]))
    _darken_ellipse(canvas, cx, y, 0.2 * h + 0.35 * h * lying, 0.06 * h + 0.02 * h * lying, 0.35)


# --------------------------------------------------------------------------------------------
# Background


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Smooth random field in about [-1, 1] with features ``cell`` pixels large (bilinear)."""
    gh = int(math.ceil(height / cell)) + 2
    gw = int(math.ceil(width / cell)) + 2
    grid = rng.uniform(-1, 1, (gh, gw)).astype(np.float32)
    ys = np.arange(height, dtype=np.float32) / cell + rng.uniform(0, 1)
    xs = np.arange(width, dtype=np.float32) / cell + rng.uniform(0, 1)
    y0, x0 = ys.astype(np.int64), xs.astype(np.int64)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _line_profile(frac_dist: np.ndarray, period_px: np.ndarray, width_px: float) -> np.ndarray:
    """Antialiased line intensity from the distance to the nearest line (in periods)."""
    return np.clip(width_px * 0.5 + 0.5 - frac_dist * period_px, 0.0, 1.0)


def _background(scene: _Scene, rng: np.random.Generator) -> np.ndarray:
    """Static street scene, float32 [H, W, 3] in 0-255."""
    height, width = scene.height, scene.width
    unit = height / 120.0
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    img = np.empty((height, width, 3), dtype=np.float32)
    horizon = scene.horizon

    # Wall: bricks or panels, one tint.
    wall_grey = rng.uniform(105, 165)
    wall_tint = rng.normal(0, 7, 3) + np.array([6, 0, -6]) * rng.uniform(-1, 1)
    brick_h = rng.uniform(4.0, 6.5) * unit
    brick_w = brick_h * rng.uniform(2.0, 3.2)
    row = np.floor(ys / brick_h)
    shifted = xs + (row % 2) * brick_w * 0.5
    col = np.floor(shifted / brick_w)
    brick_var = rng.normal(0, 9, 64).astype(np.float32)
    brick_tone = brick_var[((row * 7 + col * 13) % 64).astype(np.int64)]
    mortar = np.maximum(
        _line_profile(np.abs(ys / brick_h - np.round(ys / brick_h)), brick_h, 0.8 * unit),
        _line_profile(np.abs(shifted / brick_w - np.round(shifted / brick_w)), brick_w,
                      0.8 * unit))
    wall = wall_grey + brick_tone - 28 * mortar
    img[:] = (wall[..., None] + wall_tint).astype(np.float32)

    # Pavement: perspective tiles below the horizon (vanishing point above the frame).
    ground_grey = rng.uniform(85, 150)
    ground_tint = rng.normal(0, 5, 3)
    vp_x = rng.uniform(0.3, 0.7) * width
    vp_y = horizon - rng.uniform(0.5, 1.2) * height
    depth = np.maximum(ys - vp_y, 1.0)
    deepest = height - vp_y
    rows_k = deepest * deepest / (rng.uniform(10, 15) * unit)
    r = rows_k / depth
    row_px = depth * depth / rows_k
    cols_k = deepest / (rng.uniform(13, 20) * unit)
    c = (xs - vp_x) * cols_k / depth
    col_px = depth / cols_k
    joints = np.maximum(_line_profile(np.abs(r - np.round(r)), row_px, 0.9 * unit),
                        _line_profile(np.abs(c - np.round(c)), col_px, 0.9 * unit))
    tile_var = rng.normal(0, 5, 97).astype(np.float32)
    tone = tile_var[((np.floor(r) * 31 + np.floor(c) * 17) % 97).astype(np.int64)]
    ground = ground_grey + tone - 22 * joints
    below = (ys >= horizon)[..., 0]
    img[below] = (ground[below][..., None] + ground_tint).astype(np.float32)
    # Kerb: a light band with a dark line under it.
    kerb = np.clip(1.0 - np.abs(ys - horizon - 1.5 * unit) / (1.5 * unit), 0, 1)
    kerb_shadow = np.clip(1.0 - np.abs(ys - horizon - 3.5 * unit) / unit, 0, 1)
    img += (35 * kerb - 30 * kerb_shadow)[..., None]

    # Windows and doors on the wall.
    for _ in range(int(rng.integers(1, 4))):
        w = rng.uniform(0.08, 0.18) * width
        h = rng.uniform(0.45, 0.8) * horizon
        x0 = rng.uniform(0, width - w)
        y0 = rng.uniform(0.05 * horizon, max(0.06 * horizon, horizon - h))
        y1 = min(y0 + h, horizon)
        edge = 1.5 * unit
        outer = (xs >= x0) & (xs < x0 + w) & (ys >= y0) & (ys < y1)
        inner = (xs >= x0 + edge) & (xs < x0 + w - edge) & (ys >= y0 + edge) & (ys < y1 - edge)
        img[outer] = rng.uniform(170, 230)
        img[inner] = rng.uniform(30, 70) + rng.normal(0, 6, 3)
        glare = inner & (ys < y0 + 0.35 * h)
        img[glare] += 18.0
    # Street furniture on the pavement: benches / bins / planters and a lamp post.
    for _ in range(int(rng.integers(1, 4))):
        w = rng.uniform(0.06, 0.16) * width
        h = rng.uniform(0.05, 0.12) * height
        x0 = rng.uniform(0, width - w)
        base = horizon + rng.uniform(0.1, 0.35) * (height - horizon)
        body = rng.uniform(40, 200) + rng.normal(0, 10, 3)
        top = (xs >= x0) & (xs < x0 + w) & (ys >= base - h) & (ys < base - h + 1.5 * unit)
        box = (xs >= x0) & (xs < x0 + w) & (ys >= base - h) & (ys < base)
        img[box] = body
        img[top] = np.clip(body + 40, 0, 255)
        shadow = (xs >= x0 + 0.1 * w) & (xs < x0 + 1.1 * w) & (ys >= base) & \
                 (ys < base + 2.5 * unit)
        img[shadow] *= 0.7
    lamp_x = rng.uniform(0.05, 0.95) * width
    lamp_base = horizon + rng.uniform(0.05, 0.2) * (height - horizon)
    post = (np.abs(xs - lamp_x) < 1.0 * unit) & (ys < lamp_base) & (ys > 0.1 * horizon)
    img[post] = rng.uniform(20, 60)
    head = (np.abs(xs - lamp_x - 3 * unit) < 4 * unit) & (np.abs(ys - 0.1 * horizon) < 1.5 * unit)
    img[head] = rng.uniform(180, 230)

    # Stains, a building shadow, grain.
    img *= (1.0 + 0.10 * _smooth_noise(rng, height, width, 14 * unit))[..., None]
    angle = rng.uniform(0, np.pi)
    d = xs * math.cos(angle) + ys * math.sin(angle)
    cut = rng.uniform(np.percentile(d, 30), np.percentile(d, 70))
    img *= (1.0 - 0.22 * np.clip((d - cut) / (2 * unit), 0, 1))[..., None]
    img += (6.0 * _smooth_noise(rng, height, width, 2.5 * unit))[..., None]
    img += rng.normal(0, 4.0, (height, width, 1)).astype(np.float32)
    img += rng.normal(0, 1.5, (height, width, 3)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Effects: projectiles (thrown objects, fragments, debris) and the explosion


@dataclass
class _Projectile:
    """A small object: position per frame (NaN when not shown), a dot or a tumbling stick."""

    pos: np.ndarray       # (N, 2)
    radius: float
    colour: np.ndarray
    length: float = 0.0                     # stick length (bottle, brick), 0 for a dot
    spin: tuple[float, float] = (0.0, 0.0)  # initial angle, angular speed (rad / frame)


def _ballistic(scene: _Scene, start: int, p0: np.ndarray, v0: np.ndarray, gravity: float,
               stop_y: float | None, max_frames: int) -> tuple[np.ndarray, int]:
    """Positions of a thrown body from frame ``start``; returns (positions, last frame + 1)."""
    pos = np.full((scene.num_frames, 2), np.nan)
    p, v = p0.astype(np.float64).copy(), v0.astype(np.float64).copy()
    end = start
    for t in range(start, min(scene.num_frames, start + max_frames)):
        pos[t] = p
        end = t + 1
        p = p + v
        v[1] += gravity
        if stop_y is not None and v[1] > 0 and p[1] >= stop_y:
            break
        if not (-20 < p[0] < scene.width + 20) or p[1] > scene.height + 20:
            break
    return pos, end


def _draw_projectile(canvas: np.ndarray, proj: _Projectile, t: int) -> None:
    p = proj.pos[t]
    if np.isnan(p[0]):
        return
    prev = proj.pos[t - 1] if t > 0 and not np.isnan(proj.pos[t - 1, 0]) else p
    blur = 0.6 * (prev - p)  # motion blur over most of the frame interval
    if proj.length > 0:  # a tumbling stick with a dark outline, blurred along its path
        angle = proj.spin[0] + proj.spin[1] * t
        half = 0.5 * proj.length * np.array([math.cos(angle), math.sin(angle)])
        a = np.stack([p - half + blur, p - half, p - half])
        b = np.stack([p + half + blur, p + half, p + half])
        radius = np.array([0.8, 1.0, 0.0]) * proj.radius + np.array([0.0, 0.9, 0.0])
        radius[2] = 0.75 * proj.radius
        colours = np.stack([proj.colour * 0.6 + 10, np.full(3, 25.0), proj.colour])
        _draw_capsules(canvas, a, b, radius, colours.astype(np.float32))
        return
    _draw_capsules(canvas, (p + blur)[None], p[None], np.array([proj.radius]),
                   proj.colour[None])


@dataclass
class _Blast:
    """Explosion parameters."""

    centre: np.ndarray
    radius: float
    start: int
    end: int
    flash: int
    fire: int
    puffs: np.ndarray     # (P, 4): dx, dy (in smoke radii), size (smoke radii), weight
    texture: np.ndarray   # smooth noise, larger than the frame
    flicker: np.ndarray   # (N,) fire flicker in [0.5, 1.5]
    smoke_colour: np.ndarray


def _blast_smoke(canvas: np.ndarray, blast: _Blast, t: int, fps: int) -> None:
    if not blast.start + 2 <= t < blast.end:
        return
    age = (t - blast.start) / fps
    tau = (t - blast.start) / max(1, blast.end - blast.start)
    opacity = 0.9 * min(1.0, (t - blast.start - 1) / (0.4 * fps)) * (1.0 - tau ** 2.5)
    grow = blast.radius * (0.45 + 0.9 * min(1.0, age / 1.5) + 0.25 * tau)
    centre = blast.centre + np.array([0.0, -0.25 * blast.radius - 0.5 * blast.radius * tau])
    reach = 1.8 * grow
    box = _box(canvas, centre - reach, centre + reach)
    if box is None or opacity <= 0:
        return
    x0, y0, x1, y1 = box
    xs = np.arange(x0, x1, dtype=np.float32)[None, :]
    ys = np.arange(y0, y1, dtype=np.float32)[:, None]
    density = np.zeros((y1 - y0, x1 - x0), dtype=np.float32)
    for dx, dy, size, weight in blast.puffs:
        cx, cy = centre[0] + dx * grow, centre[1] + dy * grow
        sigma = size * grow
        density += weight * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma * sigma))
    th, tw = blast.texture.shape
    oy = int(t * 0.6 * canvas.shape[0] / 120) % (th - canvas.shape[0])
    ox = int(t * 0.25 * canvas.shape[0] / 120) % (tw - canvas.shape[1])
    tex = blast.texture[y0 + oy:y1 + oy, x0 + ox:x1 + ox]
    alpha = np.clip(density * (0.75 + 0.5 * tex), 0.0, 1.0) * np.float32(opacity)
    sub = canvas[y0:y1, x0:x1]
    sub += alpha[..., None] * (blast.smoke_colour - sub)


def _blast_light(canvas: np.ndarray, blast: _Blast, t: int) -> None:
    """Additive light of the flash and the fire (after the lighting gain)."""
    k = t - blast.start
    if k < 0 or t >= blast.end:
        return
    cx, cy = blast.centre
    if k < blast.flash:
        tau = k / blast.flash
        intensity = math.exp(-3.0 * tau)
        sigma = blast.radius * (0.15 + 0.5 * (1 - math.exp(-4.0 * (tau + 0.15))))
        canvas += np.float32(45.0 * intensity) * np.array([1.0, 0.95, 0.85], dtype=np.float32)
        _add_glow(canvas, cx, cy - 0.2 * blast.radius, sigma,
                  np.array([255, 235, 190]) * 1.5 * intensity)
    if 1 <= k < blast.fire:
        tau = k / blast.fire
        level = (1 - tau) * float(blast.flicker[t])
        _add_glow(canvas, cx, cy - 0.12 * blast.radius, 0.3 * blast.radius * (0.7 + 0.3 * level),
                  np.array([255, 130, 30]) * 0.9 * level)


# --------------------------------------------------------------------------------------------
# Events and distractors. An event function adds or replaces figures, may add effects, and
# returns the actual ``(start, end)`` (planned ones may be shortened to what is visible).


@dataclass
class _Effects:
    """Everything a render needs besides the figures."""

    projectiles: list[_Projectile] = field(default_factory=list)
    blast: _Blast | None = None


def _place_actor(scene: _Scene, rng: np.random.Generator, palette: _Palette, start: int,
                 x_range: tuple[float, float] = (0.25, 0.75)) -> _Figure:
    """A walker who is well inside the frame at frame ``start``."""
    at = scene.random_ground(rng, x_range, (0.15, 0.85))
    return _walker(scene, rng, palette, t_ref=start, at=at)


def _event_running(scene: _Scene, rng: np.random.Generator, palette: _Palette,
                   figures: list[_Figure], effects: _Effects, start: int,
                   end: int) -> tuple[int, int]:
    """A walker runs at 4-6x walking speed between random waypoints, then walks on."""
    actor = _place_actor(scene, rng, palette, start)
    figures[0] = actor
    speed = actor.walk_speed * rng.uniform(*_RUN_FACTOR)
    n = scene.num_frames
    d = actor.pos[min(start + 1, n - 1)] - actor.pos[start]
    d = d / (np.linalg.norm(d) + 1e-9)
    p = actor.pos[start].copy()
    current = actor.walk_speed
    target = p + d * 0.3 * scene.width
    target[0] = np.clip(target[0], 0.1 * scene.width, 0.9 * scene.width)
    for t in range(start + 1, n):
        if t < end:
            current += (speed - current) * 0.5
            if np.linalg.norm(target - p) < 3 * speed:
                for _ in range(20):
                    target = scene.random_ground(rng, (0.1, 0.9), (0.1, 0.92))
                    if np.linalg.norm(target - p) > 0.35 * scene.width:
                        break
            d = _steer(d, target - p, 0.22)
        else:
            current += (actor.walk_speed - current) * 0.2
        p = p + current * d
        p[1] = max(p[1], scene.y_min)
        actor.pos[t] = p
    return start, end


def _approach_and_stand(scene: _Scene, fig: _Figure, stand: np.ndarray, arrive: int,
                        leave: int, from_side: float, rng: np.random.Generator) -> None:
    """Walk in from ``from_side`` (-1 left, +1 right) to ``stand``, stand, walk back out."""
    n = scene.num_frames
    t = np.arange(n, dtype=np.float64)
    angle = rng.uniform(-0.35, 0.35)
    come = np.array([-from_side * math.cos(angle), math.sin(angle)]) * fig.walk_speed
    pos = np.repeat(stand[None], n, axis=0)
    before = t < arrive
    pos[before] = stand + (t[before] - arrive)[:, None] * come
    angle = rng.uniform(-0.35, 0.35)
    go = np.array([from_side * math.cos(angle), math.sin(angle)]) * fig.walk_speed
    after = t >= leave
    pos[after] = stand + (t[after] - leave)[:, None] * go
    pos[:, 1] = np.maximum(pos[:, 1], scene.y_min)
    fig.pos = pos
    fig.facing[(t >= arrive) & (t < leave)] = -from_side


def _talk_gestures(fig: _Figure, begin: int, stop: int, rng: np.random.Generator,
                   fps: int) -> None:
    """Slow small arm gestures while standing."""
    begin, stop = max(0, begin), min(stop, len(fig.arms))
    t = np.arange(begin, stop, dtype=np.float64)
    if t.size == 0:
        return
    w = 2 * np.pi / (rng.uniform(1.0, 2.5) * fps)
    fig.arms[begin:stop, 0] = 0.25 + 0.3 * np.maximum(0, np.sin(w * t + rng.uniform(0, 6)))
    fig.arms[begin:stop, 1] = 0.1 + 0.1 * np.sin(0.7 * w * t + rng.uniform(0, 6))


def _pair(scene: _Scene, rng: np.random.Generator, palette: _Palette, arrive: int,
          leave: int) -> tuple[_Figure, _Figure, np.ndarray]:
    """Two people who walk in from both sides, stand face to face and walk apart."""
    meet = scene.random_ground(rng, (0.3, 0.7), (0.25, 0.8))
    first = _new_figure(scene, rng, palette, np.zeros((scene.num_frames, 2)))
    second = _new_figure(scene, rng, palette, np.zeros((scene.num_frames, 2)),
                         walk_speed=first.walk_speed * rng.uniform(0.9, 1.1))
    gap = 0.2 * first.height * float(scene.depth_scale(meet[1]))
    _approach_and_stand(scene, first, meet - np.array([gap, 0.0]), arrive, leave, -1.0, rng)
    _approach_and_stand(scene, second, meet + np.array([gap, 0.0]), arrive, leave, 1.0, rng)
    _talk_gestures(first, arrive, leave, rng, scene.fps)
    _talk_gestures(second, arrive, leave, rng, scene.fps)
    return first, second, meet


def _event_fighting(scene: _Scene, rng: np.random.Generator, palette: _Palette,
                    figures: list[_Figure], effects: _Effects, start: int,
                    end: int) -> tuple[int, int]:
    """Two people meet, then shove, lunge and punch with jittery motion, then walk apart."""
    fps, n = scene.fps, scene.num_frames
    arrive = max(0, start - int(rng.uniform(0.4, 1.2) * fps))
    first, second, meet = _pair(scene, rng, palette, arrive, end)
    h = first.height * float(scene.depth_scale(meet[1]))
    centre = meet.copy()
    axis_angle, lunge, lunger = 0.0, 0, 0
    for t in range(start, end):
        centre = meet + np.clip(centre + rng.normal(0, 0.04 * h, 2) - meet, -0.3 * h, 0.3 * h)
        axis_angle = float(np.clip(axis_angle + rng.normal(0, 0.09), -0.7, 0.7))
        if lunge <= 0 and rng.random() < 0.18:
            lunge, lunger = int(rng.integers(2, 5)), int(rng.integers(2))
        gap = 0.38 * h - (0.14 * h if lunge > 0 else 0.0) + rng.normal(0, 0.03 * h)
        axis = np.array([math.cos(axis_angle), 0.5 * math.sin(axis_angle)])
        for fig, sign, k in ((first, -1.0, 0), (second, 1.0, 1)):
            p = centre + sign * 0.5 * gap * axis + rng.normal(0, 0.035 * h, 2)
            p[1] = max(p[1], scene.y_min)
            fig.pos[t] = p
            attack = lunge > 0 and lunger == k
            fig.tilt[t] = -sign * (0.12 + (0.2 if attack else 0.0)) + rng.normal(0, 0.12)
            fig.facing[t] = -sign
            if t == start or rng.random() < 0.55:
                fig.arms[t] = rng.uniform(0.6, 2.7, 2)
            else:
                fig.arms[t] = fig.arms[t - 1]
        lunge -= 1
    if end < n:  # part ways from where the fight ended
        steps = np.arange(1, n - end + 1, dtype=np.float64)[:, None]
        for fig, side in ((first, -1.0), (second, 1.0)):
            angle = rng.uniform(-0.4, 0.4)
            go = np.array([side * math.cos(angle), math.sin(angle)]) * fig.walk_speed * 1.2
            fig.pos[end:] = fig.pos[end - 1] + steps * go
            fig.pos[end:, 1] = np.maximum(fig.pos[end:, 1], scene.y_min)
            fig.facing[end:] = 0.0
            fig.arms[end:] = np.nan
    figures.extend((first, second))
    return start, end


def _event_falling(scene: _Scene, rng: np.random.Generator, palette: _Palette,
                   figures: list[_Figure], effects: _Effects, start: int,
                   end: int) -> tuple[int, int]:
    """A walker falls to horizontal, lies (struggling now and then), and gets up at the end."""
    fps, n = scene.fps, scene.num_frames
    actor = _place_actor(scene, rng, palette, start)
    figures[0] = actor
    velocity = actor.pos[min(start + 1, n - 1)] - actor.pos[start]
    direction = 1.0 if velocity[0] >= 0 else -1.0
    duration = end - start
    fall = max(4, min(int(rng.uniform(0.35, 0.6) * fps), duration // 4))
    rise = max(4, min(int(rng.uniform(0.8, 1.3) * fps), duration // 4))
    lie_end = end - rise
    lying = direction * (math.pi / 2) * rng.uniform(0.97, 1.03)
    # Failed attempts to get up: the body rises part way and drops back.
    attempt = np.zeros(n)
    t = start + fall + int(rng.uniform(0.4, 0.8) * fps)
    while t + int(0.6 * fps) < lie_end:
        up, down = int(rng.uniform(0.25, 0.4) * fps), max(2, int(0.12 * fps))
        attempt[t:t + up] = np.linspace(0, 1, up + 1)[1:]
        attempt[t + up:t + up + 2] = 1.0
        attempt[t + up + 2:t + up + 2 + down] = np.linspace(1, 0, down + 1)[1:]
        t += up + 2 + down + int(rng.uniform(0.5, 1.2) * fps)
    attempt *= rng.uniform(0.3, 0.5)
    p = actor.pos[start].copy()
    arms = np.array([0.3, 0.2])
    for t in range(start, n):
        if t < start + fall:
            tau = (t - start + 1) / fall
            actor.tilt[t] = lying * tau * tau
            p = p + velocity * (1.0 - tau) * 1.5
            actor.arms[t] = (0.6 + 1.4 * tau, 0.4 + 1.8 * tau)
            actor.gait[t] = 1.0 - tau
            arms = actor.arms[t].copy()
        elif t < lie_end:
            actor.tilt[t] = lying * (1.0 - attempt[t])
            actor.gait[t] = 0.0
            if rng.random() < 0.3:  # struggling now and then
                arms = np.clip(arms + rng.normal(0, 0.7, 2), 0.0, 2.8)
            actor.arms[t] = arms
        elif t < end:
            tau = (t - lie_end + 1) / rise
            actor.tilt[t] = lying * (1 - tau * tau * (3 - 2 * tau))
            actor.gait[t] = 0.0
            actor.arms[t] = arms * (1 - tau)
        else:
            p = p + velocity * 0.7
        actor.lift[t] = 0.08 * abs(math.sin(actor.tilt[t]))
        p[1] = max(p[1], scene.y_min)
        actor.pos[t] = p
        if t < end:
            actor.facing[t] = direction
    return start, end


def _event_thrown_object(scene: _Scene, rng: np.random.Generator, palette: _Palette,
                         figures: list[_Figure], effects: _Effects, start: int,
                         end: int) -> tuple[int, int]:
    """A person stops and throws objects that fly on parabolas and shatter where they land."""
    fps, n = scene.fps, scene.num_frames
    direction = float(rng.choice((-1.0, 1.0)))
    thrower = _place_actor(scene, rng, palette, start,
                           (0.1, 0.35) if direction > 0 else (0.65, 0.9))
    figures[0] = thrower
    stand = thrower.pos[start].copy()
    walk = thrower.pos[min(start + 1, n - 1)] - thrower.pos[start]
    h = thrower.height * float(scene.depth_scale(stand[1]))
    gravity = _GRAVITY * h / fps / fps
    windup = max(3, int(0.25 * fps))
    arms = np.tile(np.array([0.2, 0.1]), (n, 1))
    release = start + windup
    last_seen = start + 1
    throws = 0
    last_release = release
    while release < n - 2:
        hand = stand + h * np.array([0.25 * direction, -0.95])
        v0 = np.array([direction * rng.uniform(4.0, 7.0), -rng.uniform(0.8, 2.2)]) * h / fps
        land = float(np.clip(stand[1] + rng.uniform(-0.25, 0.35) * h, scene.y_min,
                             scene.height - 2))
        pos, stop = _ballistic(scene, release, hand, v0, gravity, land, int(2.5 * fps))
        colour = np.asarray(_OBJECT_COLOURS[rng.integers(len(_OBJECT_COLOURS))], np.float32)
        radius = max(1.2 * scene.height / 120, 0.07 * h)
        spin = (rng.uniform(0, 2 * np.pi), direction * rng.uniform(12, 20) / fps)
        thrown = [_Projectile(pos, radius, colour, 0.3 * h, spin)]
        seen = stop
        impact = pos[stop - 1]
        if stop < n and 0 <= impact[0] < scene.width:
            for _ in range(int(rng.integers(5, 8))):
                angle = rng.uniform(-math.pi, 0)
                v = rng.uniform(1.0, 3.0) * h / fps * np.array([math.cos(angle), math.sin(angle)])
                frag, frag_stop = _ballistic(scene, stop, impact, v, gravity, None,
                                             int(0.35 * fps))
                thrown.append(_Projectile(frag, max(1.0, 0.6 * radius), colour))
                seen = max(seen, frag_stop)
        if throws >= 1 and seen > end + int(0.2 * fps):
            break  # keep the event close to its planned length
        effects.projectiles.extend(thrown)
        last_seen = max(last_seen, seen)
        for k in range(windup):  # arm back and up, whipped forward at the release
            arms[release - windup + k, 0] = 0.2 - 2.6 * (k + 1) / windup
        for k in range(0, 5):
            if release + k < n:
                arms[release + k, 0] = 1.7 - 0.35 * k
        throws += 1
        last_release = release
        release += max(windup + 2, int(rng.uniform(0.3, 0.5) * fps))
    stop = min(n, max(last_seen, last_release + 5))
    # The thrower stands from `start` until the event ends, then walks on.
    thrower.pos[start:stop] = stand
    if stop < n:
        thrower.pos[stop:] = stand + np.arange(1, n - stop + 1)[:, None] * walk
        thrower.pos[stop:, 1] = np.maximum(thrower.pos[stop:, 1], scene.y_min)
    thrower.arms[start:stop] = arms[start:stop]
    thrower.facing[start:stop] = direction
    return start, max(stop, start + 2)


def _event_explosion(scene: _Scene, rng: np.random.Generator, palette: _Palette,
                     figures: list[_Figure], effects: _Effects, start: int,
                     end: int) -> tuple[int, int]:
    """Flash, fireball and debris, then smoke that spreads, rises and fades; walkers flee."""
    fps, n = scene.fps, scene.num_frames
    unit = scene.height / 120.0
    centre = scene.random_ground(rng, (0.2, 0.8), (0.2, 0.8))
    radius = rng.uniform(0.3, 0.45) * scene.height
    puffs = np.column_stack([rng.normal(0, 0.35, 7), rng.normal(-0.2, 0.3, 7),
                             rng.uniform(0.3, 0.55, 7), rng.uniform(0.6, 1.0, 7)])
    grey = rng.uniform(35, 70)
    effects.blast = _Blast(
        centre=centre, radius=radius, start=start, end=end, flash=max(3, int(0.3 * fps)),
        fire=max(4, int(rng.uniform(0.3, 0.5) * (end - start))), puffs=puffs,
        texture=_smooth_noise(rng, 2 * scene.height, scene.width + scene.height, 7 * unit),
        flicker=np.clip(1.0 + rng.normal(0, 0.3, n), 0.4, 1.6),
        smoke_colour=np.array([grey, grey * 0.97, grey * 0.93], dtype=np.float32))
    h = scene.height * float(np.mean(_HEIGHT_FRACTION))
    gravity = _GRAVITY * h / fps / fps
    for _ in range(int(rng.integers(10, 16))):
        angle = rng.uniform(-math.pi * 0.95, -math.pi * 0.05)
        v = rng.uniform(2.0, 6.0) * h / fps * np.array([math.cos(angle), math.sin(angle)])
        pos, _ = _ballistic(scene, start + 1, centre - np.array([0, 0.15 * h]), v, gravity,
                            centre[1] + 0.3 * h, int(0.8 * fps))
        effects.projectiles.append(_Projectile(pos, max(0.8, 0.8 * unit),
                                               np.array([30, 25, 20], dtype=np.float32)))
    _flee(scene, figures, centre, start, end, rng)
    return start, end


def _standing_group(scene: _Scene, rng: np.random.Generator, palette: _Palette,
                    size: int) -> tuple[list[_Figure], np.ndarray]:
    """``size`` people standing in a loose circle all video long, idly gesturing."""
    centre = scene.random_ground(rng, (0.3, 0.7), (0.3, 0.75))
    n = scene.num_frames
    members = []
    spin = rng.uniform(0, 2 * np.pi)
    for k in range(size):
        fig = _new_figure(scene, rng, palette, np.zeros((n, 2)))
        h = fig.height * float(scene.depth_scale(centre[1]))
        angle = spin + 2 * np.pi * k / size + rng.normal(0, 0.2)
        offset = np.array([math.cos(angle), 0.45 * math.sin(angle)]) * h * rng.uniform(0.3, 0.45)
        spot = centre + offset
        spot[1] = max(spot[1], scene.y_min)
        fig.pos = np.repeat(spot[None], n, axis=0)
        period = rng.uniform(2, 4) * scene.fps
        fig.pos[:, 0] += 0.012 * h * np.sin(np.arange(n) * 2 * np.pi / period + rng.uniform(0, 6))
        fig.facing[:] = 1.0 if offset[0] < 0 else -1.0
        _talk_gestures(fig, 0, n, rng, scene.fps)
        members.append(fig)
    return members, centre


def _event_scatter(scene: _Scene, rng: np.random.Generator, palette: _Palette,
                   figures: list[_Figure], effects: _Effects, start: int,
                   end: int) -> tuple[int, int]:
    """A standing group suddenly runs outward in all directions; walkers flee too."""
    n = scene.num_frames
    others = list(figures)
    members, centre = _standing_group(scene, rng, palette, int(rng.integers(3, 6)))
    for fig in members:
        begin = min(n - 1, start + int(rng.integers(0, 3)))
        away = fig.pos[begin] - centre
        angle = math.atan2(away[1] / 0.45, away[0]) + rng.normal(0, 0.25)
        speed = fig.walk_speed * rng.uniform(*_SCATTER_FACTOR)
        _run_from(scene, fig, begin, end, np.array([math.cos(angle), math.sin(angle)]), speed,
                  rng, wobble=0.04, ramp=2)
    figures.extend(members)
    # The event lasts until the group is out of sight (or the planned end).
    stop = end
    for t in range(start + int(_MIN_EVENT_SECONDS * scene.fps), end):
        if not any(_visible(scene, fig, t) for fig in members):
            stop = t
            break
    _flee(scene, others, centre, start, stop, rng)
    return start, stop


_EVENTS = MappingProxyType({
    "running": _event_running, "fighting": _event_fighting, "falling": _event_falling,
    "thrown_object": _event_thrown_object, "explosion": _event_explosion,
    "scatter": _event_scatter,
})


def _distractors(scene: _Scene, rng: np.random.Generator, palette: _Palette,
                 probability: float) -> list[_Figure]:
    """Normal look-alikes: a meeting pair, a standing group, a loiterer (each ``probability``)."""
    n, fps = scene.num_frames, scene.fps
    figures: list[_Figure] = []
    draws = rng.random(3)
    if draws[0] < probability:
        arrive = int(rng.uniform(0.0, 0.5) * n)
        first, second, _ = _pair(scene, rng, palette, arrive,
                                 arrive + int(rng.uniform(0.3, 0.6) * n))
        figures += [first, second]
    if draws[1] < probability:
        group, _ = _standing_group(scene, rng, palette, int(rng.integers(3, 5)))
        if rng.random() < 0.5:  # the group walks off together, at walking pace
            leave = int(rng.uniform(0.3, 0.8) * n)
            go = _heading(rng, 0.0) * min(f.walk_speed for f in group)
            for fig in group:
                fig.pos[leave:] = fig.pos[leave] + np.arange(n - leave)[:, None] * go
                fig.pos[leave:, 1] = np.maximum(fig.pos[leave:, 1], scene.y_min)
                fig.facing[leave:] = 0.0
                fig.arms[leave:] = np.nan
        figures += group
    if draws[2] < probability:
        fig = _new_figure(scene, rng, palette, np.zeros((n, 2)))
        spot = scene.random_ground(rng, (0.1, 0.9), (0.1, 0.9))
        pace = 0.25 * fig.height / fps * np.sin(np.arange(n) * 2 * np.pi / (6.0 * fps)
                                               + rng.uniform(0, 6))
        fig.pos = np.repeat(spot[None], n, axis=0)
        fig.pos[:, 0] += np.cumsum(pace) * 0.3
        _talk_gestures(fig, 0, n, rng, fps)
        figures.append(fig)
    return figures


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


def _lighting(config: SynthConfig, rng: np.random.Generator, n: int) -> np.ndarray:
    """``float32 [N, 3]`` per-frame, per-channel gain: slow drift with a slight tint."""
    t = np.arange(n, dtype=np.float64) / config.fps
    amplitude = config.lighting_drift * rng.uniform(0.5, 1.0)
    period = rng.uniform(8.0, 20.0)
    drift = amplitude * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    tint = 1.0 + 0.3 * np.array([1.0, 0.0, -1.0]) * rng.uniform(-1, 1)
    return (1.0 + drift[:, None] * tint[None, :]).astype(np.float32)


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
    pad = 8
    bank = noise_rng.standard_normal((6, config.height + pad, config.width + pad, 3),
                                     dtype=np.float32) * np.float32(config.noise)
    picks = noise_rng.integers(0, 6, n)
    offsets = noise_rng.integers(0, pad + 1, (n, 2))
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
            oy, ox = offsets[t]
            canvas += bank[picks[t], oy:oy + config.height, ox:ox + config.width]
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
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        encode_frames(frames, partial, encoder, "yuv420p", options, fps)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def encode_frames(frames: np.ndarray, path: Path, encoder: str, pix_fmt: str,
                  options: Mapping[str, str], fps: int,
                  container_options: Mapping[str, str] | None = None) -> Path:
    """Encode ``uint8 [N, H, W, 3]`` RGB frames to ``path`` with an FFmpeg encoder (no checks)."""
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


def _video_seed(seed: int, split: int, anomalous: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, split, anomalous, index]).generate_state(1)[0])


def _interval_fields(event: tuple[int, int] | None) -> str:
    """``s1 e1 s2 e2`` in the UCF-Crime convention (1-based inclusive), ``-1`` for none."""
    if event is None:
        return "-1 -1 -1 -1"
    return f"{event[0] + 1} {event[1]} -1 -1"


def make_dataset(out_dir: Path | str, n_train_normal: int = 8, n_train_anomalous: int = 12,
                 n_test_normal: int = 6, n_test_anomalous: int = 6,
                 config: SynthConfig | None = None, seed: int | None = None,
                 codec: str = "h264", overwrite: bool = False) -> DatasetPaths:
    """Render and write a UCF-Crime style dataset.

    Layout (``NNN`` numbers are unique per class across both splits)::

        out_dir/train/<Class>/<Class>NNN_x264.mp4                  anomalous, Class = Running...
        out_dir/train/Training_Normal_Videos/Normal_VideosNNN_x264.mp4
        out_dir/test/<Class>/<Class>NNN_x264.mp4
        out_dir/test/Testing_Normal_Videos/Normal_VideosNNN_x264.mp4
        out_dir/Temporal_Anomaly_Annotation_for_Testing_Videos.txt   Name  Class  s1  e1  s2  e2
        out_dir/Test_Annotation.txt    Class/Name n_frames Class s1 e1 s2 e2  (test videos)
        out_dir/Train_Annotation.txt   the same for the training videos

    Frame numbers in the annotation files follow UCF-Crime: frame ``k`` is the ``k``-th frame
    counting from 1 and ``s..e`` is inclusive, so an event ``[start, end)`` is written
    ``start + 1  end``; ``-1`` marks no interval. Anomalous videos cycle through
    ``config.event_kinds`` (separately in each split), so every kind appears once a split has
    as many anomalous videos as kinds.

    Args:
        out_dir: output folder.
        n_train_normal: normal training videos.
        n_train_anomalous: anomalous training videos.
        n_test_normal: normal test videos.
        n_test_anomalous: anomalous test videos.
        config: look of the videos (default :class:`SynthConfig`).
        seed: dataset seed (default ``config.seed``); each video's seed derives from it and the
            video's split, label and index.
        codec: ``"h264"`` (``.mp4``) or ``"vp9"`` (``.webm``).
        overwrite: replace ``train/``, ``test/`` and the annotation files if they exist.

    Returns:
        The paths written and the videos' frame counts and events.

    Raises:
        FileExistsError: ``out_dir`` already holds a dataset and ``overwrite`` is false.
    """
    import shutil

    config = SynthConfig() if config is None else config
    seed = config.seed if seed is None else int(seed)
    counts = (n_train_normal, n_train_anomalous, n_test_normal, n_test_anomalous)
    if min(counts) < 0:
        raise ValueError(f"video counts must be >= 0, got {counts}")
    if codec not in _CODECS:
        raise ValueError(f"unknown codec {codec!r}; expected one of {tuple(_CODECS)}")
    root = Path(out_dir)
    train_dir, test_dir = root / "train", root / "test"
    annotation_files = (root / TEMPORAL_ANNOTATION_FILE, root / TEST_ANNOTATION_FILE,
                        root / TRAIN_ANNOTATION_FILE)
    existing = [p for p in (train_dir, test_dir, *annotation_files) if p.exists()]
    if existing:
        if not overwrite:
            raise FileExistsError(f"{root} already holds a dataset ({existing[0].name}); pass "
                                  "overwrite=True to replace it")
        for p in existing:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    suffix = _CODECS[codec][1]
    numbers: dict[str, int] = {}
    records: list[VideoRecord] = []
    plan = (("train", 0, train_dir, TRAIN_NORMAL_DIR, n_train_normal, n_train_anomalous),
            ("test", 1, test_dir, TEST_NORMAL_DIR, n_test_normal, n_test_anomalous))
    for split, split_code, split_dir, normal_dir, n_normal, n_anomalous in plan:
        jobs: list[tuple[str | None, int, int]] = [
            (config.event_kinds[i % len(config.event_kinds)], 1, i) for i in range(n_anomalous)]
        jobs += [(None, 0, i) for i in range(n_normal)]
        for kind, anomalous, index in jobs:
            video = render_video(config, kind, _video_seed(seed, split_code, anomalous, index))
            class_name = video.class_name
            prefix = "Normal_Videos" if kind is None else class_name
            numbers[prefix] = numbers.get(prefix, 0) + 1
            folder = normal_dir if kind is None else class_name
            path = split_dir / folder / f"{prefix}{numbers[prefix]:03d}_x264{suffix}"
            write_video(video.frames, path, config.fps, codec)
            records.append(VideoRecord(path, split, class_name, kind, video.num_frames,
                                       video.event))
    tests = [r for r in records if r.split == "test"]
    temporal = [f"{r.path.name}  {r.class_name}  " + "  ".join(_interval_fields(r.event).split())
                for r in tests]
    root.mkdir(parents=True, exist_ok=True)
    _write_lines(annotation_files[0], temporal)
    for path, split in ((annotation_files[1], "test"), (annotation_files[2], "train")):
        _write_lines(path, [f"{r.relative_name} {r.num_frames} {r.class_name} "
                            f"{_interval_fields(r.event)}" for r in records if r.split == split])
    return DatasetPaths(root=root, train_dir=train_dir, test_dir=test_dir,
                        temporal_annotation=annotation_files[0],
                        test_annotation=annotation_files[1],
                        train_annotation=annotation_files[2], videos=tuple(records))


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    partial.replace(path)
