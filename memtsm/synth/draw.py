"""Drawing primitives on float32 ``[H, W, 3]`` canvases in 0-255: capsules, shading, glows."""

from __future__ import annotations

import math

import numpy as np


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
