r"""The spectrum of a window of recent gradients (GGT's "the gradient window is low-rank").

For a window :math:`G = [g_1, \ldots, g_r]` its singular values :math:`\sigma_1 \ge \ldots \ge
\sigma_r` are the square roots of the eigenvalues of the :math:`r\times r` Gram matrix
:math:`G^\top G`, and the *mass* of the top k is :math:`\sum_{i\le k}\sigma_i^2 / \sum_i
\sigma_i^2`, the share of :math:`\|G\|_F^2` they carry. The window comes from a
:class:`~gradkit.optim.GGT` optimizer's state, from a :class:`GradientWindow` recorded alongside
any optimizer, or from a tensor whose rows are gradients.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from gradkit.checks import InputError
from gradkit.optim import GGT
from gradkit.optim.window import decay_weights, push, singular_values, weighted_gram


@dataclass
class WindowSpectrum:
    """Singular values of a gradient window, largest first (float64), and how many gradients
    it held."""

    singular_values: Tensor
    gradients: int

    def mass_in_top(self, k: int) -> float:
        """Share of the squared Frobenius norm carried by the ``k`` largest singular values."""
        if k < 1:
            raise InputError(f"k must be >= 1, got {k!r}")
        energy = self.singular_values.square()
        total = float(energy.sum())
        return float(energy[:k].sum()) / total if total > 0 else float("nan")

    def stable_rank(self) -> float:
        r""":math:`\|G\|_F^2 / \sigma_1^2`, between 1 and the rank."""
        top = float(self.singular_values[0]) ** 2
        return float(self.singular_values.square().sum()) / top if top > 0 else float("nan")


class GradientWindow:
    """The last ``size`` gradients of some parameters, recorded alongside any optimizer.

    Call :meth:`record` after each ``backward()``; the gradients of all ``params`` are
    concatenated into one vector (zeros for a parameter without a gradient) and kept in a ring
    buffer with its Gram matrix, refreshed in :math:`O(\\text{size}\\cdot d)` per record.
    Memory: ``size`` x (number of parameters) numbers.
    """

    def __init__(self, params: Iterable[Tensor], size: int = 200) -> None:
        self.params = [p for p in params]
        if size < 1:
            raise InputError(f"size must be >= 1, got {size!r}")
        if not self.params:
            raise InputError("GradientWindow needs at least one parameter")
        first = self.params[0]
        d = sum(p.numel() for p in self.params)
        self.window = torch.zeros(size, d, dtype=first.dtype, device=first.device)
        self.gram = torch.zeros(size, size, dtype=torch.float64, device=first.device)
        self.count = 0

    @torch.no_grad()
    def record(self) -> None:
        """Append the parameters' current gradients to the window."""
        flat = torch.cat(
            [
                (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                for p in self.params
            ]
        )
        if not bool(torch.isfinite(flat).all()):
            raise FloatingPointError("GradientWindow.record(): a gradient contains NaN or Inf")
        push(self.window, self.gram, flat, self.count)
        self.count += 1

    def clear(self) -> None:
        self.window.zero_()
        self.gram.zero_()
        self.count = 0

    def spectrum(self) -> WindowSpectrum:
        weights = decay_weights(self.count, self.window.shape[0], 1.0, self.gram.device)
        return WindowSpectrum(
            singular_values(weighted_gram(self.gram, weights)), min(self.count, len(weights))
        )


def window_spectrum(source: GGT | GradientWindow | Tensor, param: Tensor | None = None):
    """The :class:`WindowSpectrum` of a gradient window.

    ``source`` is a :class:`GradientWindow`, a tensor whose rows are gradients, or a
    :class:`~gradkit.optim.GGT` optimizer; for GGT the window is the decayed one its step uses,
    of ``param`` (per-parameter mode) or of the param group whose first parameter is ``param``
    (flattened mode); ``param`` defaults to the first parameter.
    """
    if isinstance(source, GradientWindow):
        return source.spectrum()
    if isinstance(source, Tensor):
        rows = source.reshape(len(source), -1).to(torch.float64)
        return WindowSpectrum(singular_values(rows @ rows.T), len(source))
    if isinstance(source, GGT):
        param = source.param_groups[0]["params"][0] if param is None else param
        state = source.state[param]
        if "gram" not in state:
            raise InputError("this parameter has no GGT window yet (no step was taken with it)")
        group = next(g for g in source.param_groups if any(p is param for p in g["params"]))
        count = int(state["flat_step"] if "flat_step" in state else state["step"])
        size = state["gram"].shape[0]
        weights = decay_weights(count, size, group["betas"][1], state["gram"].device)
        return WindowSpectrum(
            singular_values(weighted_gram(state["gram"], weights)), min(count, size)
        )
    raise TypeError(f"window_spectrum: expected GGT, GradientWindow or Tensor, got {type(source)}")
