"""Stateless gradient compressors: ``compress(t) -> Payload``, ``decompress(payload) -> tensor``.

Each is pure (no communication) and works on the device of its input. Randomised ones own one
``torch.Generator`` per device (seed it from (seed, rank)), saved by ``state_dict``. NaN or Inf
input raises ``NonFiniteGradientError``.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Protocol

import torch
from torch import Tensor

from gradkit.compress.generators import DeviceGenerators
from gradkit.compress.payload import FLOAT_BITS, HEADER_BITS, INDEX_BITS, Payload
from gradkit.compress.signs import check_finite, pack_bits, pack_signs, unpack_bits, unpack_signs


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

    so E[Q(v)] = v. A bucket with c = 0 sends zeros. On the wire: one packed bit plane of
    signs and ceil(log2(s + 1)) packed planes of level bits, (1 + ceil(log2(s + 1))) bits per
    entry, plus a 32-bit scale per bucket.
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
        self.generators = DeviceGenerators(seed)

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
        noise = torch.rand(
            ratio.shape, generator=self.generators.on(flat.device), device=flat.device
        )
        level = floor.add_(noise.lt_(ratio.sub_(floor))).view(-1)[: flat.numel()].to(torch.uint8)
        planes = [pack_bits(flat.ge(0))] + [
            pack_bits(level.bitwise_right_shift(b).bitwise_and_(1).bool())
            for b in range(self.bits_per_entry - 1)
        ]
        bits = flat.numel() * self.bits_per_entry + FLOAT_BITS * scales.numel()
        return Payload({"planes": torch.cat(planes), "scales": scales}, bits, t.shape, t.dtype)

    def decompress(self, payload: Payload) -> Tensor:
        """Sign and level bits travel as bit planes (1 + ceil(log2(s+1)) planes of numel bits)."""
        return self.decompress_sum([payload])

    def decompress_sum(self, payloads: list[Payload]) -> Tensor:
        """The sum of several payloads' decompressions, decoded in one vectorised pass."""
        first, count, n = payloads[0], len(payloads), payloads[0].numel
        planes = torch.stack([p.tensors["planes"] for p in payloads])
        bits = unpack_bits(planes.view(-1), planes.numel() * 8)
        bits = bits.view(count, self.bits_per_entry, -1)[:, :, :n].float()
        level = torch.zeros(count, n, device=planes.device)
        for b in range(1, self.bits_per_entry):
            level.add_(bits[:, b], alpha=2 ** (b - 1))
        level.mul_(bits[:, 0].mul_(2).sub_(1))
        scales = torch.stack([p.tensors["scales"] for p in payloads]) / self.levels
        level.mul_(scales.repeat_interleave(self.bucket_size, dim=1)[:, :n])
        return level.sum(0).to(first.dtype).view(first.shape)

    def state_dict(self) -> dict[str, Any]:
        return self.generators.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generators.load_state_dict(state)


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
        return sparse_to_dense([payload])

    def decompress_sum(self, payloads: list[Payload]) -> Tensor:
        return sparse_to_dense(payloads)


def sparse_payload(values: Tensor, indices: Tensor, like: Tensor) -> Payload:
    bits = values.numel() * (FLOAT_BITS + INDEX_BITS) + HEADER_BITS
    return Payload(
        {"values": values, "indices": indices.to(torch.int32)}, bits, like.shape, like.dtype
    )


def sparse_to_dense(payloads: list[Payload]) -> Tensor:
    """The sum of sparse payloads as a dense tensor (one payload: its decompression)."""
    first = payloads[0]
    dense = torch.zeros(first.numel, dtype=first.dtype, device=first.tensors["values"].device)
    indices = torch.cat([p.tensors["indices"] for p in payloads]).long()
    values = torch.cat([p.tensors["values"] for p in payloads]).to(first.dtype)
    return dense.index_add_(0, indices, values).view(first.shape)
