"""Synthetic surveillance-like videos with labelled anomalous events (demo and tests).

A fixed camera films a textured street scene in which pedestrians walk; an anomalous video holds
one time-bounded event (``running``, ``fighting``, ``falling``, ``thrown_object``, ``explosion``,
``scatter``), ``[start, end)`` in 0-based half-open frames, and normal videos may hold look-alike
distractors. Everything is deterministic given the seed. :func:`make_dataset` writes a UCF-Crime
style tree with the official annotation files.

Modules, each importing only those above it:

* :mod:`~memtsm.synth.scene`: :class:`SynthConfig`, the event kinds, scene geometry, background,
  lighting and sensor noise.
* :mod:`~memtsm.synth.draw`: drawing primitives (capsules, shading, glows).
* :mod:`~memtsm.synth.actors`: people: looks, paths, gait, choreography, figures and shadows.
* :mod:`~memtsm.synth.events`: the events, distractors, projectiles and blasts.
* :mod:`~memtsm.synth.render`: :func:`render_video`, :func:`write_video`, :func:`encode_frames`.
* :mod:`~memtsm.synth.dataset`: :func:`make_dataset` and the annotation files.

Names with a leading underscore are internal to the package.
"""

from __future__ import annotations

from memtsm.constants import NORMAL_CLASS
from memtsm.synth.dataset import (
    TEMPORAL_ANNOTATION_FILE,
    TEST_ANNOTATION_FILE,
    TEST_NORMAL_DIR,
    TRAIN_ANNOTATION_FILE,
    TRAIN_NORMAL_DIR,
    DatasetPaths,
    GeneratedVideo,
    make_dataset,
)
from memtsm.synth.render import SynthVideo, encode_frames, render_video, write_video
from memtsm.synth.scene import EVENT_KINDS, KIND_CLASSES, SynthConfig

__all__ = [
    "EVENT_KINDS",
    "KIND_CLASSES",
    "NORMAL_CLASS",
    "TEMPORAL_ANNOTATION_FILE",
    "TEST_ANNOTATION_FILE",
    "TEST_NORMAL_DIR",
    "TRAIN_ANNOTATION_FILE",
    "TRAIN_NORMAL_DIR",
    "DatasetPaths",
    "GeneratedVideo",
    "SynthConfig",
    "SynthVideo",
    "encode_frames",
    "make_dataset",
    "render_video",
    "write_video",
]
