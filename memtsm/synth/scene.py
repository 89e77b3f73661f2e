"""The scene a fixed camera films: configuration, street background, lighting and sensor noise.

A scene is a static, textured street view (a wall with bricks and windows above a tiled pavement
seen in perspective, street furniture, stains and a building shadow), lit with a slow global
lighting drift and filmed with per-frame sensor noise. Speeds and durations are physical (heights
per second, seconds), so any ``fps`` and frame size work; sizes scale with the frame height
(160x120 and 320x240 are the tested sizes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

EVENT_KINDS: tuple[str, ...] = (
    "running", "fighting", "falling", "thrown_object", "explosion", "scatter",
)
#: Event kind -> UCF-Crime style class (folder and file-name prefix).
KIND_CLASSES = MappingProxyType({
    "running": "Running", "fighting": "Fighting", "falling": "Falling",
    "thrown_object": "ThrownObject", "explosion": "Explosion", "scatter": "Scatter",
})

# Physical constants; lengths are in person heights (1 height ~ 1.7 m).
_WALK_SPEED = (0.65, 1.0)        # heights / s  (1.1-1.7 m/s)
_RUN_FACTOR = (4.0, 6.0)         # x walking speed
_FLEE_FACTOR = (3.5, 5.0)
_SCATTER_FACTOR = (3.5, 5.5)
_GRAVITY = 5.8                   # heights / s^2
_HEIGHT_FRACTION = (0.22, 0.28)  # person height / frame height, at the bottom of the frame
_MIN_EVENT_SECONDS = 0.6


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


def _check_kind(kind: str | None) -> None:
    if kind is not None and kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind!r}; expected one of {EVENT_KINDS} or None")


# --------------------------------------------------------------------------------------------
# Scene geometry


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
# Lighting and sensor noise


def _lighting(config: SynthConfig, rng: np.random.Generator, n: int) -> np.ndarray:
    """``float32 [N, 3]`` per-frame, per-channel gain: slow drift with a slight tint."""
    t = np.arange(n, dtype=np.float64) / config.fps
    amplitude = config.lighting_drift * rng.uniform(0.5, 1.0)
    period = rng.uniform(8.0, 20.0)
    drift = amplitude * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    tint = 1.0 + 0.3 * np.array([1.0, 0.0, -1.0]) * rng.uniform(-1, 1)
    return (1.0 + drift[:, None] * tint[None, :]).astype(np.float32)


@dataclass(frozen=True)
class _SensorNoise:
    """Per-frame sensor noise: a crop of one of a few pre-drawn noise images, at a random offset."""

    bank: np.ndarray      # (6, H + pad, W + pad, 3) float32, already scaled by ``config.noise``
    picks: np.ndarray     # (N,) bank image of each frame
    offsets: np.ndarray   # (N, 2) crop offset (y, x) of each frame

    def add(self, canvas: np.ndarray, t: int) -> None:
        """Add frame ``t``'s noise to ``canvas`` in place."""
        height, width = canvas.shape[:2]
        oy, ox = self.offsets[t]
        canvas += self.bank[self.picks[t], oy:oy + height, ox:ox + width]


def _sensor_noise(config: SynthConfig, rng: np.random.Generator, n: int) -> _SensorNoise:
    """Draw the noise of an ``n``-frame video (all of ``rng``'s draws, in a fixed order)."""
    pad = 8
    bank = rng.standard_normal((6, config.height + pad, config.width + pad, 3),
                               dtype=np.float32) * np.float32(config.noise)
    picks = rng.integers(0, 6, n)
    offsets = rng.integers(0, pad + 1, (n, 2))
    return _SensorNoise(bank, picks, offsets)
