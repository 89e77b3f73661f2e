"""Memory bank: cosine addressing, read-out, reconstruction error and slot diversity."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from memtsm.model import MemoryBank


def bank(mem_size: int = 5, channels: int = 8, temperature: float = 0.1, seed: int = 0):
    torch.manual_seed(seed)
    return MemoryBank(mem_size, channels=channels, temperature=temperature)


def test_shapes_and_attention_is_a_distribution() -> None:
    memory = bank()
    read = memory(torch.randn(2, 7, 8))
    assert read.readout.shape == (2, 7, 8)
    assert read.attention.shape == (2, 7, 5)
    assert read.recon_error.shape == (2, 7)
    assert torch.all(read.attention >= 0)
    torch.testing.assert_close(read.attention.sum(-1), torch.ones(2, 7))
    assert torch.all((read.recon_error >= 0) & (read.recon_error <= 4))


def test_matches_documented_formulas() -> None:
    memory = bank().double()
    x = torch.randn(3, 4, 8, dtype=torch.float64)
    q = F.normalize(x, dim=-1)
    k = F.normalize(memory.slots.detach(), dim=-1)
    a = torch.softmax(q @ k.T / 0.1, dim=-1)
    r = a @ k
    read = memory(x)
    torch.testing.assert_close(read.attention, a)
    torch.testing.assert_close(read.readout, r * x.norm(dim=-1, keepdim=True))
    torch.testing.assert_close(read.recon_error, ((q - r) ** 2).sum(-1))


def test_query_equal_to_a_slot_is_reconstructed() -> None:
    memory = bank(temperature=0.01)
    query = 3.0 * memory.slots.detach()[2].view(1, 1, -1)  # scale does not matter (cosine)
    read = memory(query)
    assert read.attention[0, 0].argmax().item() == 2
    assert read.attention[0, 0, 2].item() > 0.99
    assert read.recon_error.item() < 1e-3


def test_slots_are_trained_by_gradient() -> None:
    memory = bank()
    assert isinstance(memory.slots, torch.nn.Parameter)
    memory(torch.randn(2, 3, 8)).recon_error.mean().backward()
    assert memory.slots.grad is not None and memory.slots.grad.abs().sum() > 0


def test_regularizer_hand_computed() -> None:
    memory = MemoryBank(2, channels=2)
    with torch.no_grad():
        memory.slots.copy_(torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    # cos = 1/sqrt(2) off the diagonal: (2 * 1/2) / 2^2 = 0.25
    torch.testing.assert_close(memory.regularizer(), torch.tensor(0.25))


def test_regularizer_extremes() -> None:
    memory = bank(mem_size=4, channels=8)
    assert memory.regularizer().item() < 1e-10  # orthogonal initialisation
    with torch.no_grad():
        memory.slots.copy_(torch.randn(1, 8).repeat(4, 1))
    torch.testing.assert_close(memory.regularizer(), torch.tensor(1 - 1 / 4))


def test_gradcheck_float64() -> None:
    memory = bank(mem_size=3, channels=4).double()
    x = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp: tuple(memory(inp)), (x,))
    assert torch.autograd.gradcheck(lambda _: memory.regularizer(), (memory.slots,))


def test_zero_query_is_finite() -> None:
    memory = bank()
    x = torch.zeros(1, 2, 8, requires_grad=True)
    read = memory(x)
    (read.readout.sum() + read.recon_error.sum()).backward()
    assert all(torch.isfinite(t).all() for t in read)
    assert torch.isfinite(x.grad).all()
    torch.testing.assert_close(read.attention, torch.full((1, 2, 5), 0.2))


def test_readable_errors() -> None:
    memory = bank()
    with pytest.raises(ValueError, match="rank"):
        memory(torch.randn(4, 8))
    with pytest.raises(ValueError, match="8 channels"):
        memory(torch.randn(1, 4, 7))
    with pytest.raises(ValueError, match="temperature"):
        MemoryBank(4, channels=8, temperature=0.0)
    with pytest.raises(ValueError, match="mem_size"):
        MemoryBank(0, channels=8)
