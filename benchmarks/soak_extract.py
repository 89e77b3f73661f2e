"""Soak test of ``memtsm extract``: many small videos, some bad, interrupted runs, memory.

    python benchmarks/soak_extract.py [--videos 200] [--bad-fraction 0.1] [--interruptions 3]
        [--seed 0] [--workdir DIR] [--commit-every 2] [--xfeat-weights PATH]

Generates ``--videos`` small videos (24-80 frames of 160x120; mostly H.264, some VP9, MJPEG and
lossless H.264) in nested folders, of which ``--bad-fraction`` are bad (zero bytes, truncated,
truncated with the index first, random bytes, a text file named ``.avi``, audio only). Runs the
real CLI (``python -m memtsm extract --device cpu --decoder pyav --commit-every 2``) in a
subprocess, interrupts it ``--interruptions`` times at seeded random moments (SIGINT and SIGKILL
mixed), reruns it until a run completes, and samples the subprocess's RSS every 0.5 s. The
moments are measured in work: run ``k`` is interrupted once the store's index (appended at every
commit) lists a random share of the good videos (sorted draws between 5 % and 90 %), plus a
random delay of up to two commit periods; so they spread over the work whatever the machine's
speed, fall anywhere between commits, and hit a run still starting up when the previous
interruption's final commit already went past the next share.

Reports the videos stored, the failures reported (and whether they are exactly the bad videos),
duplicates (ids stored in more than one shard), lost videos (good videos not stored), stored
frame counts against the encoded ones, ``memtsm features verify``, and RSS over time (at the
deciles of the run, first half against second half). The store is counted with memtsm's own
reader (:class:`memtsm.extract.store.FeatureStore`, one shard at a time so that a duplicate is
counted instead of refused). Exit code 1 when a video is duplicated or lost.

The work folder is a temporary folder removed at the end, or ``--workdir`` (kept).
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np

from memtsm.extract.store import FAILURES_NAME, INDEX_NAME, FeatureStore, completed_shards

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MEMTSM_SHARED_DATA", REPO.parent / "shared" / "data"))
SAMPLE_SECONDS = 0.5
#: How long a run may take to exit after SIGINT before it counts as hung (and is killed).
SIGINT_GRACE_SECONDS = 60.0
#: Longest a single run may take (a hang guard).
ATTEMPT_TIMEOUT_SECONDS = 3 * 3600.0
#: Reruns allowed beyond the planned interruptions when runs crash by themselves.
EXTRA_ATTEMPTS = 3
#: Interruptions come once this range of shares of the good videos is committed.
WORK_SHARES = (0.05, 0.9)
WIDTH, HEIGHT, FPS = 160, 120, 25
MIN_FRAMES, MAX_FRAMES = 24, 80
GOOD_CODECS = {"h264": 0.7, "vp9": 0.1, "mjpeg": 0.1, "h264-lossless": 0.1}
BAD_KINDS = ("zero-byte", "truncated", "truncated-faststart", "random-bytes", "text-as-avi",
             "audio-only")
BAD_SUFFIX = {"zero-byte": ".mp4", "truncated": ".mp4", "truncated-faststart": ".mp4",
              "random-bytes": ".mp4", "text-as-avi": ".avi", "audio-only": ".mp4"}
#: (class folder, file-name prefix): UCF-Crime-like trees, labels follow the path rule.
CLASSES = (("Fighting", "Fighting"), ("Explosion", "Explosion"),
           ("Training_Normal_Videos", "Normal_Videos"))


def load_video_writers() -> ModuleType:
    """The test suite's video writers (``tests/_videos.py``), loaded from their file."""
    spec = importlib.util.spec_from_file_location("memtsm_test_videos",
                                                  REPO / "tests" / "_videos.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class PlannedVideo:
    """One generated input: its id (path relative to the input folder, no suffix) and kind."""

    video_id: str
    path: Path
    kind: str
    frames: int  # encoded frames; 0 for a bad input

    @property
    def bad(self) -> bool:
        """True for the inputs that must be reported as failures."""
        return self.kind in BAD_KINDS


def plan_videos(root: Path, count: int, bad_fraction: float, writers: ModuleType,
                rng: np.random.Generator) -> list[PlannedVideo]:
    """Choose the id, kind and length of every input (nested folders, bad ones spread out)."""
    n_bad = round(count * bad_fraction)
    bad_at = {int(i): BAD_KINDS[k % len(BAD_KINDS)]
              for k, i in enumerate(sorted(rng.choice(count, n_bad, replace=False)))}
    codecs, weights = list(GOOD_CODECS), list(GOOD_CODECS.values())
    planned = []
    for index in range(count):
        folder, prefix = CLASSES[index % len(CLASSES)]
        kind = bad_at.get(index) or str(rng.choice(codecs, p=weights))
        suffix = BAD_SUFFIX[kind] if kind in BAD_KINDS else writers.CODECS[kind][0]
        video_id = (f"{folder}/cam{int(rng.integers(1, 4))}/day{int(rng.integers(1, 3))}/"
                    f"{prefix}{index:03d}_x264")
        frames = 0 if kind in BAD_KINDS else int(rng.integers(MIN_FRAMES, MAX_FRAMES + 1))
        planned.append(PlannedVideo(video_id, root / f"{video_id}{suffix}", kind, frames))
    return planned


def write_input(video: PlannedVideo, scratch: Path, writers: ModuleType,
                rng: np.random.Generator) -> None:
    """Write one planned input file."""
    video.path.parent.mkdir(parents=True, exist_ok=True)
    frames = writers.moving_frames(max(video.frames, 60), WIDTH, HEIGHT,
                                   seed=int(rng.integers(2**31)), speed=int(rng.integers(1, 5)))
    if not video.bad:
        writers.write_video(video.path, frames[:video.frames], FPS, video.kind)
    elif video.kind == "zero-byte":
        video.path.write_bytes(b"")
    elif video.kind == "truncated":  # index (moov) at the end: cut off
        writers.truncated_copy(writers.write_video(scratch / "full.mp4", frames, FPS, "h264"),
                               video.path, 0.5)
    elif video.kind == "truncated-faststart":  # index first: opens, frames missing
        full = writers.write_encoded(scratch / "faststart.mp4", frames, "libx264", "yuv420p",
                                     {"preset": "ultrafast"}, FPS, {"movflags": "faststart"})
        writers.truncated_copy(full, video.path, 0.6)
    elif video.kind == "random-bytes":
        video.path.write_bytes(rng.bytes(int(rng.integers(1_000, 50_000))))
    elif video.kind == "text-as-avi":
        video.path.write_text("this is a text file, not a video\n" * 40, encoding="utf-8")
    else:
        writers.write_audio_only(video.path, seconds=1.5)


# ------------------------------------------------------------------------------------ runs


@dataclass(frozen=True)
class Interruption:
    """When to interrupt a run, and with which signal.

    ``extra_delay`` seconds after the store lists ``work_share`` of the good videos (at once
    if it already does).
    """

    signal: signal.Signals
    work_share: float
    extra_delay: float


@dataclass
class Attempt:
    """One run of ``memtsm extract`` and what became of it."""

    number: int
    planned: Interruption | None
    log: Path
    started: float = 0.0  # seconds since the soak's first run started
    seconds: float = 0.0
    returncode: int | None = None
    signalled_at: float | None = None  # seconds into the run
    committed_at_signal: int | None = None  # videos in the store's index when signalled
    stop_seconds: float | None = None  # from the signal to the exit
    hung: bool = False
    samples: list[tuple[float, int]] = field(default_factory=list)  # (soak seconds, RSS bytes)

    @property
    def completed(self) -> bool:
        """Ran to its end by itself (exit 0: all stored, or 1: some inputs failed)."""
        return self.signalled_at is None and self.returncode in (0, 1)

    @property
    def outcome(self) -> str:
        if self.hung:
            return "HUNG, killed" + (f" ({self.planned.signal.name} ignored)"
                                     if self.signalled_at is not None else "")
        if self.signalled_at is not None:
            return (f"{self.planned.signal.name} at {self.signalled_at:.1f} s, "
                    f"{self.committed_at_signal} done")
        return "completed" if self.completed else "CRASHED"

    @property
    def peak_rss(self) -> int:
        return max((rss for _, rss in self.samples), default=0)


def interruption_plan(count: int, commit_every: float,
                      rng: np.random.Generator) -> list[Interruption]:
    """``count`` interruptions at increasing shares of the work, SIGINT and SIGKILL shuffled."""
    kinds = [(signal.SIGINT, signal.SIGKILL)[i % 2] for i in rng.permutation(count)]
    shares = np.sort(rng.uniform(*WORK_SHARES, size=count))
    return [Interruption(kind, float(share), float(rng.uniform(0, 2 * commit_every)))
            for kind, share in zip(kinds, shares)]


def committed_videos(store: Path) -> int:
    """Videos listed in the store's index (appended by the writer at every commit)."""
    try:
        with open(store / INDEX_NAME, "rb") as index:
            return sum(1 for line in index if line.strip())
    except FileNotFoundError:
        return 0


def rss_reader() -> Callable[[int], int | None]:
    """A function giving a process's resident set size in bytes (None once it has ended).

    Uses psutil when it is installed, else ``VmRSS`` of ``/proc/PID/status``.
    """
    try:
        import psutil
    except ImportError:
        return _proc_status_rss

    def psutil_rss(pid: int) -> int | None:
        try:
            return int(psutil.Process(pid).memory_info().rss)
        except psutil.Error:
            return None

    return psutil_rss


def _proc_status_rss(pid: int) -> int | None:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    return next((int(line.split()[1]) * 1024 for line in lines if line.startswith("VmRSS:")),
                None)


def run_attempt(command: list[str], store: Path, videos_to_store: int, attempt: Attempt,
                soak_start: float, rss_of: Callable[[int], int | None]) -> Attempt:
    """Run ``command`` once, sampling RSS, sending the planned signal; fill in ``attempt``."""
    planned = attempt.planned
    target = planned.work_share * videos_to_store if planned else None
    target_reached_at: float | None = None
    started = time.monotonic()
    attempt.started = started - soak_start
    with open(attempt.log, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        while process.poll() is None:
            rss = rss_of(process.pid)
            if rss:
                attempt.samples.append((time.monotonic() - soak_start, rss))
            elapsed = time.monotonic() - started
            if target is not None and target_reached_at is None \
                    and committed_videos(store) >= target:
                target_reached_at = elapsed
            if target_reached_at is not None and attempt.signalled_at is None \
                    and elapsed >= target_reached_at + planned.extra_delay:
                process.send_signal(planned.signal)
                attempt.signalled_at = elapsed
                attempt.committed_at_signal = committed_videos(store)
            stuck_after_sigint = (attempt.signalled_at is not None
                                  and elapsed - attempt.signalled_at > SIGINT_GRACE_SECONDS)
            if stuck_after_sigint or elapsed > ATTEMPT_TIMEOUT_SECONDS:
                attempt.hung = True
                process.kill()
            time.sleep(SAMPLE_SECONDS)
        attempt.returncode = process.wait()
    attempt.seconds = time.monotonic() - started
    if attempt.signalled_at is not None:
        attempt.stop_seconds = attempt.seconds - attempt.signalled_at
    return attempt


# ---------------------------------------------------------------------------------- counting


def ids_by_shard(store: Path) -> dict[str, list[str]]:
    """Video ids in each completed shard, read by :class:`FeatureStore` one shard at a time.

    Each shard is opened through a folder holding only a link to it, so that the store's own
    index is left as the runs wrote it (``features verify`` checks it) and a video stored in two
    shards is counted instead of refused.
    """
    found: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="shard-view-") as views:
        for shard in completed_shards(store):
            view = Path(views) / shard.stem
            view.mkdir()
            (view / shard.name).symlink_to(shard.resolve())
            try:
                found[shard.name] = FeatureStore(view).video_ids
            except OSError as exc:
                print(f"  shard {shard.name} cannot be read: {exc}")
                found[shard.name] = []
    return found


def duplicated_ids(shards: dict[str, list[str]]) -> dict[str, list[str]]:
    """Ids stored more than once, with the shards holding them."""
    holders: dict[str, list[str]] = collections.defaultdict(list)
    for shard, ids in shards.items():
        for video_id in ids:
            holders[video_id].append(shard)
    return {video_id: where for video_id, where in holders.items() if len(where) > 1}


def read_failures(store: Path) -> dict[str, str]:
    """``video_id -> message`` from ``failures.jsonl`` (rewritten by every run)."""
    path = store / FAILURES_NAME
    if not path.is_file():
        return {}
    entries = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
               if line.strip()]
    return {entry["video_id"]: entry["error"] for entry in entries}


