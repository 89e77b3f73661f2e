"""``memtsm watch`` against real decoders and real servers (GStreamer RTSP, TCP, UDP, HTTP)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from _browser import Browser, chromium_path
from _servers import HttpServer, RtspServer, TcpServer, UdpSender, free_port, rtsp_available
from _videos import moving_frames, write_encoded, write_video
from PIL import Image
from typer.testing import CliRunner

from memtsm.cli import app
from memtsm.score.stored import IncompatibleFeaturesError, score_features
from memtsm.score.video import score_video
from memtsm.train.checkpoint import build_model_from_checkpoint, load_checkpoint, save_checkpoint
from memtsm.watch.alerts import AlertTracker
from memtsm.watch.config import AlertConfig, WatchConfig
from memtsm.watch.dashboard import PAGE, Dashboard
from memtsm.watch.runner import Watcher, tee
from memtsm.watch.scoring import Clip, WindowScorer

REPO = Path(__file__).resolve().parents[2]
#: Fast reconnection and stall detection, the torch engine (no graph export), on the CPU.
FAST = WatchConfig(engine="torch", device="cpu", stall_seconds=1.0, open_timeout=5.0,
                   reconnect_initial=0.1, reconnect_max=0.4)
SEGMENT_KEYS = {"stream", "index", "start_frame", "end_frame", "start_time", "end_time",
                "wall_time", "score", "recon_error", "flagged", "final"}


class Events:
    """A sink that collects events and lets a test wait for one."""

    def __init__(self) -> None:
        self.items: list[dict] = []
        self._changed = threading.Condition()

    def __call__(self, event: dict) -> None:
        json.dumps(event)  # every event is JSON-able
        with self._changed:
            self.items.append(event)
            self._changed.notify_all()

    def of(self, kind: str, stream: str | None = None) -> list[dict]:
        with self._changed:
            return [e for e in self.items if e["event"] == kind
                    and (stream is None or e["stream"] == stream)]

    def finals(self, stream: str | None = None) -> list[dict]:
        return [e for e in self.of("segment", stream) if e["final"]]

    def wait(self, predicate, timeout: float = 30.0, what: str = "event") -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}: {self.items[-5:]}")
                self._changed.wait(left)


class Running:
    """A :class:`Watcher` running in a thread (stopped and joined on exit)."""

    def __init__(self, sources, checkpoint, config=FAST, alerts_dir=None, also=None) -> None:
        self.events = Events()
        sink = tee(self.events, also) if also is not None else self.events
        self.watcher = Watcher(sources, checkpoint, config, sink, alerts_dir)
        self.summary = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.summary = self.watcher.run()

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def join(self, timeout: float = 60.0):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the watcher did not finish"
        return self.summary

    def __exit__(self, *exc: object) -> None:
        self.watcher.stop("test over")
        self.join()


def offline(video: Path, checkpoint: Path) -> list[dict]:
    report = score_video(video, checkpoint, engine="torch", device="cpu")
    return [dataclasses.asdict(s) for s in report.segments]


def assert_same_scores(streamed: list[dict], expected: list[dict], frame_offset: int = 0,
                       times: bool = True) -> None:
    assert [(e["start_frame"] - frame_offset, e["end_frame"] - frame_offset) for e in streamed] \
        == [(s["start_frame"], s["end_frame"]) for s in expected]
    np.testing.assert_allclose([e["score"] for e in streamed], [s["score"] for s in expected],
                               atol=1e-5)
    np.testing.assert_allclose([e["recon_error"] for e in streamed],
                               [s["recon_error"] for s in expected], atol=1e-5)
    if times:
        assert [(e["start_time"], e["end_time"]) for e in streamed] == [
            (s["start_time"], s["end_time"]) for s in expected]


def write_ts(path: Path, frames: np.ndarray, fps: int = 25) -> Path:
    """MPEG-TS with a keyframe every 10 frames (a receiver joining late starts soon)."""
    return write_encoded(path, frames, "libx264", "yuv420p",
                         {"preset": "ultrafast", "g": "10", "bf": "0"}, fps)


@pytest.fixture(scope="module")
def ts_video(trained):
    return write_ts(trained[1] / "cam.ts", moving_frames(200, seed=4, speed=2))


@pytest.fixture(scope="module")
def rtsp_video(trained):
    """8 s of video at 100 fps: 2 s of real time over RTSP, 13 clips."""
    return write_video(trained[1] / "rtsp", moving_frames(200, seed=6, speed=2), fps=100)


@pytest.fixture(scope="module")
def rtsp():
    reason = rtsp_available()
    if reason:
        pytest.skip(reason)


# -- streaming equals offline scoring ----------------------------------------------------------


def test_file_final_scores_equal_memtsm_score_json(trained, long_video, tmp_path):
    checkpoint, _ = trained
    runner = CliRunner()
    scored = runner.invoke(app, ["score", str(long_video), "-c", str(checkpoint), "--json",
                                 str(tmp_path / "s.json"), "--engine", "torch", "-q"])
    assert scored.exit_code == 0, scored.output
    [video] = json.loads((tmp_path / "s.json").read_text())["videos"]
    watched = runner.invoke(app, ["watch", str(long_video), "-c", str(checkpoint), "--jsonl",
                                  str(tmp_path / "w.jsonl"), "--engine", "torch", "-q"])
    assert watched.exit_code == 0, watched.output
    lines = [json.loads(line) for line in (tmp_path / "w.jsonl").read_text().splitlines()]
    segments = [e for e in lines if e["event"] == "segment"]
    assert all(SEGMENT_KEYS <= set(e) for e in segments)
    finals = [e for e in segments if e["final"]]
    assert len(video["segments"]) == 45 and [e["index"] for e in finals] == list(range(45))
    assert_same_scores(finals, video["segments"])
    assert [e["flagged"] for e in finals] == [s["flagged"] for s in video["segments"]]
    # every segment got its provisional score first (the scorer looks 12 clips ahead)
    provisional = [e for e in segments if not e["final"]]
    assert [e["index"] for e in provisional] == list(range(45))
    first_final = {e["index"]: i for i, e in reversed(list(enumerate(segments))) if e["final"]}
    assert all(i < first_final[e["index"]] for i, e in enumerate(segments) if not e["final"])
    assert lines[0]["event"] == "connected" and lines[-1]["event"] == "end"
    assert lines[-1]["status"] == "ended" and lines[-1]["frames"] == 715


def test_window_scorer_equals_whole_video_for_any_arrival(trained):
    checkpoint, _ = trained
    model = build_model_from_checkpoint(load_checkpoint(checkpoint), "cpu")
    assert model.receptive_field == 12
    features = np.random.default_rng(0).normal(size=(60, model.config.feature_dim)) \
        .astype(np.float32)
    whole = score_features(model, features).scores
    scorer = WindowScorer("s", model, "cpu", threshold=0.5)
    out, position = [], 0
    for size in (1, 3, 1, 7, 13, 2, 30, 3):  # clips arriving in batches, as in a fast file
        clips = [Clip(i, 16 * i, 16 * i + 16, 0.0, 0.0, 0.0) for i in range(position,
                                                                            position + size)]
        out += scorer.push(clips, features[position:position + size], 0.0)
        position += size
        provisional = [s for s in out[-size:] if not s.final]
        if provisional:  # the newest clip's provisional score: the video as if it ended here
            prefix = score_features(model, features[:position]).scores
            assert provisional[-1].score == pytest.approx(prefix[position - 1], abs=1e-5)
    out += scorer.finish(0.0)
    finals = [s for s in out if s.final]
    assert [s.clip.index for s in finals] == list(range(60))
    np.testing.assert_allclose([s.score for s in finals], whole, atol=1e-5)


def test_a_causal_scorer_streams_final_scores_at_once(trained):
    """``memtsm train --causal``: no look-ahead, so every clip's first score is final."""
    from memtsm.model import ScorerConfig, build_scorer

    torch.manual_seed(0)
    model = build_scorer(ScorerConfig(feature_dim=24, channels=16, mem_size=8, head_hidden=8,
                                      causal=True)).eval()
    assert model.lookahead == 0 and model.receptive_field == 2 * (2 + 2 + 8)
    features = np.random.default_rng(1).normal(size=(50, 24)).astype(np.float32)
    whole = score_features(model, features).scores
    scorer = WindowScorer("s", model, "cpu", threshold=0.5)
    out, position = [], 0
    for size in (1, 4, 2, 20, 23):
        clips = [Clip(i, 16 * i, 16 * i + 16, 0.0, 0.0, 0.0)
                 for i in range(position, position + size)]
        pushed = scorer.push(clips, features[position:position + size], 0.0)
        assert [s.final for s in pushed] == [True] * size
        out += pushed
        position += size
    assert scorer.finish(0.0) == []
    np.testing.assert_allclose([s.score for s in out], whole, atol=1e-5)


