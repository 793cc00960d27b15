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

from gradkit.checks import InputError
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
            raise InputError(f"levels must be an integer in [1, 127], got {levels!r}")
        if not isinstance(bucket_size, int) or bucket_size < 1:
            raise InputError(f"bucket_size must be a positive integer, got {bucket_size!r}")
        if norm not in ("l2", "max"):
            raise InputError(f"norm must be 'l2' or 'max', got {norm!r}")
        self.levels, self.bucket_size, self.norm = levels, bucket_size, norm
        self.generators = DeviceGenerators(seed)

    @property
    def bits_per_entry(self) -> int:
        return 1 + math.ceil(math.log2(self.levels + 1))

    def compress(self, t: Tensor) -> Payload:
        return self.quantize(t)[0]

    def quantize(self, t: Tensor, check: bool = True) -> tuple[Payload, Tensor]:
        """The payload of Q(t) and Q(t) itself (what :meth:`decompress` would return, without
        decoding the payload again). ``check=False`` skips the NaN/Inf check (done by the
        caller)."""
        if check:
            check_finite(t)
        flat = t.detach().reshape(-1).float()
        numel = flat.numel()
        ratio = flat.abs()
        if self.norm == "l2":  # in float64: squares of large entries overflow float32
            scales = self._per_bucket(flat.double(), lambda b: torch.linalg.vector_norm(b, dim=1))
            scales = scales.float()
        else:
            scales = self._per_bucket(ratio, lambda b: b.amax(dim=1))
        self._scale_buckets(ratio, scales.clamp_min(1e-38), divide=True)
        ratio.mul_(self.levels)  # after the division: |v_i| / c <= 1 exactly, so l_i <= s
        level = ratio.floor()
        noise = torch.rand(numel, generator=self.generators.on(flat.device), device=flat.device)
        level.add_(noise.lt_(ratio.sub_(level)))
        codes = level.to(torch.uint8)
        planes = [pack_signs(flat, check=False)] + [
            pack_bits(codes.bitwise_right_shift(b).bitwise_and_(1).view(torch.bool))
            for b in range(self.bits_per_entry - 1)
        ]
        bits = numel * self.bits_per_entry + FLOAT_BITS * scales.numel()
        payload = Payload({"planes": torch.cat(planes), "scales": scales}, bits, t.shape, t.dtype)
        self._scale_buckets(level, scales / self.levels)
        return payload, level.copysign_(flat).to(t.dtype).view(t.shape)

    def _per_bucket(self, t: Tensor, reduce) -> Tensor:
        """``reduce`` (rows to one value each) over the buckets of a flat tensor; the last
        bucket may be short."""
        full = t.numel() - t.numel() % self.bucket_size
        parts = [reduce(t[:full].view(-1, self.bucket_size))]
        if full < t.numel():
            parts.append(reduce(t[full:].unsqueeze(0)))
        return torch.cat(parts)

    def _scale_buckets(self, t: Tensor, factors: Tensor, divide: bool = False) -> None:
        """Multiply (or divide) each bucket of a flat tensor in place by its factor."""
        full = t.numel() - t.numel() % self.bucket_size
        op = Tensor.div_ if divide else Tensor.mul_
        op(t[:full].view(-1, self.bucket_size), factors[: full // self.bucket_size, None])
        if full < t.numel():
            op(t[full:], factors[-1])

    def decompress(self, payload: Payload) -> Tensor:
        """Sign and level bits travel as bit planes (1 + ceil(log2(s+1)) planes of numel bits)."""
        return self.decompress_sum([payload])

    def decompress_sum(self, payloads: list[Payload]) -> Tensor:
        """The sum of several payloads' decompressions: per payload, the signed level is
        assembled in int8 and converted once, then scaled bucket by bucket."""
        first, numel = payloads[0], payloads[0].numel
        nbytes = math.ceil(numel / 8)
        device = first.tensors["planes"].device
        total = torch.zeros(numel, device=device)
        for payload in payloads:
            planes = payload.tensors["planes"]
            level = torch.zeros(numel, dtype=torch.int8, device=device)
            for b in range(1, self.bits_per_entry):
                plane = unpack_bits(planes[b * nbytes : (b + 1) * nbytes], numel)
                level.add_(plane.view(torch.int8).bitwise_left_shift_(b - 1))
            sign = unpack_bits(planes[:nbytes], numel).view(torch.int8).mul_(2).sub_(1)
            value = level.mul_(sign).float()
            self._scale_buckets(value, payload.tensors["scales"] / self.levels)
            total.add_(value)
        return total.to(first.dtype).view(first.shape)

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
            raise InputError(f"density must be in (0, 1], got {density!r}")
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
