r"""A window of the last r gradients with its Gram matrix, updated in O(r d) per gradient.

The window is a ``(r, d)`` ring buffer: gradient number n (0-based) lives in row ``n % r``. Its
Gram matrix ``gram[i, j] = <row_i, row_j>`` is kept in float64 and refreshed one row and one
column per new gradient. The decayed window of GGT, :math:`G = [g_t, \beta g_{t-1}, \ldots]`,
is the raw window scaled by :math:`\beta^{\text{age}}` per row, so its Gram matrix is
:math:`D\,\text{gram}\,D` with :math:`D = \operatorname{diag}(\beta^{\text{age}})`, and rows not
yet filled get weight 0.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gradkit.optim.roots import psd_eigh

CHUNK_ELEMENTS = 1 << 22
"""Window entries converted to float64 at a time (32 MiB), bounding the temporary memory."""


def _column_chunks(window: Tensor):
    """Column ranges of ``window`` small enough to convert to float64 one at a time."""
    if window.dtype == torch.float64:
        yield slice(None)
        return
    width = max(1, CHUNK_ELEMENTS // max(1, window.shape[0]))
    for start in range(0, window.shape[1], width):
        yield slice(start, start + width)


def window_times(window: Tensor, vector: Tensor) -> Tensor:
    """:math:`W v` accumulated in float64 (``W`` is ``(r, d)``, ``v`` is ``(d,)``).

    The window holds gradients exactly in their own dtype; products and sums are formed in
    float64, so a float32 window's Gram matrix resolves singular values over as many decades
    as a float64 one's.
    """
    out = torch.zeros(window.shape[0], dtype=torch.float64, device=window.device)
    for columns in _column_chunks(window):
        out += window[:, columns].to(torch.float64) @ vector[columns].to(torch.float64)
    return out


def window_transpose_times(window: Tensor, coefficients: Tensor) -> Tensor:
    """:math:`W^\top c` in float64 (``c`` is ``(r,)``, float64)."""
    out = torch.empty(window.shape[1], dtype=torch.float64, device=window.device)
    for columns in _column_chunks(window):
        out[columns] = window[:, columns].mT.to(torch.float64) @ coefficients
    return out


def push(window: Tensor, gram: Tensor, gradient: Tensor, count: int) -> Tensor:
    """Store ``gradient`` as gradient number ``count`` and refresh its Gram row and column.

    Returns the new row, :math:`W g` (float64), the one pass over the window this costs.
    """
    slot = count % window.shape[0]
    window[slot].copy_(gradient)
    row = window_times(window, window[slot])
    gram[slot] = row
    gram[:, slot] = row
    return row


def decay_weights(count: int, size: int, beta: float, device=None) -> Tensor:
    r""":math:`\beta^{\text{age}}` per row after ``count`` gradients (0 for rows not filled yet)."""
    slots = torch.arange(size, device=device)
    ages = (count - 1 - slots) % size
    weights = torch.tensor(beta, dtype=torch.float64, device=device).pow(ages)
    return torch.where(ages < count, weights, torch.zeros_like(weights))


def weighted_gram(gram: Tensor, weights: Tensor) -> Tensor:
    """:math:`G^\\top G` of the decayed window: ``D gram D``."""
    return weights[:, None] * gram * weights[None, :]


def singular_values(gram: Tensor) -> Tensor:
    """Singular values of a window from its Gram matrix, largest first (float64)."""
    values, _, ok = psd_eigh(gram)
    if not bool(ok):
        raise FloatingPointError("the window's Gram matrix is not finite")
    return values.flip(-1).sqrt()
