"""Soak: one ``memtsm watch`` stream for ``--minutes`` of video (faster than real time), RSS
over time.

    python benchmarks/soak_watch.py [--video PATH] [--minutes 30] [--engine auto]

The real UCF-Crime clip is remuxed to MPEG-TS and sent over a real TCP socket to
``tcp://127.0.0.1:PORT`` as one endless-looking stream (the clip repeated until ``--minutes`` of
video went by), scored as fast as it arrives by one :class:`~memtsm.watch.runner.Watcher`
(scorer as in ``bench_watch.py``). Every ``--every`` seconds it prints the video minutes scored
and the process's RSS; memory is bounded when RSS stays flat after the warm-up.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO))

from bench_watch import DEFAULT_VIDEO, WEIGHTS, make_checkpoint  # noqa: E402


def remux_to_ts(video: Path) -> tuple[bytes, float]:
    """The clip's H.264 packets in MPEG-TS (no re-encoding), and its duration in seconds."""
    import av

    out = io.BytesIO()
    with av.open(str(video)) as source, av.open(out, "w", format="mpegts") as target:
        stream = source.streams.video[0]
        copy = target.add_stream_from_template(stream)
        duration = float(stream.frames / stream.average_rate)
        for packet in source.demux(stream):
            if packet.dts is not None:
                packet.stream = copy
                target.mux(packet)
    return out.getvalue(), duration


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--every", type=float, default=30.0)
    args = parser.parse_args()
    from memtsm.runtime.threads import configure_threads, prepare_openmp

    prepare_openmp()
    configure_threads(None, reserve=1)
    from memtsm.watch.config import WatchConfig
    from memtsm.watch.runner import Watcher

    payload, seconds = remux_to_ts(args.video)
    repeats = max(1, int(round(args.minutes * 60 / seconds)))
    listener = socket.create_server(("127.0.0.1", 0))
    url = f"tcp://127.0.0.1:{listener.getsockname()[1]}"

    def serve() -> None:
        client, _ = listener.accept()
        with client:
            for _ in range(repeats):
                client.sendall(payload)

    threading.Thread(target=serve, daemon=True).start()
    counts = {"segments": 0, "video_seconds": 0.0}

    def sink(event: dict) -> None:
        if event["event"] == "segment" and event["final"]:
            counts["segments"] += 1
            counts["video_seconds"] = event["end_time"]
        elif event["event"] in ("gap", "error", "end"):
            watcher.stop(event["event"])

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = make_checkpoint(Path(tmp) / "best.pt", 1)
        config = WatchConfig(engine=args.engine, device="cpu", xfeat_weights=WEIGHTS,
                             stall_seconds=10.0, max_reconnects=0)
        watcher = Watcher([url], checkpoint, config, sink)
        started = time.monotonic()
        runner = threading.Thread(target=watcher.run)
        runner.start()
        while runner.is_alive():
            runner.join(args.every)
            print(json.dumps({"wall_s": round(time.monotonic() - started),
                              "video_min": round(counts["video_seconds"] / 60, 2),
                              "segments": counts["segments"], "rss_mib": round(rss_mib(), 1)}),
                  flush=True)
    print(json.dumps({"repeats": repeats, "clip_seconds": seconds, "engine": watcher.engine.name,
                      "load_average": os.getloadavg()}), flush=True)


if __name__ == "__main__":
    main()
