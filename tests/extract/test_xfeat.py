"""XFeat descriptor, pooling layouts and clip pooling."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from memtsm.extract.config import FeatureSpec
from memtsm.extract.layouts import LAYOUTS, get_layout
from memtsm.extract.xfeat import ClipPooler, XFeatDescriptor, load_xfeat, unit_descriptors

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "xfeat_ref.json"


def pattern_frames(num_frames: int = 3, height: int = 96, width: int = 128) -> torch.Tensor:
    """Deterministic RGB frames (no RNG): moving sinusoidal gratings, ``uint8 [N, H, W, 3]``."""
    y, x = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    frames = []
    for t in range(num_frames):
        grey = 127.5 + 100 * torch.sin((x + 3 * t) / 7.0) * torch.cos((y - 2 * t) / 11.0)
        frames.append(torch.stack([grey, grey * 0.8, 255 - grey], dim=-1))
    return frames_to_uint8(torch.stack(frames))


def frames_to_uint8(frames: torch.Tensor) -> torch.Tensor:
    return frames.round().clamp(0, 255).to(torch.uint8)


@pytest.fixture(scope="module")
def net(xfeat_weights):
    return load_xfeat(xfeat_weights)


def test_reference_vectors(net):
    """Pinned output of the default descriptor on :func:`pattern_frames`.

    ``tests/data/xfeat_ref.json`` was produced by memtsm 0.1.0 (kornia 0.9.0, torch 2.13 CPU,
    official xfeat.pt) with ``XFeatDescriptor(..., FeatureSpec(long_side=128))``; it guards against
    an upstream change silently moving our features.
    """
    reference = json.loads(REFERENCE.read_text())
    descriptor = XFeatDescriptor(net, FeatureSpec(long_side=128), torch.device("cpu"))
    vectors = descriptor.describe(pattern_frames())
    assert vectors.shape == (3, 128)
    # Float32 convolutions differ slightly between runs/environments (oneDNN picks kernels by
    # CPU and memory layout): up to 1.2e-4 seen between two CI runs. A change of the network or
    # the pooling moves these values by far more than 1e-3.
    np.testing.assert_allclose(vectors.numpy(), np.array(reference["max128"]), atol=1e-3)


def test_channels_last_matches_plain_float32(net, xfeat_weights):
    images = torch.rand(4, 1, 96, 128, generator=torch.Generator().manual_seed(0))
    plain = load_xfeat(xfeat_weights).to(memory_format=torch.contiguous_format)
    with torch.inference_mode():
        fast = net(images.contiguous(memory_format=torch.channels_last))[0]
        slow = plain(images.contiguous())[0]
    torch.testing.assert_close(fast, slow, atol=1e-4, rtol=1e-4)


def test_first_frame_has_zero_change_and_state_carries_across_batches(net):
    spec = FeatureSpec(long_side=128)
    descriptor = XFeatDescriptor(net, spec, torch.device("cpu"))
    frames = pattern_frames(4)
    whole = descriptor.describe(frames)
    assert torch.all(whole[0, 64:] == 0) and torch.all(whole[1:, 64:] > 0)
    descriptor.reset()
    split = torch.cat([descriptor.describe(frames[:1]), descriptor.describe(frames[1:])])
    torch.testing.assert_close(split, whole, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_unit_descriptors_equal_f_normalize_and_leave_the_input_alone(memory_format):
    """Both layouts engines return (ONNX: contiguous; torch: channels-last), zero pixels too."""
    raw = torch.randn(5, 64, 7, 9, generator=torch.Generator().manual_seed(1))
    raw[2, :, 3, 4] = 0.0
    raw = raw.contiguous(memory_format=memory_format)
    before = raw.clone()
    unit = unit_descriptors(raw)
    torch.testing.assert_close(unit, torch.nn.functional.normalize(before, dim=1),
                               atol=1e-6, rtol=1e-6)
    assert torch.equal(raw, before) and unit.data_ptr() != raw.data_ptr()
    assert torch.all(unit[2, :, 3, 4] == 0)


def test_preprocess_resizes_to_multiples_of_32(net):
    descriptor = XFeatDescriptor(net, FeatureSpec(), torch.device("cpu"))
    grey = descriptor.preprocess(torch.zeros(2, 240, 320, 3, dtype=torch.uint8))
    assert grey.shape == (2, 1, 224, 320) and grey.dtype == torch.float32


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_layout_dimensions(name):
    layout = get_layout(name)
    desc = torch.rand(3, 64, 4, 6)
    assert layout.frame_vectors(desc, desc).shape == (3, layout.dim)


def test_unknown_layout_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown layout"):
        get_layout("max999")


def test_clip_pooler_means_and_partial_last_clip():
    pooler = ClipPooler(clip_len=4, dim=2)
    indices = torch.arange(10)
    vectors = torch.stack([indices.float(), -indices.float()], dim=1)
    pooler.add(vectors[:3], indices[:3])
    pooler.add(vectors[3:], indices[3:])
    pooled = pooler.finish(num_frames=10)
    np.testing.assert_allclose(pooled.features[:, 0], [1.5, 5.5, 8.5])
    np.testing.assert_array_equal(pooled.clip_frames, [[0, 4], [4, 8], [8, 10]])
    assert pooled.last_clip_partial


def test_frame_stride_sampling():
    spec = FeatureSpec(clip_len=16, frame_stride=3)
    sampled = [i for i in range(34) if spec.sampled(i)]
    assert sampled == [0, 3, 6, 9, 12, 15, 16, 19, 22, 25, 28, 31, 32]


@pytest.mark.parametrize("size, expected", [
    ((320, 240), (320, 224)), ((360, 240), (320, 224)), ((3840, 2160), (320, 192)),
    ((240, 320), (224, 320)), ((321, 241), (320, 256)),
])
def test_network_size(size, expected):
    assert FeatureSpec().network_size(*size) == expected


def test_luma_frames_give_the_features_of_rgb_frames(net, ucf_videos):
    """The CPU decoders hand over the Y plane; XFeat instance-normalises, so features agree."""
    from memtsm.extract.decode import open_video

    video = ucf_videos / "Assault018_x264.mp4"
    with open_video(video, luma=False) as decoder:
        rgb = next(iter(decoder.batches(8))).frames
    with open_video(video, luma=True) as decoder:
        luma = next(iter(decoder.batches(8))).frames
    assert luma.shape == (8, 240, 320, 1)
    grey = (rgb.float() @ torch.tensor([0.299, 0.587, 0.114])).unsqueeze(-1)
    assert (grey - (luma.float() - 16) * 255 / 219).abs().mean() < 2  # limited-range Y
    spec = FeatureSpec()
    from_rgb = XFeatDescriptor(net, spec, torch.device("cpu")).describe(rgb)
    from_luma = XFeatDescriptor(net, spec, torch.device("cpu")).describe(luma)
    cosine = torch.nn.functional.cosine_similarity(from_rgb, from_luma, dim=1)
    assert cosine.min() > 0.99
