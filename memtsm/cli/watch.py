"""``memtsm watch``: flags -> :class:`memtsm.watch.config.WatchConfig` -> :class:`Watcher`.

Defaults are the fields of :class:`WatchConfig` and :class:`AlertConfig`. SIGINT and SIGTERM ask
the watcher to stop: it scores the frames already decoded, makes the last scores final, closes
open alerts and their evidence clips, flushes the JSON lines, and the command exits 130 (SIGINT)
or 143 (SIGTERM).
"""

from __future__ import annotations

import shlex
import signal
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from memtsm.cli.options import (
    EXIT_FAILURES,
    EXIT_OK,
    Checkpoint,
    Device,
    Engine,
    FramesFps,
    Quiet,
    Threads,
    XFeatWeights,
    command_class,
    field_defaults,
    setup_logging,
    usage_error,
    use_threads,
)

#: Exit status after a signal: 128 + its number (SIGINT 130, SIGTERM 143).
SIGNAL_EXIT_BASE = 128


def library_defaults() -> dict[str, Any]:
    """The fields of :class:`WatchConfig` and :class:`AlertConfig` (flags are off by default)."""
    from memtsm.watch.config import AlertConfig, WatchConfig

    watch, alerts = field_defaults(WatchConfig), field_defaults(AlertConfig)
    return {"device": watch["device"], "engine": watch["engine"], "fps": watch["frames_fps"],
            "rtsp_transport": watch["rtsp_transport"], "stall_seconds": watch["stall_seconds"],
            "open_timeout": watch["open_timeout"], "alert_after": alerts["open_after"],
            "alert_clear": alerts["close_after"], "pre_roll": alerts["pre_roll"],
            "post_roll": alerts["post_roll"]}


def library_choices() -> dict[str, tuple[str, ...]]:
    """Engines and RTSP transports."""
    from memtsm.extract.config import ENGINE_NAMES
    from memtsm.watch.config import RTSP_TRANSPORTS

    return {"engine": ENGINE_NAMES, "rtsp_transport": RTSP_TRANSPORTS}


Command = command_class(library_defaults, library_choices)


