"""1-bit sign codes: packing 8 signs per byte, and the majority vote over packed codes.

Convention for codes: a coordinate is coded 1 (sign +1) when it is >= 0, so sign(0) = +1 (a
1-bit code has no zero), and a tied vote resolves to +1. Bits are packed most significant first,
as ``numpy.packbits`` does; a code of n signs takes ceil(n/8) bytes.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import torch
from torch import Tensor

from gradkit.checks import InputError
from gradkit.optim import NonFiniteGradientError

# Multiplying eight 0/1 bytes (one little-endian int64) by this gathers byte k into bit 63 - k,
# so the top byte holds them most significant first (no carries reach it).
_GATHER = 0x8040201008040201 - (1 << 64)
# Multiplying a byte by this copies it into all eight bytes; the mask keeps bit 7 - k of byte k.
_SPREAD = 0x0101010101010101
_SELECT = 0x0102040810204080


def check_finite(t: Tensor, what: str = "tensor") -> None:
    """Raise if ``t`` holds NaN or Inf (one min/max pass: NaN propagates through both)."""
    if t.numel() == 0:
        return
    low, high = torch.aminmax(t.detach())
    if not bool(torch.isfinite(low) & torch.isfinite(high)):
        raise NonFiniteGradientError(f"the {what} to compress contains NaN or Inf")


def pack_bits(bits: Tensor) -> Tensor:
    """A boolean tensor (flattened) packed 8 per byte, most significant bit first."""
    bits = bits.reshape(-1)
    pad = -bits.numel() % 8
    if pad:
        bits = torch.cat([bits, bits.new_zeros(pad)])
    words = bits.view(torch.uint8).view(torch.int64)
    return ((words * _GATHER) >> 56).to(torch.uint8)


def _check_code(packed: Tensor, numel: int) -> None:
    if packed.dtype != torch.uint8 or packed.dim() != 1:
        raise InputError(
            f"packed must be a 1-D uint8 tensor, got {packed.dtype} {tuple(packed.shape)}"
        )
    if not 0 <= numel <= 8 * packed.numel():
        raise InputError(f"numel {numel} does not fit a code of {packed.numel()} bytes")


def unpack_bits(packed: Tensor, numel: int) -> Tensor:
    """The first ``numel`` bits of a packed code as a uint8 tensor of 0/1 (inverse of
    :func:`pack_bits`)."""
    _check_code(packed, numel)
    spread = (packed.to(torch.int64) * _SPREAD) & _SELECT
    return spread.view(torch.uint8)[:numel].clamp_(max=1)


def pack_signs(t: Tensor, check: bool = True) -> Tensor:
    """The signs of ``t`` (flattened; t_i >= 0 codes as 1) packed 8 per byte, most significant
    bit first: a uint8 tensor of ceil(numel/8) bytes. NaN or Inf raise (unless ``check`` is
    False: the caller has checked).

    CPU tensors of a dtype numpy has are packed by ``numpy.packbits`` on a zero-copy view (its
    comparison is about 4x faster than torch's at one thread); others by :func:`pack_bits`."""
    if check:
        check_finite(t)
    t = t.detach()
    if t.device.type == "cpu" and t.dtype in (torch.float16, torch.float32, torch.float64):
        return torch.from_numpy(np.packbits(t.reshape(-1).numpy() >= 0))
    return pack_bits(t.ge(0))


@cache
def _sign_table(device: torch.device, dtype: torch.dtype) -> Tensor:
    """Row b: the 8 signs (+1/-1, most significant bit first) that byte b codes."""
    bits = unpack_bits(torch.arange(256, dtype=torch.uint8), 8 * 256).view(256, 8)
    return (bits.to(dtype) * 2 - 1).to(device)


def unpack_signs(
    packed: Tensor, numel: int, dtype: torch.dtype = torch.float32, out: Tensor | None = None
) -> Tensor:
    """The first ``numel`` signs of a packed code as a tensor of +1/-1 (inverse of
    :func:`pack_signs`): one table look-up of 8 signs per byte. With ``out`` (``numel``
    contiguous elements on the code's device), the signs are written there and it is
    returned."""
    _check_code(packed, numel)
    whole, rest = divmod(numel, 8)
    dtype = out.dtype if out is not None else dtype
    if out is None:
        out = torch.empty(numel, dtype=dtype, device=packed.device)
    elif out.numel() != numel or not out.is_contiguous() or out.device != packed.device:
        raise InputError(f"out must be {numel} contiguous elements on {packed.device}")
    table = _sign_table(packed.device, dtype)
    torch.index_select(table, 0, packed[:whole].int(), out=out[: 8 * whole].view(whole, 8))
    if rest:
        out[8 * whole :] = table.index_select(0, packed[whole:].int())[0, :rest]
    return out


def majority_vote(
    packed_signs: list[Tensor], numel: int, dtype: torch.dtype = torch.float32
) -> Tensor:
    """sign(sum_m s_m) over workers' packed sign codes s_m, as +1/-1 with ties going to +1."""
    if not packed_signs:
        raise InputError("majority_vote needs at least one packed code")
    sizes = {p.numel() for p in packed_signs}
    if len(sizes) != 1:
        raise InputError(f"packed codes differ in length: {sorted(sizes)} bytes")
    votes = unpack_signs(packed_signs[0], numel, dtype)
    for packed in packed_signs[1:]:
        votes.add_(unpack_signs(packed, numel, dtype))
    return votes.ge_(0).mul_(2).sub_(1)
