"""The anomalous events, the normal look-alikes (distractors), and the effects they add.

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

Normal videos may hold distractors that look like the anomalies but are not: a pair that meets
and talks, a group standing together (that may walk off together), a loiterer.

An event function adds or replaces figures, may add effects (projectiles, a blast), and returns
the actual ``(start, end)`` (planned ones may be shortened to what is visible).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from memtsm.synth.actors import (
    _Figure,
    _flee,
    _heading,
    _new_figure,
    _pair,
    _Palette,
    _run_from,
    _standing_group,
    _steer,
    _talk_gestures,
    _visible,
    _walker,
)
from memtsm.synth.draw import _add_glow, _box, _draw_capsules
from memtsm.synth.scene import (
    _GRAVITY,
    _HEIGHT_FRACTION,
    _MIN_EVENT_SECONDS,
    _RUN_FACTOR,
    _SCATTER_FACTOR,
    _Scene,
    _smooth_noise,
)

_OBJECT_COLOURS = ((235, 235, 215), (90, 200, 110), (220, 110, 50), (240, 220, 90))


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
# Events, their registry, and the distractors


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