def test_a_checkpoint_of_other_features_is_refused(trained, long_video, tmp_path):
    checkpoint = load_checkpoint(trained[0])
    identity = dataclasses.replace(checkpoint.feature_identity, xfeat_weights_sha256="0" * 64)
    other = save_checkpoint(tmp_path / "other.pt",
                            dataclasses.replace(checkpoint, feature_identity=identity))
    with pytest.raises(IncompatibleFeaturesError, match="xfeat_weights_sha256"):
        Watcher([str(long_video)], other, FAST, Events())


def test_a_whole_video_scorer_is_refused(trained, long_video, tmp_path):
    """RTFM's attention sees the whole video: no stream can give its scores."""
    from memtsm.train.config import TrainConfig
    from memtsm.train.loop import train

    store = load_checkpoint(trained[0]).train_config.features
    run = train(TrainConfig(features=store, out=str(tmp_path / "rtfm"), model="rtfm", epochs=1,
                            steps=1, val_fraction=0.25, device="cpu",
                            scorer={"rtfm_channels": 16, "rtfm_hidden": (8, 4)}))
    with pytest.raises(ValueError, match="no finite receptive field"):
        Watcher([str(long_video)], run.best_checkpoint, FAST, Events())


# -- network streams ---------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_rtsp_stream_scores_equal_offline(trained, rtsp, rtsp_video, transport):
    checkpoint, _ = trained
    expected = offline(rtsp_video, checkpoint)
    config = dataclasses.replace(FAST, rtsp_transport=transport)
    with RtspServer(rtsp_video) as server, Running([server.url], checkpoint, config) as run:
        run.events.wait(lambda e: e.of("gap"), what="the end of the first play")
        finals = [e for e in run.events.finals() if e["index"] < len(expected)]
    assert len(finals) == len(expected) == 13
    assert_same_scores(finals, expected, times=False)
    assert run.events.of("connected")[0]["fps"] == pytest.approx(100)