def watch(
    sources: Annotated[list[str], typer.Argument(
        metavar="SOURCE", help="rtsp://, rtmp://, http(s)://, tcp://, udp:// or srt:// streams, "
        "/dev/videoN cameras, video files or folders of frame images.", show_default=False)],
    checkpoint: Checkpoint,
    jsonl: Annotated[str, typer.Option(
        "--jsonl", metavar="FILE|-", help="Where the JSON lines go (appended to FILE; - is "
        "stdout): one per segment score (provisional, then final), gap, alert and end.")] = "-",
    alerts: Annotated[Optional[Path], typer.Option(
        "--alerts", metavar="DIR", help="Write an MP4 evidence clip and a JPEG thumbnail per "
        "alert here (grey: the frames the scorer saw).")] = None,
    realtime: Annotated[bool, typer.Option(
        "--realtime/--no-realtime", help="Read video files at their own frame rate (else as "
        "fast as possible).")] = False,
    follow: Annotated[bool, typer.Option(
        "--follow", help="Follow files and frame folders still being written (like tail -f) "
        "until they stop growing for --stall-seconds.")] = False,
    device: Device = None,
    engine: Engine = None,
    xfeat_weights: XFeatWeights = None,
    fps: FramesFps = None,
    rtsp_transport: Annotated[Optional[str], typer.Option(
        "--rtsp-transport", help="Transport of rtsp:// sources.")] = None,
    stall_seconds: Annotated[Optional[float], typer.Option(
        "--stall-seconds", metavar="S", help="A stream that sends no data for this long is "
        "reconnected (a followed file that does not grow for this long has ended).")] = None,
    open_timeout: Annotated[Optional[float], typer.Option(
        "--open-timeout", metavar="S", help="Seconds to wait for a network stream to open.")
    ] = None,
    max_reconnects: Annotated[Optional[int], typer.Option(
        "--max-reconnects", metavar="N", help="Give a stream up after N failed reconnections "
        "in a row (waits double from 0.5 s to 30 s).", show_default="never")] = None,
    alert_after: Annotated[Optional[int], typer.Option(
        "--alert-after", metavar="N", help="An alert opens after N consecutive final segment "
        "scores at or above the checkpoint's threshold.")] = None,
    alert_clear: Annotated[Optional[int], typer.Option(
        "--alert-clear", metavar="M", help="It closes after M consecutive segments below.")
    ] = None,
    pre_roll: Annotated[Optional[float], typer.Option(
        "--pre-roll", metavar="S", help="Seconds of video before an alert in its clip.")] = None,
    post_roll: Annotated[Optional[float], typer.Option(
        "--post-roll", metavar="S", help="Seconds of video after an alert in its clip.")] = None,
    on_alert: Annotated[Optional[str], typer.Option(
        "--on-alert", metavar="CMD", help="Command run at every alert open and close with the "
        "event as JSON on stdin; split like a shell line but never run by a shell.")] = None,
    serve: Annotated[Optional[str], typer.Option(
        "--serve", metavar="[HOST:]PORT", help="Serve a live dashboard (one offline page "
        "updated by Server-Sent Events) here; HOST defaults to 127.0.0.1, any other needs "
        "--token.")] = None,
    token: Annotated[Optional[str], typer.Option(
        "--token", metavar="TOKEN", help="Secret every dashboard request must carry "
        "(?token=TOKEN): required when --serve binds an address other than loopback.")] = None,
    threads: Threads = None,
    quiet: Quiet = False,
) -> None:
    """Score live streams, cameras and growing files: JSON lines, alerts, evidence clips."""
    setup_logging(quiet)
    use_threads(threads, reserve=min(len(sources), 2))
    from memtsm.watch.config import AlertConfig, WatchConfig
    from memtsm.watch.runner import JsonLines, Watcher, tee

    try:
        config = WatchConfig(
            device=device, engine=engine,
            xfeat_weights=str(xfeat_weights) if xfeat_weights else None, realtime=realtime,
            follow=follow, frames_fps=fps, rtsp_transport=rtsp_transport,
            stall_seconds=stall_seconds, open_timeout=open_timeout,
            max_reconnects=max_reconnects,
            alerts=AlertConfig(open_after=alert_after, close_after=alert_clear,
                               pre_roll=pre_roll, post_roll=post_roll,
                               on_alert=tuple(shlex.split(on_alert)) if on_alert else ()))
        lines = JsonLines(jsonl)
    except (OSError, ValueError) as exc:
        raise usage_error(str(exc)) from None
    dashboard = None
    closing = [lines.close]
    try:
        sink = lines
        if serve is not None:
            from memtsm.watch.dashboard import Dashboard, parse_address

            dashboard = Dashboard(parse_address(serve), token, alerts)
            closing.append(dashboard.close)
            sink = tee(lines, dashboard)
            typer.echo(f"dashboard: {dashboard.url}", err=True)
        watcher = Watcher(sources, checkpoint, config, sink, alerts)
    except (OSError, ValueError, RuntimeError) as exc:
        _close(closing)
        raise usage_error(str(exc)) from None
    except KeyboardInterrupt:
        _close(closing)
        raise typer.Exit(SIGNAL_EXIT_BASE + signal.SIGINT) from None
    received: list[int] = []

    def on_signal(number: int, _frame: object) -> None:
        received.append(number)
        watcher.stop(signal.Signals(number).name)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        summary = watcher.run()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        _close(closing)
    if received:
        raise typer.Exit(SIGNAL_EXIT_BASE + received[0])
    for message in summary.failures.values():
        typer.echo(f"failed: {message}", err=True)
    raise typer.Exit(EXIT_FAILURES if summary.failures else EXIT_OK)


def _close(closers: list) -> None:
    for close in closers:
        close()
