"""Small shared builders for the model tests."""

from __future__ import annotations

import torch

from memtsm.model import MemTSMScorer, MILScorer, ScorerConfig


def tiny_config(**overrides: object) -> ScorerConfig:
    """A small MemTSM config: fast on CPU, still exercising every component."""
    fields: dict[str, object] = dict(
        feature_dim=6, channels=16, num_blocks=2, n_div=4, mem_size=5, se_window=5, head_hidden=8
    )
    fields.update(overrides)
    return ScorerConfig(**fields)  # type: ignore[arg-type]


def tiny_scorer(
    seed: int = 0, dtype: torch.dtype = torch.float32, **overrides: object
) -> MemTSMScorer:
    torch.manual_seed(seed)
    return MemTSMScorer(tiny_config(**overrides)).to(dtype).eval()


def tiny_mil(seed: int = 0, dtype: torch.dtype = torch.float32, **overrides: object) -> MILScorer:
    fields: dict[str, object] = dict(kind="mil-mlp", feature_dim=6, mil_hidden=(12, 4))
    fields.update(overrides)
    torch.manual_seed(seed)
    return MILScorer(ScorerConfig(**fields)).to(dtype).eval()  # type: ignore[arg-type]


def lengths_mask(lengths: list[int], time: int) -> torch.Tensor:
    """Prefix padding mask ``[B, T]`` from per-video lengths."""
    return torch.arange(time).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
