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


def push(window: Tensor, gram: Tensor, gradient: Tensor, count: int) -> Tensor:
    """Store ``gradient`` as gradient number ``count`` and refresh its Gram row and column.

    Returns the new row, :math:`W g` (float64), the one pass over the window this costs.
    """
    slot = count % window.shape[0]
    window[slot].copy_(gradient)
    row = (window @ window[slot]).to(torch.float64)
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