def test_rtsp_reconnects_after_the_server_restarts(trained, rtsp, rtsp_video):
    checkpoint, _ = trained
    expected = offline(rtsp_video, checkpoint)
    server = RtspServer(rtsp_video).start()
    try:
        with Running([server.url], checkpoint) as run:
            run.events.wait(lambda e: len(e.of("segment")) >= 2, what="first segments")
            server.stop()
            run.events.wait(lambda e: len(e.of("gap")) >= 2, what="failed reconnections")
            [drop, retry, *_] = run.events.of("gap")
            assert server.url in drop["reason"] and retry["attempt"] == 2
            assert retry["retry_in"] == pytest.approx(2 * drop["retry_in"])  # backoff
            server.start()
            run.events.wait(lambda e: len(e.of("connected")) == 2, what="reconnection")
            gaps = len(run.events.of("gap"))
            run.events.wait(lambda e: len(e.of("gap")) > gaps, what="the end of the replay")
    finally:
        server.stop()
    after = drop["after_frame"]
    first_run = [e for e in run.events.finals() if e["start_frame"] < after]
    assert first_run and first_run[-1]["end_frame"] == after  # made final at the gap
    second_run = [e for e in run.events.finals() if e["start_frame"] >= after]
    assert second_run[0]["start_frame"] == after  # context restarts after the gap
    assert second_run[0]["index"] == first_run[-1]["index"] + 1
    assert_same_scores(second_run, expected, frame_offset=after, times=False)


