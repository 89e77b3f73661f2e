"""The people: looks, paths, gait and choreography, and how figures and shadows are drawn.

Pedestrians (body, legs, arms and head drawn as antialiased capsules, distinct clothes) walk
steady straight paths at walking speed with a leg/arm gait, entering and leaving the frame. Events
and distractors build on the behaviours here: running off (and fleeing), walking up to a spot and
standing there talking, standing in a group. A figure's per-frame feet position and pose controls
are set first; :func:`_finalise` then derives the gait, lean, facing and arm angles drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from memtsm.synth.draw import _darken_ellipse, _draw_capsules
from memtsm.synth.scene import _FLEE_FACTOR, _HEIGHT_FRACTION, _WALK_SPEED, _Scene

_SHIRTS = (
    (200, 40, 40), (40, 70, 190), (40, 150, 60), (230, 200, 40), (240, 240, 235),
    (25, 25, 30), (235, 120, 30), (120, 50, 150), (30, 150, 160), (200, 90, 150),
    (120, 80, 40), (90, 200, 230),
)
_TROUSERS = ((30, 35, 60), (25, 25, 28), (90, 90, 95), (150, 130, 95), (60, 45, 35),
             (200, 200, 195))
_SKINS = ((240, 200, 170), (210, 160, 120), (160, 110, 75), (100, 65, 45))
_HAIRS = ((30, 22, 18), (90, 55, 30), (210, 180, 110), (150, 150, 150), (15, 15, 15))


# --------------------------------------------------------------------------------------------
# Figures, paths and gait


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
# Drawing a figure and its shadow

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
# Choreography: walking up to a spot and standing, talking, standing in a group


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
