"""What a compressor puts on the wire."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

FLOAT_BITS = 32
INDEX_BITS = 32
HEADER_BITS = 32  # the length of a variable-size message


@dataclass(frozen=True)
class Payload:
    """The tensors sent for one compressed tensor, and their exact size on the wire in bits
    (values at their encoded width + indices + scales + a length header for variable-size
    messages). ``shape`` and ``dtype`` are those of the original tensor."""

    tensors: dict[str, Tensor]
    bits: int
    shape: torch.Size
    dtype: torch.dtype

    @property
    def numel(self) -> int:
        return self.shape.numel()

    @property
    def ratio(self) -> float:
        """Compression ratio against 32-bit floats: 32 * numel / bits."""
        return FLOAT_BITS * self.numel / self.bits if self.bits else float("inf")
