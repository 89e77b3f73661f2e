"""``benchmarks/gpu_check.py --smoke``: every stage of the GPU check runs (on the CPU, VP9 through
DALI's CPU decoder), so the script works when a session has a GPU for it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("nvidia.dali")

REPO = Path(__file__).resolve().parents[2]


def test_gpu_check_smoke_runs_every_stage(tmp_path):
    out = tmp_path / "check.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--smoke", "--json",
         str(out)], capture_output=True, text=True, timeout=600,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    figures = report["figures"]
    for corpus in ("320x240", "1080p"):
        for stage in ("pyav (CPU, luma)", "dali RGB", "dali + grey/resize"):
            assert figures[f"decode {corpus} {stage}"] > 0
        for decoder in ("dali", "pyav"):
            for precision in ("fp32", "bf16"):
                assert figures[f"end to end {corpus} {decoder} {precision}"] > 0
    assert figures["xfeat network torch fp32"] > 0 and figures["xfeat network torch bf16"] > 0
    # the same frames through DALI's grey/resize give the CPU reference's features
    assert figures["features pyav fp32 vs CPU fp32"] > 0.99999
    assert figures["features dali fp32 vs CPU fp32"] > 0.999
    assert figures["features dali bf16 vs CPU fp32"] > 0.99
    assert "not measured" in result.stdout  # the CUDA-graph rows, with their reason
