"""GGT: full-matrix adaptive regularization through a window of recent gradients.

Agarwal, Bullins, Chen, Hazan, Singh, Zhang, Zhang, "Efficient Full-Matrix Adaptive
Regularization", ICML 2019 (first released as "The Case for Full-Matrix Adaptive
Regularization", arXiv 1806.02958).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from gradkit.checks import (
    FLAG,
    FRACTION,
    NONNEGATIVE,
    POSITIVE,
    UNIT_INTERVAL,
    Rule,
    integer,
)
from gradkit.optim._base import GradientBatch, GradkitOptimizer
from gradkit.optim._vectors import GradientVector, gradient_vectors
from gradkit.optim.roots import psd_eigh
from gradkit.optim.window import decay_weights, push, weighted_gram, window_transpose_times

BETAS = Rule(
    lambda v: isinstance(v, tuple | list) and len(v) == 2 and UNIT_INTERVAL.accepts(v[0])
    and FRACTION.accepts(v[1]),
    "a pair (beta1, beta2) with beta1 in [0, 1) and beta2 in (0, 1]",
)  # fmt: skip


class GGT(GradkitOptimizer):
    r"""GGT: full-matrix AdaGrad restricted to the span of the last ``window`` gradients.

    With the decayed window :math:`G_t = [g_t, \beta_2 g_{t-1}, \ldots, \beta_2^{r-1}
    g_{t-r+1}] \in \mathbb{R}^{d\times r}` and the momentum :math:`m_t = \beta_1 m_{t-1} +
    (1-\beta_1) g_t` (:math:`m_0 = 0`), the step is the paper's

    .. math::
        x_{t+1} = x_t - \mathrm{lr}\,\bigl[(G_t G_t^\top)^{1/2} + \epsilon I\bigr]^{-1} m_t.

    It is computed without any :math:`d\times d` matrix: with :math:`G_t^\top G_t = V
    \operatorname{diag}(\sigma^2) V^\top` (an :math:`r\times r` float64 ``eigh``),

    .. math::
        \bigl[(GG^\top)^{1/2} + \epsilon I\bigr]^{-1} m = \tfrac{1}{\epsilon}\bigl(m - G V
        \operatorname{diag}\bigl(\tfrac{1}{\sigma(\sigma+\epsilon)}\bigr) V^\top G^\top m\bigr),

    exact algebra that stays finite as :math:`\sigma \to 0`; eigenvalues :math:`\sigma^2` at
    the float64 decomposition's rounding level (below ``finfo(float64).eps * r * max(sigma^2)``)
    are dropped, the limit of their term being 0. Outside the window's span the step is
    :math:`m/\epsilon` (the paper's convention); with :math:`r \gg 1/(1-\beta_1)` the momentum
    has almost no mass there.

    **Precision.** The window holds the gradients exactly, in the parameter dtype; everything
    computed from it (Gram rows, :math:`W m`, the momentum, the in-span term and
    :math:`m - G c`) is formed in float64 and only the final direction is rounded to the
    parameter dtype. The operator divides by :math:`\epsilon` outside the window's span, so a
    cancellation done in float32 would amplify float32 rounding by :math:`\sigma_{\max}/\epsilon`;
    done in float64, float32 parameters follow the float64 formula to float32 accuracy. A float32
    window is converted in chunks of :data:`~gradkit.optim.window.CHUNK_ELEMENTS` entries.

    **Cost.** Memory: the window, ``window`` x (number of parameters) numbers in the parameter
    dtype, plus an :math:`r\times r` float64 Gram matrix and the float64 momentum. Time per
    step: the Gram matrix gains one row and column (:math:`W g`, one pass over the window),
    :math:`W m` is updated from it in :math:`O(d)`, and the step needs :math:`W^\top a` (a
    second pass), plus an :math:`O(r^3)` ``eigh``; the windows of a param group with as many
    filled rows are decomposed in one batched call (until the window is full only its filled
    rows are decomposed). A float32 window costs its float64 conversion in both passes.
    Singular values come from the Gram matrix's eigenvalues, so in float64 directions with
    :math:`\sigma` below about :math:`10^{-8}\sigma_{\max}` lose relative accuracy (the Gram
    matrix squares the conditioning).

    **Modes.** By default each parameter has its own window (a block-diagonal preconditioner).
    ``flatten=True`` treats a param group as one vector (one window over all its parameters, the
    TF reference's choice); a parameter without a gradient then contributes zeros, and its entries
    can still move through the coupling. If a window's decomposition fails (non-finite Gram
    entries after an overflow), that vector is not updated this step and its ``eigh_failures``
    counter increases.

    **Weight decay** is decoupled: :math:`x \leftarrow x(1 - \mathrm{lr}\,\lambda)`.

    Args:
        params: parameters or param groups.
        lr: step size (Adam-like values).
        window: r, the number of recent gradients kept.
        betas: :math:`(\beta_1, \beta_2)`: momentum in [0, 1) and window decay in (0, 1]
            (1: the last r gradients count equally, the paper's setting).
        eps: :math:`\epsilon > 0`, added to the root.
        weight_decay: decoupled decay :math:`\lambda \ge 0`.
        flatten: one window per param group instead of one per parameter.
        maximize: ascend instead of descend.
        check_finite: raise on NaN/Inf gradients before anything changes.
    """

    _float64_state: ClassVar[frozenset[str]] = frozenset(
        {"gram", "exp_avg", "window_exp_avg", "flat_step"}
    )
    _checks: ClassVar[dict[str, Rule]] = {
        "lr": NONNEGATIVE,
        "window": integer(1),
        "betas": BETAS,
        "eps": POSITIVE,
        "weight_decay": NONNEGATIVE,
        "flatten": FLAG,
        "maximize": FLAG,
    }

    def __init__(
        self,
        params,
        lr: float,
        window: int = 200,
        betas: tuple[float, float] = (0.9, 1.0),
        eps: float = 1e-4,
        *,
        weight_decay: float = 0.0,
        flatten: bool = False,
        maximize: bool = False,
        check_finite: bool = True,
    ) -> None:
        defaults = {
            "lr": lr,
            "window": window,
            "betas": tuple(betas) if isinstance(betas, list) else betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "flatten": flatten,
            "maximize": maximize,
            "check_finite": check_finite,
        }
        super().__init__(params, defaults)

    @staticmethod
    def _window_state(vector: GradientVector, group) -> dict[str, Tensor]:
        state, g = vector.state, vector.grad
        if "window" not in state:
            r = group["window"]
            state["window"] = g.new_zeros(r, g.numel())
            state["gram"] = torch.zeros(r, r, dtype=torch.float64, device=g.device)
            state["exp_avg"] = torch.zeros_like(g, dtype=torch.float64)
            state["window_exp_avg"] = torch.zeros(r, dtype=torch.float64, device=g.device)
            state["eigh_failures"] = torch.zeros((), dtype=torch.int64)
        return state

    def _update(self, batch: GradientBatch, foreach: bool) -> None:
        group = batch.group
        beta1, beta2 = group["betas"]
        vectors = gradient_vectors(self, batch)
        by_size: dict[int, list] = {}  # windows by number of filled rows (filled first)
        for vector in vectors:
            state, g = self._window_state(vector, group), vector.grad
            count = vector.step - 1  # gradients pushed before this one
            window, m, wm = state["window"], state["exp_avg"], state["window_exp_avg"]
            slot = count % window.shape[0]
            # W m_{t-1} once row `slot` holds g_t; then W m_t = b1 W m_{t-1} + (1-b1) W g_t
            g64 = g.to(torch.float64)
            g_dot_m = torch.dot(g64, m)
            row = push(window, state["gram"], g, count)
            wm[slot] = g_dot_m
            wm.mul_(beta1).add_(row, alpha=1 - beta1)
            m.mul_(beta1).add_(g64, alpha=1 - beta1)
            filled = min(count + 1, window.shape[0])
            weights = decay_weights(count + 1, window.shape[0], beta2, g.device)[:filled]
            gram = weighted_gram(state["gram"][:filled, :filled], weights)
            by_size.setdefault(filled, []).append((vector, weights, gram))
        for members in by_size.values():
            values, bases, ok = psd_eigh(torch.stack([gram for _, _, gram in members]))
            for (vector, weights, _), sigma_sq, basis, good in zip(
                members, values, bases, ok, strict=True
            ):
                if not bool(good):
                    vector.state["eigh_failures"].add_(1)
                    continue
                direction = self._direction(vector.state, weights, sigma_sq, basis, group["eps"])
                vector.apply(direction, group["lr"], group["weight_decay"])

    @staticmethod
    def _direction(state, weights: Tensor, sigma_sq: Tensor, basis: Tensor, eps: float) -> Tensor:
        r""":math:`[(GG^\top)^{1/2} + \epsilon I]^{-1} m` through the r x r factorisation."""
        filled = len(weights)
        window, m = state["window"][:filled], state["exp_avg"]
        floor = torch.finfo(torch.float64).eps * filled * sigma_sq.max()
        sigma = sigma_sq.sqrt()
        keep = sigma_sq > floor
        scale = torch.where(keep, 1 / (sigma * (sigma + eps)).clamp(min=1e-300), 0.0)
        projected = basis.mT @ (weights * state["window_exp_avg"][:filled])
        coefficients = weights * (basis @ (scale * projected))
        return (m - window_transpose_times(window, coefficients)) / eps
