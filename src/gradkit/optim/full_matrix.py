"""Full-matrix AdaGrad: the exact d x d method, a baseline for small d and GGT's oracle.

Duchi, Hazan, Singer, "Adaptive Subgradient Methods for Online Learning and Stochastic
Optimization", JMLR 2011; in the form of the GGT paper (epsilon added to the root).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from gradkit.checks import FLAG, NONNEGATIVE, POSITIVE, InputError, Rule, integer
from gradkit.optim._base import GradientBatch, GradkitOptimizer
from gradkit.optim._vectors import gradient_vectors
from gradkit.optim.roots import psd_eigh


class FullMatrixAdaGrad(GradkitOptimizer):
    r"""Full-matrix AdaGrad, :math:`x \leftarrow x - \mathrm{lr}\,\bigl[(\textstyle\sum_{s\le t}
    g_s g_s^\top)^{1/2} + \epsilon I\bigr]^{-1} g_t`.

    The :math:`d\times d` sum is kept in float64 and decomposed by ``eigh`` every step
    (:math:`O(d^3)`), so this is for small d: vectors longer than ``max_size`` are refused.
    It is what :class:`~gradkit.optim.GGT` computes with :math:`\beta_1 = 0`, :math:`\beta_2 = 1`
    and a window holding every gradient. ``flatten=True`` preconditions a param group as one
    vector (as GGT's flattened mode); by default each parameter is its own vector. If the
    decomposition fails, that vector is not updated and its ``eigh_failures`` counter increases.

    Args:
        params: parameters or param groups.
        lr: step size.
        eps: :math:`\epsilon > 0`, added to the root.
        flatten: one preconditioner per param group instead of one per parameter.
        max_size: the largest d accepted (a d x d float64 matrix is 8 d^2 bytes).
        maximize: ascend instead of descend.
        check_finite: raise on NaN/Inf gradients before anything changes.
    """

    _float64_state: ClassVar[frozenset[str]] = frozenset({"sum_outer", "flat_step"})
    _checks: ClassVar[dict[str, Rule]] = {
        "lr": NONNEGATIVE,
        "eps": POSITIVE,
        "flatten": FLAG,
        "max_size": integer(1),
        "maximize": FLAG,
    }

    def __init__(
        self,
        params,
        lr: float,
        eps: float = 1e-4,
        *,
        flatten: bool = False,
        max_size: int = 4096,
        maximize: bool = False,
        check_finite: bool = True,
    ) -> None:
        defaults = {
            "lr": lr,
            "eps": eps,
            "flatten": flatten,
            "max_size": max_size,
            "maximize": maximize,
            "check_finite": check_finite,
        }
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        sizes = [p.numel() for p in group["params"]]
        largest = sum(sizes) if group["flatten"] else max(sizes, default=0)
        if largest > group["max_size"]:
            self.param_groups.pop()
            raise InputError(
                f"FullMatrixAdaGrad: a preconditioned vector would have {largest} entries, more "
                f"than max_size={group['max_size']} (its d x d matrix takes "
                f"{8 * largest**2 / 2**30:.1f} GiB); use GGT, or raise max_size"
            )

    def _update(self, batch: GradientBatch, foreach: bool) -> None:
        group = batch.group
        for vector in gradient_vectors(self, batch):
            state, g = vector.state, vector.grad
            if "sum_outer" not in state:
                d = g.numel()
                state["sum_outer"] = torch.zeros(d, d, dtype=torch.float64, device=g.device)
                state["eigh_failures"] = torch.zeros((), dtype=torch.int64)
            g64 = g.to(torch.float64)
            state["sum_outer"].addr_(g64, g64)
            values, basis, ok = psd_eigh(state["sum_outer"])
            if not bool(ok):
                state["eigh_failures"].add_(1)
                continue
            direction = basis @ ((basis.mT @ g64) / (values.sqrt() + group["eps"]))
            vector.apply(direction, group["lr"])