# ---------------------------------------------------------------------------------- reports


def mib(size: int) -> str:
    return f"{size / 2**20:7.1f} MiB"


def print_memory(attempts: list[Attempt]) -> None:
    """RSS at the deciles of the soak, peaks per half, and the same within the longest run."""
    samples = [sample for attempt in attempts for sample in attempt.samples]
    if not samples:
        print("memory: no RSS samples")
        return
    times = np.array([t for t, _ in samples])
    rss = np.array([r for _, r in samples])
    start, end = times[0], times[-1]
    print(f"memory: {len(samples)} RSS samples every {SAMPLE_SECONDS} s over {end - start:.0f} s "
          "(restarts between runs; each run starts from scratch)")
    print("  decile  time (s)  RSS at that time   peak within the decile")
    for decile in range(11):
        moment = start + (end - start) * decile / 10
        nearest = int(np.argmin(np.abs(times - moment)))
        window = (times >= moment) & (times < moment + (end - start) / 10)
        peak = mib(int(rss[window].max())) if decile < 10 and window.any() else "-"
        print(f"  {decile * 10:4d}%  {moment - start:8.1f}  {mib(int(rss[nearest]))}   {peak}")
    middle = start + (end - start) / 2
    print(f"  peak, first half: {mib(int(rss[times < middle].max()))}; second half: "
          f"{mib(int(rss[times >= middle].max()))}")
    longest = max(attempts, key=lambda attempt: len(attempt.samples))
    if len(longest.samples) >= 4:
        run_times = np.array([t for t, _ in longest.samples])
        run_rss = np.array([r for _, r in longest.samples])
        run_middle = (run_times[0] + run_times[-1]) / 2
        print(f"  longest run (#{longest.number}, {longest.seconds:.0f} s): peak first half "
              f"{mib(int(run_rss[run_times < run_middle].max()))}, second half "
              f"{mib(int(run_rss[run_times >= run_middle].max()))}")


