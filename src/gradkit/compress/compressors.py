"""Stateless gradient compressors: ``compress(t) -> Payload``, ``decompress(payload) -> tensor``.

Each is pure (no communication). Randomised ones own a ``torch.Generator`` (seed it from
(seed, rank)), saved by ``state_dict``. NaN or Inf input raises ``NonFiniteGradientError``.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Protocol

import torch
from torch import Tensor

from gradkit.compress.payload import FLOAT_BITS, HEADER_BITS, INDEX_BITS, Payload
from gradkit.compress.signs import check_finite, pack_signs, unpack_signs


class Compressor(Protocol):
    def compress(self, t: Tensor) -> Payload: ...

    def decompress(self, payload: Payload) -> Tensor: ...


class Sign:
    """1-bit sign compression: sign(t_i), with sign(0) = +1, packed 8 per byte (numel bits on
    the wire). Decompresses to +1/-1; scale it with the step size (signSGD)."""

    def compress(self, t: Tensor) -> Payload:
        return Payload({"signs": pack_signs(t)}, t.numel(), t.shape, t.dtype)

    def decompress(self, payload: Payload) -> Tensor:
        signs = unpack_signs(payload.tensors["signs"], payload.numel, payload.dtype)
        return signs.view(payload.shape)


class QSGD:
    r"""Stochastic uniform quantization with ``levels`` = s levels per bucket (Alistarh et al.).

    For each bucket v of ``bucket_size`` entries with scale c = ||v||_2 (``norm="l2"``, QSGD)
    or ||v||_inf (``norm="max"``): with r_i = s |v_i| / c and l_i = floor(r_i),

    .. math::
        Q(v)_i = c\,\mathrm{sign}(v_i)\,\xi_i / s, \qquad
        \xi_i = l_i + 1 \text{ with probability } r_i - l_i, \text{ else } l_i,

    so E[Q(v)] = v. A bucket with c = 0 sends zeros. Wire size: (1 + ceil(log2(s + 1))) bits
    per entry (sign and level) plus 32 bits per bucket scale.
    """

    def __init__(
        self,
        levels: int,
        bucket_size: int = 512,
        norm: Literal["l2", "max"] = "l2",
        seed: int = 0,
    ):
        if not isinstance(levels, int) or not 1 <= levels <= 127:
            raise ValueError(f"levels must be an integer in [1, 127], got {levels!r}")
        if not isinstance(bucket_size, int) or bucket_size < 1:
            raise ValueError(f"bucket_size must be a positive integer, got {bucket_size!r}")
        if norm not in ("l2", "max"):
            raise ValueError(f"norm must be 'l2' or 'max', got {norm!r}")
        self.levels, self.bucket_size, self.norm = levels, bucket_size, norm
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def bits_per_entry(self) -> int:
        return 1 + math.ceil(math.log2(self.levels + 1))

    def compress(self, t: Tensor) -> Payload:
        check_finite(t)
        flat = t.detach().reshape(-1).float()
        pad = -flat.numel() % self.bucket_size
        buckets = torch.nn.functional.pad(flat, (0, pad)).view(-1, self.bucket_size)
        if self.norm == "l2":  # in float64: squares of large entries overflow float32
            scales = torch.linalg.vector_norm(buckets.double(), dim=1).float()
        else:
            scales = buckets.abs().amax(dim=1)
        ratio = buckets.abs().div_(scales.clamp_min(1e-38).unsqueeze(1)).mul_(self.levels)
        floor = ratio.floor()
        noise = torch.rand(ratio.shape, generator=self.generator)
        level = floor.add_(noise.lt_(ratio.sub_(floor)))
        signed = level.mul_(torch.sign(buckets)).to(torch.int8)
        bits = flat.numel() * self.bits_per_entry + FLOAT_BITS * scales.numel()
        return Payload({"levels": signed.view(-1), "scales": scales}, bits, t.shape, t.dtype)

    def decompress(self, payload: Payload) -> Tensor:
        levels = payload.tensors["levels"].view(-1, self.bucket_size).float()
        values = levels.mul_(payload.tensors["scales"].unsqueeze(1) / self.levels)
        return values.view(-1)[: payload.numel].to(payload.dtype).view(payload.shape)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


class TopK:
    """The ``density`` fraction of entries largest in magnitude (k = ceil(density * numel)),
    exactly (``torch.topk``). Wire size: 32-bit values and 32-bit indices plus a 32-bit length
    header."""

    def __init__(self, density: float):
        if not (isinstance(density, int | float) and 0 < density <= 1):
            raise ValueError(f"density must be in (0, 1], got {density!r}")
        self.density = density

    def count(self, numel: int) -> int:
        return max(1, math.ceil(self.density * numel))

    def compress(self, t: Tensor) -> Payload:
        check_finite(t)
        flat = t.detach().reshape(-1)
        indices = flat.abs().topk(self.count(flat.numel()), sorted=False).indices
        return sparse_payload(flat[indices], indices, t)

    def decompress(self, payload: Payload) -> Tensor:
        return sparse_to_dense(payload)


def sparse_payload(values: Tensor, indices: Tensor, like: Tensor) -> Payload:
    bits = values.numel() * (FLOAT_BITS + INDEX_BITS) + HEADER_BITS
    return Payload(
        {"values": values, "indices": indices.to(torch.int32)}, bits, like.shape, like.dtype
    )


def sparse_to_dense(payload: Payload) -> Tensor:
    dense = torch.zeros(payload.numel, dtype=payload.dtype)
    dense[payload.tensors["indices"].long()] = payload.tensors["values"].to(payload.dtype)
    return dense.view(payload.shape)
