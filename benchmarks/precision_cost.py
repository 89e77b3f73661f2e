"""What bf16 and int8 cost the features: per-frame vector cosine against fp32 on real video.

    python benchmarks/precision_cost.py [--videos DIR] [--threads N]

For every video in ``--videos`` (default: the six shared UCF-Crime clips), every frame goes
through the default feature spec three times: OpenVINO fp32 (the reference, equal to torch fp32
within 1e-4), OpenVINO bf16 (where the CPU has BF16) and OpenVINO int8 (NNCF; needs
``memtsm[int8]``). Prints, per video and precision, the min / 1st percentile / mean cosine of the
per-frame vectors (the 128-d max-pooled descriptor plus temporal change that clips are pooled
from) and the max abs difference. What the precisions cost in frame AUC is measured by
``benchmarks/ablation.py ped2 --precision``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_data import SHARED  # noqa: E402

from memtsm.extract import FeatureSpec  # noqa: E402
from memtsm.extract.decode import open_video  # noqa: E402
from memtsm.extract.engines import EngineError  # noqa: E402
from memtsm.extract.weights import resolve_weights  # noqa: E402
from memtsm.extract.xfeat import XFeatDescriptor  # noqa: E402
from memtsm.runtime.threads import configure_threads  # noqa: E402


def frame_vectors(descriptor: XFeatDescriptor, video: Path, batch_size: int = 16) -> torch.Tensor:
    """``float32 [frames, dim]``: the per-frame vectors of every frame of ``video``."""
    descriptor.reset()
    with open_video(video) as decoder:
        return torch.cat([descriptor.describe(batch.frames)
                          for batch in decoder.batches(batch_size)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=Path, default=SHARED / "ucf_crime" / "videos")
    parser.add_argument("--threads", type=int, help="engine threads (default: the CPUs)")
    args = parser.parse_args()
    threads = configure_threads(args.threads)
    weights = resolve_weights(None)
    spec, cpu = FeatureSpec(), torch.device("cpu")
    engines = {}
    for precision in ("fp32", "bf16", "int8"):
        try:
            engines[precision] = XFeatDescriptor.from_weights(
                weights, spec, cpu, engine="openvino", threads=threads, precision=precision)
        except EngineError as exc:
            print(f"{precision} skipped: {exc}")
    print("| video | frames | precision | cosine min | cosine p1 | cosine mean | max abs diff |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for video in sorted(args.videos.glob("*.mp4")):
        reference = frame_vectors(engines["fp32"], video)
        for precision in ("bf16", "int8"):
            if precision not in engines:
                continue
            vectors = frame_vectors(engines[precision], video)
            cosine = torch.nn.functional.cosine_similarity(vectors, reference, dim=1)
            print(f"| {video.stem} | {len(cosine)} | {precision} | {cosine.min():.4f} | "
                  f"{torch.quantile(cosine, 0.01):.4f} | {cosine.mean():.5f} | "
                  f"{(vectors - reference).abs().max():.3f} |", flush=True)


if __name__ == "__main__":
    main()