@dataclass(frozen=True)
class Inputs:
    """The generated videos, good and bad, by id."""

    folder: Path
    good: dict[str, PlannedVideo]
    bad: dict[str, PlannedVideo]


def generate_inputs(folder: Path, scratch: Path, count: int, bad_fraction: float,
                    rng: np.random.Generator) -> Inputs:
    """Write the videos of :func:`plan_videos` under ``folder``."""
    began = time.monotonic()
    writers = load_video_writers()
    videos = plan_videos(folder, count, bad_fraction, writers, rng)
    for video in videos:
        write_input(video, scratch, writers, rng)
    inputs = Inputs(folder, {v.video_id: v for v in videos if not v.bad},
                    {v.video_id: v for v in videos if v.bad})
    kinds = collections.Counter(v.kind for v in videos)
    print(f"inputs: {len(videos)} videos in {folder} ({len(inputs.good)} good, "
          f"{len(inputs.bad)} bad; {sum(v.frames for v in inputs.good.values())} frames of "
          f"{WIDTH}x{HEIGHT}), written in {time.monotonic() - began:.1f} s")
    print("  kinds: " + ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items())))
    return inputs


def run_until_complete(command: list[str], store: Path, logs: Path, videos_to_store: int,
                       plan: list[Interruption]) -> list[Attempt]:
    """Run ``command`` with the planned interruptions, then until a run completes."""
    attempts: list[Attempt] = []
    rss_of = rss_reader()
    soak_start = time.monotonic()
    while not (attempts and attempts[-1].completed):
        if len(attempts) >= len(plan) + EXTRA_ATTEMPTS:
            print(f"giving up after {len(attempts)} runs without a completed one")
            break
        number = len(attempts) + 1
        planned = plan[number - 1] if number <= len(plan) else None
        attempt = run_attempt(command, store, videos_to_store,
                              Attempt(number, planned, logs / f"run-{number}.log"), soak_start,
                              rss_of)
        attempts.append(attempt)
        shards = ids_by_shard(store)
        stored = {video_id for ids in shards.values() for video_id in ids}
        leftovers = len(list(store.glob("*.h5.tmp")))
        output = attempt.log.read_text(errors="replace").strip().splitlines() or [""]
        summary = next((line for line in reversed(output)
                        if line.startswith(("stored ", "interrupted", "error"))), output[-1])
        print(f"run {number}: {attempt.outcome}, exit {attempt.returncode}, "
              f"{attempt.seconds:.1f} s"
              + (f" (stopped {attempt.stop_seconds:.1f} s after the signal)"
                 if attempt.stop_seconds is not None else "")
              + f", peak RSS {mib(attempt.peak_rss).strip()}; store now: {len(shards)} shards, "
              f"{len(stored)} videos, {leftovers} temporary shards\n  its output: {summary[:160]}")
    return attempts


