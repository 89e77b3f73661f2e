"""Decoders on real clips (UCF-Crime, UCSD Ped2) and on videos generated here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _videos import moving_frames, write_video

from memtsm.extract.decode import DecodeError, expected_frames, open_video, resolve_backend
from memtsm.extract.sources import natural_key


def _frame_counts(meta_dir):
    counts = {}
    for name in ("Train_Annotation.txt", "Test_Annotation.txt"):
        for line in (meta_dir / name).read_text().splitlines():
            parts = line.split()
            if parts:
                counts[parts[0].split("/")[-1].removesuffix(".mp4")] = int(parts[1])
    return counts


def _decode_all(path, batch_size=64, want=None):
    with open_video(path) as decoder:
        batches = list(decoder.batches(batch_size) if want is None
                       else decoder.batches(batch_size, want))
        return decoder, batches


@pytest.mark.slow
def test_real_ucf_clips_frame_counts_match_official_metadata(ucf_videos, shared_data):
    expected = _frame_counts(shared_data / "ucf_crime" / "meta")
    videos = sorted(ucf_videos.glob("*.mp4"))
    assert len(videos) == 6
    for video in videos:
        decoder, batches = _decode_all(video)
        indices = torch.cat([b.indices for b in batches])
        assert decoder.frames_decoded == expected[video.stem], video.name
        assert torch.equal(indices, torch.arange(expected[video.stem]))
        assert batches[0].frames.shape[1:] == (240, 320, 3)
        assert decoder.info.fps == pytest.approx(30.0, abs=0.1)
        stamps = torch.cat([b.timestamps for b in batches])
        assert torch.all(stamps[1:] > stamps[:-1])


def test_ped2_frame_folders(shared_data):
    ped2 = shared_data / "ucsd_ped2"
    for split, video, frames in (("testing", "01", 180), ("testing", "03", 150),
                                 ("training", "01", 120)):
        decoder, batches = _decode_all(ped2 / split / video, batch_size=50)
        assert decoder.frames_decoded == frames
        assert sum(len(b) for b in batches) == frames
        assert batches[0].frames.shape[1:] == (240, 360, 3)
        assert decoder.info.codec == "images"


def test_lossless_h264_frames_are_exact(tmp_path):
    frames = moving_frames(37)
    path = write_video(tmp_path / "clip", frames, codec="h264-lossless")
    decoder, batches = _decode_all(path, batch_size=16)
    assert [len(b) for b in batches] == [16, 16, 5]
    decoded = torch.cat([b.frames for b in batches]).numpy()
    np.testing.assert_array_equal(decoded, frames)
    assert decoder.frames_decoded == 37
    stamps = torch.cat([b.timestamps for b in batches]).numpy()
    np.testing.assert_allclose(stamps, np.arange(37) / 25, atol=1e-6)


def test_frame_filter_skips_conversion_but_counts_frames(tmp_path):
    path = write_video(tmp_path / "clip", moving_frames(30), codec="vp9")
    decoder, batches = _decode_all(path, batch_size=4, want=lambda i: i % 3 == 0)
    assert torch.cat([b.indices for b in batches]).tolist() == list(range(0, 30, 3))
    assert decoder.frames_decoded == 30


@pytest.mark.parametrize("content, problem", [
    (b"", "empty file"),
    (b"this is not a video at all" * 40, "not a readable video container"),
])
def test_unreadable_files_raise_decode_error_naming_the_file(tmp_path, content, problem):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(DecodeError, match=problem) as info:
        _decode_all(path)
    assert str(path) in str(info.value)


def test_audio_only_file_is_rejected(tmp_path):
    import av

    path = tmp_path / "sound.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                           layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with pytest.raises(DecodeError, match="no video stream"):
        open_video(path)


def test_truncated_video_decodes_what_is_there_or_fails_clearly(tmp_path):
    path = write_video(tmp_path / "clip", moving_frames(60, 160, 120), codec="h264")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    try:
        decoder, batches = _decode_all(path)
    except DecodeError as exc:
        assert str(path) in str(exc)
    else:
        assert 0 < decoder.frames_decoded < 60
        assert sum(len(b) for b in batches) == decoder.frames_decoded


def test_frame_folder_natural_order_ignores_non_images(tmp_path):
    from PIL import Image

    frames = moving_frames(12)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / f"{i}.png")
    (tmp_path / "notes.txt").write_text("not a frame")
    decoder, batches = _decode_all(tmp_path, batch_size=5)
    np.testing.assert_array_equal(torch.cat([b.frames for b in batches]).numpy(), frames)
    assert sorted(["10.png", "9.png", "1.png"], key=natural_key) == ["1.png", "9.png", "10.png"]


def test_frame_folder_with_corrupt_image_fails_naming_it(tmp_path):
    from PIL import Image

    for i, frame in enumerate(moving_frames(4)):
        Image.fromarray(frame).save(tmp_path / f"{i:03d}.jpg")
    (tmp_path / "002.jpg").write_bytes(b"garbage")
    with pytest.raises(DecodeError, match="002.jpg"):
        _decode_all(tmp_path)


def test_auto_backend_without_cuda_is_pyav():
    assert resolve_backend("auto", torch.device("cpu")).value == "pyav"


@pytest.mark.parametrize("codec", ["h264", "vp9", "mjpeg"])
def test_expected_frames_of_files_with_and_without_a_declared_count(tmp_path, codec):
    # mp4 and avi declare 37 frames; webm declares none, so duration x frame rate is used
    path = write_video(tmp_path / "clip", moving_frames(37), codec=codec)
    assert expected_frames(path, is_frame_folder=False) == 37


def test_expected_frames_of_frame_folders_and_broken_files(shared_data, tmp_path):
    assert expected_frames(shared_data / "ucsd_ped2" / "testing" / "03", is_frame_folder=True) \
        == 150
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    assert expected_frames(broken, is_frame_folder=False) == 0