def test_mpegts_over_tcp_equals_offline_and_a_stall_is_a_gap(trained, ts_video):
    checkpoint, _ = trained
    expected = offline(ts_video, checkpoint)
    with TcpServer(ts_video.read_bytes(), hold=30) as server, \
            Running([server.url], checkpoint) as run:
        run.events.wait(lambda e: e.of("gap"), what="a stall")
    [gap] = run.events.of("gap")[:1]
    assert "stalled: no data for 1 s" in gap["reason"] and server.url in gap["reason"]
    finals = [e for e in run.events.finals() if e["index"] < len(expected)]
    assert_same_scores(finals, expected)


def test_mpegts_over_http_equals_offline(trained, ts_video):
    checkpoint, _ = trained
    expected = offline(ts_video, checkpoint)
    with HttpServer(ts_video) as server, Running([server.url], checkpoint) as run:
        run.events.wait(lambda e: e.of("gap"), what="the end of the download")
    finals = [e for e in run.events.finals() if e["index"] < len(expected)]
    assert_same_scores(finals, expected)


def test_mpegts_over_udp_is_scored(trained, ts_video):
    checkpoint, _ = trained
    with UdpSender(ts_video.read_bytes(), rate=400_000) as sender, \
            Running([sender.url], checkpoint) as run:
        time.sleep(0.5)  # FFmpeg binds the port while it opens the source
        sender.start_after.set()
        run.events.wait(lambda e: len(e.finals()) >= 5, what="scores of the UDP stream")
    assert run.events.of("connected")[0]["codec"] == "h264"
    assert all(0 < e["score"] < 1 for e in run.events.finals())


def test_bad_sources_fail_clearly_while_another_stream_goes_on(trained, long_video):
    checkpoint, _ = trained
    unreachable = f"tcp://127.0.0.1:{free_port()}"
    config = dataclasses.replace(FAST, max_reconnects=1)
    # Fixed bytes: what FFmpeg's probe makes of random bytes depends on the bytes.
    garbage_bytes = np.random.default_rng(0).integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    with TcpServer(garbage_bytes) as garbage:
        with Running([garbage.url, unreachable, str(long_video)], checkpoint, config) as run:
            summary = run.join()
    assert summary.streams == {garbage.url: "failed", unreachable: "failed",
                               str(long_video): "ended"}
    # FFmpeg either rejects the bytes at once or finds no video stream in them: both name it.
    failure = summary.failures[garbage.url]
    assert failure.startswith(garbage.url + ": ")
    assert ("Invalid data" in failure and "cannot open the stream" in failure) \
        or "no video stream in the source" in failure
    assert "Connection refused" in summary.failures[unreachable]
    assert "gave up after 1 reconnection" in summary.failures[unreachable]
    assert [e["index"] for e in run.events.finals(str(long_video))] == list(range(45))


def test_a_resolution_change_restarts_the_context(trained, tmp_path):
    checkpoint, _ = trained
    small = write_ts(tmp_path / "small.ts", moving_frames(48, 64, 48, seed=1))
    large = write_ts(tmp_path / "large.ts", moving_frames(64, 96, 64, seed=2))
    with TcpServer(small.read_bytes() + large.read_bytes(), hold=30) as server, \
            Running([server.url], checkpoint) as run:
        run.events.wait(lambda e: len(e.of("gap")) >= 2, what="the size change and the stall")
    change = run.events.of("gap")[0]
    assert change["reason"] == (f"{server.url}: frame size changed from 64x48 to 96x64; "
                                "scoring restarts at frame 48")
    finals = run.events.finals()
    assert [(e["start_frame"], e["end_frame"]) for e in finals[:7]] == [
        (0, 16), (16, 32), (32, 48), (48, 64), (64, 80), (80, 96), (96, 112)]
    np.testing.assert_allclose([e["score"] for e in finals[3:7]],
                               [s["score"] for s in offline(large, checkpoint)], atol=1e-5)