def print_results(store: Path, inputs: Inputs, attempts: list[Attempt]) -> int:
    """Count, check and print what the runs left in ``store``; return the exit code."""
    good, bad = inputs.good, inputs.bad
    seconds = attempts[-1].started + attempts[-1].seconds if attempts else 0.0
    print()
    print(f"== results after {len(attempts)} runs, {seconds:.0f} s ==")
    # verify first: FeatureStore rebuilds a stale index, which would hide a bad one from verify
    verify = subprocess.run([sys.executable, "-m", "memtsm", "features", "verify", str(store)],
                            capture_output=True, text=True)
    shards = ids_by_shard(store)
    duplicates = duplicated_ids(shards)
    stored = {video_id for ids in shards.values() for video_id in ids}
    lost = sorted(set(good) - stored)
    stored_bad = sorted(set(bad) & stored)
    failures = read_failures(store)
    print(f"videos done: {len(stored & set(good))} of {len(good)} good videos stored "
          f"({len(shards)} shards)")
    print(f"duplicates (ids stored more than once): {len(duplicates)}")
    for video_id, where in sorted(duplicates.items()):
        print(f"  {video_id}: in {', '.join(where)}")
    print(f"lost (good videos not stored): {len(lost)}")
    for video_id in lost:
        print(f"  {video_id} ({good[video_id].kind}, {good[video_id].frames} frames): "
              f"{failures.get(video_id, 'not reported as a failure')}")
    print(f"bad videos stored: {len(stored_bad)}" + "".join(f"\n  {v} ({bad[v].kind})"
                                                           for v in stored_bad))
    unreported = sorted(set(bad) - set(failures))
    wrongly_failed = sorted(set(failures) - set(bad))
    verdict = "exactly the bad videos" if not unreported and not wrongly_failed else "MISMATCH"
    print(f"failures reported by the last run: {len(failures)} ({verdict})")
    for video_id, message in sorted(failures.items()):
        kind = bad[video_id].kind if video_id in bad else "GOOD VIDEO"
        print(f"  [{kind}] {message}")
    for video_id in unreported:
        print(f"  NOT REPORTED: {video_id} ({bad[video_id].kind})")
    wrong_frames: list[tuple[str, int, int]] = []
    if not duplicates:  # FeatureStore refuses a store holding an id twice
        wrong_frames = [(record.video_id, record.num_frames, good[record.video_id].frames)
                        for record in FeatureStore(store) if record.video_id in good
                        and record.num_frames != good[record.video_id].frames]
        print(f"stored frame counts that differ from the encoded ones: {len(wrong_frames)}"
              + "".join(f"\n  {v}: stored {s}, encoded {e}" for v, s, e in wrong_frames))
    print(f"memtsm features verify: exit {verify.returncode}")
    for line in (verify.stdout + verify.stderr).strip().splitlines():
        print(f"  {line}")
    print_memory(attempts)
    print("runs:")
    print("   #  start (s)  length (s)  outcome                           exit  peak RSS")
    for attempt in attempts:
        print(f"  {attempt.number:2d}  {attempt.started:9.1f}  {attempt.seconds:10.1f}  "
              f"{attempt.outcome:32s}  {str(attempt.returncode):>4s}  {mib(attempt.peak_rss)}")
    problems = {"duplicates": len(duplicates), "lost": len(lost), "bad stored": len(stored_bad),
                "unreported": len(unreported), "good failed": len(wrongly_failed),
                "frame counts": len(wrong_frames), "verify": int(verify.returncode != 0)}
    failed = any(problems.values())
    print(f"exit code: {int(failed)} ({', '.join(f'{k} {v}' for k, v in problems.items())})")
    return int(failed)


