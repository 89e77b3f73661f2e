"""Learnable memory of normal-segment prototypes, read by cosine attention.

The bank holds ``M`` slots ``[M, C]`` in an ``nn.Parameter``; they are *trained by gradient*
together with the rest of the scorer (no moving-average or k-means updates), through three paths:

1. the read-out feeds the scoring head (the head learns what "far from every prototype" means);
2. the reconstruction error of *normal* videos (:func:`memtsm.model.memory_reconstruction_loss`)
   pulls slots towards normal embeddings -- and the embeddings towards the slots;
3. the slot-diversity regulariser (:meth:`MemoryBank.regularizer`) keeps slots from collapsing
   onto one prototype.

Read, for a segment embedding ``x`` (all in the unit-sphere geometry of cosine similarity)::

    q = x / ||x||                      query on the unit sphere
    K = rows of slots / their norms    keys on the unit sphere   [M, C]
    a = softmax(q K^T / temperature)   addressing weights        [M]
    r = a K                            unit-scale read-out (convex mix of keys, ||r|| <= 1)
    readout = ||x|| * r                read-out rescaled to the query's norm
    recon_error = ||q - r||^2          squared L2 distance, in [0, 4]

``recon_error`` is the *sum* (not the mean) of squared differences over the ``C`` channels so that
its scale does not shrink with the width ``C``. ``readout`` is rescaled to the norm of ``x`` so
that ``x - readout = ||x|| (q - r)`` is commensurate with ``x`` in the scoring head.

Everything is per segment: the memory has no temporal reach (receptive field 0).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._checks import check_sequence
from .config import DEFAULT_MEM_SIZE, DEFAULT_MEM_TEMPERATURE

#: Floor of vector norms before division (keeps all-zero embeddings finite).
NORM_EPS = 1e-8


class MemoryRead(NamedTuple):
    """Result of :meth:`MemoryBank.forward`.

    Attributes:
        readout: ``[B, T, C]`` memory read-out, rescaled to the norm of each query.
        attention: ``[B, T, M]`` softmax addressing weights (rows sum to 1).
        recon_error: ``[B, T]`` squared L2 distance between the unit query and the unit-scale
            read-out, in ``[0, 4]``.
    """

    readout: Tensor
    attention: Tensor
    recon_error: Tensor


class MemoryBank(nn.Module):
    """``M`` learnable prototype slots read by temperature-scaled cosine attention.

    Args:
        mem_size: M, number of slots.
        channels: C, width of the slots and of the queries.
        temperature: Softmax temperature of the addressing (> 0); lower is sharper.
    """

    #: The read is per segment: no temporal reach.
    receptive_field = 0

    def __init__(
        self,
        mem_size: int = DEFAULT_MEM_SIZE,
        *,
        channels: int,
        temperature: float = DEFAULT_MEM_TEMPERATURE,
    ) -> None:
        super().__init__()
        for name, value in (("mem_size", mem_size), ("channels", channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
            raise ValueError(f"temperature must be a number > 0, got {temperature!r}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        self.mem_size = mem_size
        self.channels = channels
        self.temperature = float(temperature)
        #: Prototype slots, trained by gradient (see the module docstring).
        self.slots = nn.Parameter(torch.empty(mem_size, channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise the slots (semi-)orthogonally, i.e. maximally diverse on the unit sphere."""
        nn.init.orthogonal_(self.slots)

    def keys(self) -> Tensor:
        """Return the L2-normalised slots.

        Shape:
            - output: ``[M, C]``
        """
        return F.normalize(self.slots, dim=-1, eps=NORM_EPS)

    def forward(self, x: Tensor) -> MemoryRead:
        """Read the memory for every segment embedding.

        Args:
            x: Segment embeddings (queries).

        Returns:
            :class:`MemoryRead` with the read-out, the addressing weights and the reconstruction
            error. An all-zero query gets a uniform address, a zero read-out and error
            ``||r||^2``.

        Shape:
            - x: ``[B, T, C]``
            - readout: ``[B, T, C]``
            - attention: ``[B, T, M]``
            - recon_error: ``[B, T]``

        Raises:
            ValueError: If ``x`` is not ``[B, T, channels]``.
        """
        check_sequence(x, "x", self.channels)
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(NORM_EPS)
        query = x / norm
        keys = self.keys()
        attention = torch.softmax(query @ keys.t() / self.temperature, dim=-1)
        unit_read = attention @ keys
        recon_error = (query - unit_read).pow(2).sum(dim=-1)
        return MemoryRead(readout=unit_read * norm, attention=attention, recon_error=recon_error)

    def regularizer(self) -> Tensor:
        """Slot-diversity penalty ``||K K^T - I||_F^2 / M^2`` on the L2-normalised slots ``K``.

        ``K K^T`` is the cosine-similarity (Gram) matrix of the slots; the penalty is the mean
        squared off-diagonal cosine (the diagonal is 1 by construction), so it is 0 for mutually
        orthogonal slots and ``1 - 1 / M`` when all slots coincide. It discourages the collapse
        of the memory onto a single prototype. (With ``M > C`` zero is unreachable; the penalty
        then spreads the slots as evenly as it can.)

        Returns:
            A scalar tensor.

        Shape:
            - output: ``[]``
        """
        keys = self.keys()
        gram = keys @ keys.t()
        eye = torch.eye(self.mem_size, dtype=gram.dtype, device=gram.device)
        return (gram - eye).pow(2).sum() / (self.mem_size**2)

    def extra_repr(self) -> str:
        """Return the sizes and temperature for ``repr``."""
        return f"mem_size={self.mem_size}, channels={self.channels}, temperature={self.temperature}"