# -- files still being written -----------------------------------------------------------------


def test_a_followed_file_and_a_growing_folder_equal_offline(trained, ts_video, tmp_path):
    checkpoint, _ = trained
    data = ts_video.read_bytes()
    growing = tmp_path / "recording.ts"
    growing.write_bytes(data[:4096])
    folder = tmp_path / "frames"
    folder.mkdir()
    frames = moving_frames(100, seed=8, speed=2)
    Image.fromarray(frames[0]).save(folder / "frame_0000.png")

    def write_slowly() -> None:
        for start in range(4096, len(data), 8192):
            with open(growing, "ab") as handle:
                handle.write(data[start:start + 8192])
            time.sleep(0.01)
        for i, frame in enumerate(frames[1:], start=1):
            Image.fromarray(frame).save(folder / "frame.part", format="PNG")  # not an image name
            (folder / "frame.part").rename(folder / f"frame_{i:04d}.png")
            time.sleep(0.005)

    writer = threading.Thread(target=write_slowly)
    config = dataclasses.replace(FAST, follow=True)
    with Running([str(growing), str(folder)], checkpoint, config) as run:
        writer.start()
        summary = run.join()
    writer.join()
    assert summary.streams == {str(growing): "ended", str(folder): "ended"}
    assert_same_scores(run.events.finals(str(growing)), offline(ts_video, checkpoint))
    assert_same_scores(run.events.finals(str(folder)), offline(folder, checkpoint))


# -- signals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("number, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_flush_the_json_lines_and_exit(trained, long_video, tmp_path, number, code):
    checkpoint, _ = trained
    out = tmp_path / "w.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "memtsm", "watch", str(long_video), "-c", str(checkpoint),
         "--jsonl", str(out), "--realtime", "--engine", "torch", "-q"],
        env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if out.exists() and out.read_text().count('"segment"') >= 3:
                break
            time.sleep(0.1)
        else:
            pytest.fail("no segments within 60 s")
        process.send_signal(number)
        assert process.wait(30) == code, process.stderr.read()
    finally:
        process.kill()
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[-1]["event"] == "end" and lines[-1]["status"] == "stopped"
    assert lines[-1]["reason"] == signal.Signals(number).name
    segments = [e for e in lines if e["event"] == "segment"]
    assert lines[-1]["frames"] < 715  # stopped before the file's end
    finals = {e["index"] for e in segments if e["final"]}
    assert finals == {e["index"] for e in segments}  # every scored segment was made final


# -- alerts ------------------------------------------------------------------------------------


def expected_alerts(scores: list[float], threshold: float, open_after: int,
                    close_after: int) -> list[tuple[int, int]]:
    """(first, last above) segment of each alert, by the rule the docs state."""
    alerts, above, below, current = [], 0, 0, None
    for i, score in enumerate(scores):
        if current is None:
            above = above + 1 if score >= threshold else 0
            if above == open_after:
                current, last, below = i - open_after + 1, i, 0
        elif score >= threshold:
            last, below = i, 0
        else:
            below += 1
            if below == close_after:
                alerts.append((current, last))
                current = None
                above = 0
    if current is not None:
        alerts.append((current, last))
    return alerts


@pytest.fixture(scope="module")
def alerting(trained):
    """A video (6.4 s at 100 fps), its offline scores and a checkpoint whose threshold gives an
    alert closed by the scores, whatever this small model learnt: ``(video, checkpoint,
    threshold, [(first, last above)])``."""
    checkpoint, root = trained
    frames = np.concatenate([moving_frames(240, seed=5, speed=1), moving_frames(160, seed=5,
                             speed=9), moving_frames(240, seed=5, speed=1)])
    video = write_video(root / "incident", frames, fps=100)
    scores = [s["score"] for s in offline(video, checkpoint)]
    threshold = next(t for t in sorted(set(scores), reverse=True)
                     if (alerts := expected_alerts(scores, t, 2, 4))
                     and alerts[0][1] + 4 < len(scores))
    ckpt = dataclasses.replace(load_checkpoint(checkpoint), val_video_threshold=threshold)
    return video, save_checkpoint(root / "alerting.pt", ckpt), threshold, alerts


