"""Training speed: MemTSM vs the MIL baseline on UCF-Crime-sized bags, in the same run.

    python benchmarks/bench_train.py [--bags 1610] [--dim 4096] [--epochs 2]

Writes a temporary feature store of ``--bags`` random videos (32 clips x ``--dim``, the C3D size;
half normal, half anomalous), trains each model with the default configuration through
``memtsm.train.loop.train`` (the code ``memtsm train`` runs) and prints seconds per epoch
(training steps + validation scoring, as logged in metrics.jsonl) and training segments/s.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from memtsm.extract.store import FeatureStoreWriter, VideoRecord
from memtsm.train.config import TrainConfig
from memtsm.train.loop import train

SEGMENTS = 32
CLIP = 16


def write_store(root: Path, bags: int, dim: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    starts = np.arange(SEGMENTS) * CLIP
    clip_frames = np.stack([starts, starts + CLIP], axis=1)
    identity = {"feature_dim": dim, "layout": "bench", "dtype": "float16"}
    with FeatureStoreWriter(root, identity) as writer:
        for i in range(bags):
            label = i % 2
            features = rng.standard_normal((SEGMENTS, dim), dtype=np.float32)
            if label:
                features[rng.integers(0, SEGMENTS, 3)] += 0.5
            writer.add(VideoRecord(f"{'Anomaly' if label else 'Normal'}/v{i:05d}", features,
                                   clip_frames, 30.0, SEGMENTS * CLIP, label=label,
                                   class_name="Anomaly" if label else "Normal"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bags", type=int, default=1610)
    parser.add_argument("--dim", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        started = time.perf_counter()
        write_store(store, args.bags, args.dim)
        print(f"store of {args.bags} bags x {SEGMENTS} x {args.dim} written in "
              f"{time.perf_counter() - started:.1f} s")
        rates = {}
        for model in ("memtsm", "mil-mlp"):
            started = time.perf_counter()
            result = train(TrainConfig(features=(str(store),), out=str(Path(tmp) / model),
                                       model=model, epochs=args.epochs, device="cpu"))
            total = time.perf_counter() - started
            rows = [json.loads(line) for line in
                    (result.run_dir / "metrics.jsonl").read_text().splitlines()]
            epoch_s = min(row["seconds"] for row in rows)
            segments = rows[0]["steps"] * 16 * SEGMENTS
            rates[model] = segments / epoch_s
            print(f"{model:<8} {epoch_s:6.1f} s/epoch (best of {len(rows)}; {rows[0]['steps']} "
                  f"steps of 16 bags + validation), {rates[model]:,.0f} training segments/s, "
                  f"whole run incl. loading {total:.1f} s")
        print(f"memtsm / mil-mlp segments/s: {rates['memtsm'] / rates['mil-mlp']:.2f}")


if __name__ == "__main__":
    main()
