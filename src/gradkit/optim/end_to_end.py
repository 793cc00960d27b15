"""The end-to-end update of a depth-N linear network (Arora, Cohen & Hazan, ICML 2018, arXiv
1802.06509), as an optimizer of the product matrix W = W_N ... W_1 itself, and the balanced
deep linear regressor whose gradient descent it describes."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from gradkit.checks import NONNEGATIVE, InputError, Rule, integer
from gradkit.optim._base import GradientBatch, GradkitOptimizer


def end_to_end_direction(w: Tensor, grad: Tensor, depth: int) -> Tensor:
    """sum_{j=1..N} [W W^T]^((j-1)/N) grad [W^T W]^((N-j)/N) for a matrix W, in float64.

    With W W^T = U diag(a) U^T and W^T W = V diag(b) V^T (eigenvalues clamped at 0), the sum is
    U (K * (U^T grad V)) V^T with K_ik = sum_j a_i^((j-1)/N) b_k^((N-j)/N), where the exponent-0
    factors are exactly 1 and eigenvalues at rounding level count as 0."""
    w64, g64 = w.double(), grad.double()
    a, u = torch.linalg.eigh(w64 @ w64.T)
    b, v = torch.linalg.eigh(w64.T @ w64)
    a, b = _clean(a), _clean(b)
    kernel = torch.zeros(a.numel(), b.numel(), dtype=torch.float64, device=w.device)
    for j in range(1, depth + 1):
        left = torch.ones_like(a) if j == 1 else a.pow((j - 1) / depth)
        right = torch.ones_like(b) if j == depth else b.pow((depth - j) / depth)
        kernel += left[:, None] * right[None, :]
    return u @ (kernel * (u.T @ g64 @ v)) @ v.T


def _clean(eigenvalues: Tensor) -> Tensor:
    """Eigenvalues of a PSD Gram matrix with those below its rounding level (dimension x
    float64 epsilon x the largest) set to 0: a fractional power would turn that noise, ~1e-17,
    into ~1e-6 (its cube root)."""
    floor = eigenvalues.numel() * torch.finfo(torch.float64).eps * eigenvalues.abs().max()
    return torch.where(eigenvalues > floor, eigenvalues, torch.zeros_like(eigenvalues))


class EndToEndGD(GradkitOptimizer):
    r"""Gradient descent on W with the end-to-end update of a depth-N linear network:

    .. math::
        W \leftarrow W - \mathrm{lr} \sum_{j=1}^{N} [W W^\top]^{\frac{j-1}{N}}
        \bigl(\nabla L(W) + \lambda W\bigr) [W^\top W]^{\frac{N-j}{N}}

    which is what gradient descent at step lr on W_N ... W_1 (balanced initialisation,
    W_{j+1}^T W_{j+1} = W_j W_j^T) does to their product, to first order in lr. A parameter
    is read as a matrix (its first dimension by the rest; a vector as one row, so a single-output
    regressor's weight gives the paper's closed form W - lr ||W||^{2-2/N} (g + (N-1) Pr_W g)).
    ``depth=1`` is plain gradient descent. At W = 0 the update is 0 for N >= 2: start from a
    small balanced initialisation. The matrix powers use float64 eigendecompositions.

    Args:
        params: parameters or param groups.
        lr: step size.
        depth: N >= 1.
        weight_decay: l2 coefficient lambda >= 0 added to the gradient.
        maximize, foreach, check_finite: as for every gradkit optimizer (the update is per
            tensor, so ``foreach`` changes nothing).
    """

    _checks: ClassVar[dict[str, Rule]] = {
        "lr": NONNEGATIVE,
        "depth": integer(1),
        "weight_decay": NONNEGATIVE,
    }

    def __init__(
        self,
        params,
        lr: float,
        depth: int = 2,
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        check_finite: bool = True,
    ) -> None:
        defaults = {
            "lr": lr,
            "depth": depth,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "foreach": foreach,
            "check_finite": check_finite,
        }
        super().__init__(params, defaults)

    def _update(self, batch: GradientBatch, foreach: bool) -> None:
        lr, depth, decay = batch.group["lr"], batch.group["depth"], batch.group["weight_decay"]
        for p, g in zip(batch.params, batch.grads, strict=True):
            if p.numel() == 0:
                continue
            if decay != 0:
                g = g.add(p, alpha=decay)
            if depth == 1:
                p.add_(g, alpha=-lr)
                continue
            rows = p.shape[0] if p.ndim >= 2 else 1
            w, grad = p.reshape(rows, -1), g.reshape(rows, -1)
            direction = end_to_end_direction(w, grad, depth).to(p.dtype)
            p.add_(direction.view_as(p), alpha=-lr)


def balanced_regressor(weight: Tensor, depth: int) -> nn.Sequential:
    """A depth-N linear regressor x -> w_N ... w_2 (w_1^T x) with one output: w_1 = ``weight``
    (a vector) and N - 1 scalars equal to ||w_1||, the balanced initialisation (its product is
    ||w_1||^{N-1} w_1)."""
    if weight.ndim != 1:
        raise InputError(f"weight must be a vector (one output), got shape {tuple(weight.shape)}")
    integer(1)("depth", depth)
    layers = [nn.Linear(weight.numel(), 1, bias=False)]
    layers += [nn.Linear(1, 1, bias=False) for _ in range(depth - 1)]
    net = nn.Sequential(*layers).to(weight.dtype).to(weight.device)
    with torch.no_grad():
        net[0].weight.copy_(weight[None])
        for layer in net[1:]:
            layer.weight.fill_(float(weight.norm()))
    return net


def product_weight(net: nn.Sequential) -> Tensor:
    """W_N ... W_1 of a stack of bias-free linear layers."""
    w = net[0].weight.detach()
    for layer in net[1:]:
        w = layer.weight.detach() @ w
    return w