def test_alerts_open_and_close_with_evidence_clips_and_a_hook(alerting, tmp_path):
    video, custom, threshold, alerts = alerting
    num_frames = 640
    hook_out = tmp_path / "hook.jsonl"
    hook = (sys.executable, "-c", "import sys; open(sys.argv[1], 'a').write(sys.stdin.read())",
            str(hook_out))
    config = dataclasses.replace(FAST, alerts=AlertConfig(open_after=2, close_after=4,
                                                          pre_roll=1.0, post_roll=1.0,
                                                          on_alert=hook))
    with Running([str(video)], custom, config, alerts_dir=tmp_path / "alerts") as run:
        run.join()
    opened, closed = run.events.of("alert_open"), run.events.of("alert_close")
    assert [(e["start_frame"], e["end_frame"]) for e in closed] == [
        (16 * first, min(num_frames, 16 * (last + 1))) for first, last in alerts]
    assert [e["start_frame"] for e in opened] == [16 * first for first, _ in alerts]
    assert closed[0]["reason"] == "scores below the threshold"
    evidence = {e["alert"]: e for e in run.events.of("evidence")}
    assert sorted(evidence) == sorted(e["alert"] for e in opened)
    for alert in closed:
        clip = evidence[alert["alert"]]
        with av.open(clip["clip"]) as container:
            decoded = sum(1 for _ in container.decode(video=0))
        start = max(0, alert["start_frame"] - 100)  # 1 s of pre-roll at 100 fps
        end = min(num_frames, alert["end_frame"] + 100)
        assert (clip["start_frame"], clip["end_frame"]) == (start, end)
        assert decoded == end - start
    opened = opened[0]
    with Image.open(opened["thumbnail"]) as thumbnail:
        assert thumbnail.size == (64, 48)
    # one command per event, not waited for: they may finish in any order
    hooked = sorted(hook_out.read_text().splitlines())
    assert hooked == sorted(json.dumps(e) for e in run.events.items
                            if e["event"] in ("alert_open", "alert_close"))
    described = json.loads((tmp_path / "alerts" / "watch_config.json").read_text())
    assert described["val_video_threshold"] == threshold and described["receptive_field"] == 12


def test_hysteresis_needs_n_above_to_open_and_m_below_to_close():
    tracker = AlertTracker("cam", AlertConfig(open_after=2, close_after=3), threshold=0.5)

    def segment(i: int, score: float):
        from memtsm.watch.scoring import SegmentScore

        return SegmentScore("cam", Clip(i, 16 * i, 16 * i + 16, 0.0, 0.0, 0.0), score, 0.0,
                            score >= 0.5, True, 0.0)

    scores = [0.9, 0.1, 0.9, 0.9, 0.2, 0.2, 0.9, 0.1, 0.1, 0.1, 0.9]
    events = [(i, e["event"]) for i, s in enumerate(scores)
              for e in tracker.feed(segment(i, s))]
    assert events == [(3, "alert_open"), (9, "alert_close")]
    assert tracker.feed(segment(11, 0.95)) and tracker.is_open  # 10 and 11 above
    [closed] = tracker.end_run("gap", 0.0)
    assert closed["reason"] == "gap" and closed["end_frame"] == 12 * 16


# -- the dashboard -----------------------------------------------------------------------------