def run_soak(args: argparse.Namespace, workdir: Path) -> int:
    """Generate, run, interrupt, rerun, count; print everything; return the exit code."""
    folders = {name: workdir / name for name in ("videos", "store", "logs", "scratch")}
    for name in ("videos", "logs", "scratch"):
        folders[name].mkdir(parents=True, exist_ok=True)
    inputs = generate_inputs(folders["videos"], folders["scratch"], args.videos,
                             args.bad_fraction, np.random.default_rng([args.seed, 0]))
    command = [sys.executable, "-m", "memtsm", "extract", str(inputs.folder), "--out",
               str(folders["store"]), "--device", "cpu", "--decoder", "pyav", "--commit-every",
               str(args.commit_every), "--quiet"]
    if args.xfeat_weights.is_file():
        command += ["--xfeat-weights", str(args.xfeat_weights)]
    else:
        print(f"note: {args.xfeat_weights} not found; memtsm resolves the weights itself")
    print("command: " + " ".join(command))
    plan = interruption_plan(args.interruptions, args.commit_every,
                             np.random.default_rng([args.seed, 1]))
    print("interruptions planned: " + (", ".join(
        f"{p.signal.name} {p.extra_delay:.1f} s after {100 * p.work_share:.0f} % of the "
        "good videos are stored" for p in plan) or "none"))
    attempts = run_until_complete(command, folders["store"], folders["logs"], len(inputs.good),
                                  plan)
    return print_results(folders["store"], inputs, attempts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=200)
    parser.add_argument("--bad-fraction", type=float, default=0.1)
    parser.add_argument("--interruptions", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="kept when given (default: a temporary folder, removed)")
    parser.add_argument("--commit-every", type=float, default=2.0)
    parser.add_argument("--xfeat-weights", type=Path, default=SHARED / "xfeat" / "xfeat.pt")
    args = parser.parse_args()
    # Started in the background by a shell without job control, this script ignores SIGINT and
    # its runs would inherit that (and sit out every SIGINT): give them the default handling.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        print(f"work folder (kept): {args.workdir}")
        raise SystemExit(run_soak(args, args.workdir))
    workdir = Path(tempfile.mkdtemp(prefix="memtsm-soak-"))
    print(f"work folder (temporary): {workdir}")
    try:
        code = run_soak(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    raise SystemExit(code)


if __name__ == "__main__":
    main()