def test_the_dashboard_updates_live_in_chromium(alerting, tmp_path):
    if chromium_path() is None:
        pytest.skip("Chromium not installed (apt-get install chromium)")
    video, custom, _, _ = alerting
    alerts_dir = tmp_path / "alerts"
    dashboard = Dashboard(("127.0.0.1", 0), None, alerts_dir)
    config = dataclasses.replace(FAST, realtime=True)  # 6.4 s of video at its frame rate
    try:
        with Running([str(video)], custom, config, alerts_dir, also=dashboard) as run, \
                Browser(dashboard.url) as page:
            assert page.wait_for("document.readyState === 'complete' && document.title")\
                == "memtsm watch"
            page.wait_for("document.getElementById('status').textContent === 'live'")
            count = "+(document.querySelector('.segments') || {textContent: 0}).textContent"
            seen = page.wait_for(f"{count} >= 1 && {count}")
            assert not run.events.of("end"), "the stream ended before the page showed it"
            later = page.wait_for(f"{count} >= {seen + 3} && {count}")
            assert later > seen  # the timeline follows the stream as segments arrive
            painted = page.evaluate(
                "(() => { const c = document.querySelector('canvas');"
                " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
                " let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; })()")
            assert painted > 100
            # an alert appears, with its thumbnail loaded from the server, then its clip link
            assert page.wait_for("(document.querySelector('.alerts li img') || {}).naturalWidth"
                                 ) == 64
            page.wait_for("!!document.querySelector('.alerts li a.clip')")
            assert page.evaluate("document.querySelector('.alerts li').dataset.alert") == \
                run.events.of("alert_open")[0]["alert"]
            run.join()
            page.wait_for("document.querySelector('.state').textContent.startsWith('ended')")
            assert page.evaluate(count) == len(run.events.finals())
    finally:
        dashboard.close()
    assert "http://" not in PAGE and "https://" not in PAGE and "src=\"" not in PAGE


def test_the_dashboard_checks_its_token_and_serves_only_evidence(tmp_path):
    with pytest.raises(ValueError, match="--token"):
        Dashboard(("0.0.0.0", 0), None)
    (tmp_path / "alerts").mkdir()
    (tmp_path / "alerts" / "a.jpg").write_bytes(b"jpeg")
    (tmp_path / "secret.txt").write_text("no")
    dashboard = Dashboard(("127.0.0.1", 0), "s3cret", tmp_path / "alerts")
    base = dashboard.url.split("?")[0]

    def status(path: str, headers: dict | None = None) -> int:
        request = urllib.request.Request(base + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    try:
        assert status("") == 403 and status("?token=wrong") == 403
        assert status("?token=s3cret") == 200
        assert status("evidence/a.jpg", {"Authorization": "Bearer s3cret"}) == 200
        assert status("evidence/a.jpg") == 403
        assert status("evidence/..%2Fsecret.txt?token=s3cret") == 404
        assert status("elsewhere?token=s3cret") == 404
    finally:
        dashboard.close()


def test_serving_beyond_loopback_without_a_token_is_refused(trained, long_video):
    result = CliRunner().invoke(app, ["watch", str(long_video), "-c", str(trained[0]),
                                      "--serve", "0.0.0.0:0"])
    assert result.exit_code == 2
    assert "--serve 0.0.0.0:0 is reachable from other machines: give --token" in result.output


def test_sources_by_kind_and_passwords_never_shown(tmp_path):
    from memtsm.watch.sources import (
        FileSource,
        FollowedFileSource,
        GrowingFolderSource,
        NetworkSource,
        SourceError,
        open_source,
    )

    camera = open_source("rtsp://admin:hunter2@10.0.0.7:554/live", FAST)
    assert isinstance(camera, NetworkSource) and camera.live
    assert camera.name == "rtsp://admin:***@10.0.0.7:554/live" and "hunter2" not in camera.name
    assert camera.options() == {"rtsp_transport": "tcp"}
    assert open_source("/dev/video0", FAST).container_format == "v4l2"
    (tmp_path / "clip.ts").write_bytes(b"x")
    following = dataclasses.replace(FAST, follow=True)
    assert type(open_source(str(tmp_path / "clip.ts"), FAST)) is FileSource
    assert type(open_source(str(tmp_path / "clip.ts"), following)) is FollowedFileSource
    assert type(open_source(str(tmp_path), following)) is GrowingFolderSource
    with pytest.raises(SourceError, match="no such file or folder, and not a stream URL"):
        open_source(str(tmp_path / "missing.mp4"), FAST)
    with pytest.raises(SourceError, match="unsupported stream type 'ftp'"):
        open_source("ftp://host/video.mp4", FAST)
