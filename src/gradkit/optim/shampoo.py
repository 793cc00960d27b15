"""Shampoo: one preconditioner per tensor dimension.

Gupta, Koren, Singer, "Shampoo: Preconditioned Stochastic Tensor Optimization", ICML 2018
(arXiv 1802.09568).
"""

from __future__ import annotations

import functools
import itertools
from typing import Any, ClassVar

import torch
from torch import Tensor

from gradkit.checks import FLAG, NONNEGATIVE, POSITIVE, UNIT_INTERVAL, Rule, integer, number, one_of
from gradkit.optim._base import GradientBatch, GradkitOptimizer
from gradkit.optim.roots import matrix_power

GRAFTS = (None, "sgd", "adagrad", "adam")


def accumulator_dtype(p: Tensor) -> torch.dtype:
    """The dtype of accumulated statistics: float32 at least, float64 for float64 parameters."""
    return torch.promote_types(p.dtype, torch.float32)


EXPONENT = Rule(
    number(-1, 0, high_open=True).or_none().accepts,
    "None (-1/(2k) for an order-k tensor) or in [-1, 0), the power each statistic is raised "
    "to (e.g. -0.25)",
)


@functools.lru_cache(maxsize=1024)
def block_slices(shape: tuple[int, ...], max_dim: int) -> tuple[tuple[slice, ...], ...]:
    """Index tuples cutting a tensor into blocks no longer than ``max_dim`` along any dimension
    (row-major order of the blocks); a tensor within the limit is one block."""
    ranges = [
        [slice(start, min(start + max_dim, size)) for start in range(0, size, max_dim)]
        for size in shape
    ]
    return tuple(itertools.product(*ranges))


def dimension_statistic(block: Tensor, dim: int) -> Tensor:
    r""":math:`\operatorname{mat}_i(G)\operatorname{mat}_i(G)^\top`: the Gram matrix of the
    dimension-``dim`` slices of ``block`` (contracting every other dimension)."""
    others = [d for d in range(block.dim()) if d != dim]
    return torch.tensordot(block, block, dims=(others, others))


def precondition(block: Tensor, roots: list[Tensor]) -> Tensor:
    r""":math:`G \times_1 P_1 \times_2 \cdots \times_k P_k` for symmetric :math:`P_i`.

    Contracting the leading dimension with a root appends the result as the last dimension, so
    after k contractions the dimensions are back in their original order.
    """
    for root in roots:
        block = torch.tensordot(block, root, dims=([0], [0]))
    return block


class Shampoo(GradkitOptimizer):
    r"""Shampoo: a preconditioner per tensor dimension, from the gradients' per-dimension Gram
    matrices.

    For a matrix parameter :math:`W \in \mathbb{R}^{m\times n}` (the paper's Algorithm 1), with
    :math:`L_0 = \epsilon I_m`, :math:`R_0 = \epsilon I_n`:

    .. math::
        L_t = L_{t-1} + G_t G_t^\top, \qquad R_t = R_{t-1} + G_t^\top G_t, \qquad
        W_{t+1} = W_t - \mathrm{lr}\; L_t^{-1/4}\, D_t\, R_t^{-1/4}

    where :math:`D_t = G_t` without momentum and :math:`D_t = \mu D_{t-1} + G_t` (heavy-ball,
    as TF's ``gbar``) with momentum :math:`\mu`: the statistics accumulate raw gradients, the
    momentum is what gets preconditioned. For an order-k tensor (Algorithm 2) every dimension i
    has its statistic :math:`H^i_t = H^i_{t-1} + \operatorname{mat}_i(G_t)
    \operatorname{mat}_i(G_t)^\top` and the step is :math:`D_t \times_1 (H^1_t)^{-1/(2k)} \cdots
    \times_k (H^k_t)^{-1/(2k)}`; convolution kernels are treated as order-k tensors (a
    ``(out, in, kh, kw)`` kernel gets four preconditioners with power -1/8). ``exponent``
    replaces -1/(2k) for every dimension.

    **Vectors and scalars** get the diagonal version, :math:`d = D_t \odot (\epsilon +
    \sum_s g_s^2)^{-1/2}` (AdaGrad with :math:`\epsilon` inside the root). **Dimensions longer
    than** ``max_dim`` are cut into blocks of at most ``max_dim``, each block preconditioned on its
    own, which bounds a root's cost at :math:`O(\text{max\_dim}^3)`.

    **Roots** :math:`(H + \epsilon I)^{-1/(2k)}` are computed from a symmetrized float64
    ``torch.linalg.eigh`` with eigenvalues clamped at 0 before :math:`\epsilon` is added (the
    paper's absolute :math:`\epsilon`; ``relative_epsilon=True`` uses :math:`\epsilon
    \lambda_{\max}(H)` instead). The statistics accumulate every step. With ``update_interval``
    k, roots are recomputed at every one of the first k preconditioned steps and then every k
    steps, and used in between. The warm phase matters: a root reused for k steps is k steps
    stale, and while a statistic holds fewer than k gradients k more can multiply it many times
    over (a root built from one gradient and reused for k steps lets the step grow ~k^{1/2}-fold
    for a matrix). Once a root has seen at least k gradients, the statistic at most doubles
    before the next refresh, so a reused root overstates the step by at most :math:`2^{1/2}`.
    Statistics of one shape are decomposed in one batched call. If a root cannot be computed
    (a failed decomposition) the previous root is kept and the parameter's ``root_failures``
    counter in ``state`` increases; the initial root is :math:`\epsilon^{-1/(2k)} I`, the root
    of :math:`L_0`. A gradient whose contribution would overflow a statistic (or the graft's
    accumulator) is not added, and ``skipped_statistics`` counts it: one huge finite gradient
    cannot turn the statistics into inf and freeze every later root.

    **Before** ``start_step`` (steps :math:`t \le` ``start_step``) the statistics accumulate but
    the step is the graft's (SGD's if there is no graft). **Grafting** keeps Shampoo's direction
    but gives each parameter the norm of the graft's step: ``"sgd"`` (the momentum :math:`D_t`),
    ``"adagrad"`` (:math:`D_t / (\sqrt{\sum_s g_s^2} + \epsilon_g)`) or ``"adam"``
    (:math:`\hat m_t / (\sqrt{\hat v_t} + \epsilon_g)` with :math:`\beta_1 = \mu`,
    :math:`\hat m_t = (1-\mu) D_t / (1-\mu^t)`, :math:`\beta_2` = ``graft_beta2``), so that with
    preconditioning never started Shampoo is exactly ``torch.optim.SGD(momentum=mu)``,
    ``Adagrad(eps=graft_eps)`` (for ``momentum=0``) or ``Adam(betas=(mu, graft_beta2),
    eps=graft_eps)``.

    **Weight decay** is decoupled: :math:`W \leftarrow W (1 - \mathrm{lr}\,\lambda)` before the
    step.

    **Cost.** State per :math:`m\times n` block: :math:`m^2 + n^2` statistics and as many root
    entries (float32 at least: the parameter's dtype when it is float32 or float64, float32 for
    bfloat16 / float16 parameters, as are the diagonal and graft accumulators), plus one
    momentum buffer per parameter. Per
    step :math:`O(mn(m+n))` for statistics and preconditioning; per root :math:`O(m^3 + n^3)`.

    Args:
        params: parameters or param groups.
        lr: step size.
        momentum: heavy-ball coefficient :math:`\mu \in [0, 1)` of the preconditioned direction.
        epsilon: :math:`\epsilon > 0`, the initial statistic :math:`\epsilon I`.
        update_interval: steps between root recomputations (1: every step, the paper).
        start_step: steps before preconditioning starts (0: from the first step).
        grafting: ``None``, ``"sgd"``, ``"adagrad"`` or ``"adam"``.
        max_dim: longest dimension preconditioned as one block.
        exponent: power of each statistic; ``None`` for :math:`-1/(2k)`.
        weight_decay: decoupled decay :math:`\lambda \ge 0`.
        graft_eps: :math:`\epsilon_g` of the AdaGrad / Adam graft.
        graft_beta2: second-moment EMA coefficient of the Adam graft.
        relative_epsilon: use :math:`\epsilon\lambda_{\max}` as the ridge (scalable Shampoo's
            convention) instead of the paper's absolute :math:`\epsilon`.
        maximize: ascend instead of descend.
        check_finite: raise on NaN/Inf gradients before anything changes.
    """

    _checks: ClassVar[dict[str, Rule]] = {
        "lr": NONNEGATIVE,
        "momentum": UNIT_INTERVAL,
        "epsilon": POSITIVE,
        "update_interval": integer(1),
        "start_step": integer(0),
        "grafting": one_of(GRAFTS),
        "max_dim": integer(1),
        "exponent": EXPONENT,
        "weight_decay": NONNEGATIVE,
        "graft_eps": POSITIVE,
        "graft_beta2": UNIT_INTERVAL,
        "relative_epsilon": FLAG,
        "maximize": FLAG,
    }

    def __init__(
        self,
        params,
        lr: float,
        momentum: float = 0.9,
        epsilon: float = 1e-4,
        update_interval: int = 1,
        start_step: int = 0,
        grafting: str | None = None,
        max_dim: int = 1024,
        exponent: float | None = None,
        weight_decay: float = 0.0,
        *,
        graft_eps: float = 1e-8,
        graft_beta2: float = 0.999,
        relative_epsilon: bool = False,
        maximize: bool = False,
        check_finite: bool = True,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "epsilon": epsilon,
            "update_interval": update_interval,
            "start_step": start_step,
            "grafting": grafting,
            "max_dim": max_dim,
            "exponent": exponent,
            "weight_decay": weight_decay,
            "graft_eps": graft_eps,
            "graft_beta2": graft_beta2,
            "relative_epsilon": relative_epsilon,
            "maximize": maximize,
            "check_finite": check_finite,
        }
        super().__init__(params, defaults)

    _saved_dtype_prefixes: ClassVar[tuple[str, ...]] = (
        "statistic_",
        "root_",
        "diagonal",
        "graft_sum_sq",
        "graft_exp_avg_sq",
    )

    def _init_state(self, p: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        super()._init_state(p, state, group)
        state["root_failures"] = torch.zeros((), dtype=torch.int64, device=p.device)
        state["skipped_statistics"] = torch.zeros((), dtype=torch.int64, device=p.device)
        if p.dim() <= 1:
            state["diagonal"] = torch.zeros_like(p, dtype=accumulator_dtype(p))
            return
        eps = group["epsilon"]
        initial = eps ** self._exponent(group, p.dim())  # the root of the initial statistic
        for b, index in enumerate(block_slices(tuple(p.shape), group["max_dim"])):
            for i, size in enumerate(p[index].shape):
                eye = torch.eye(size, dtype=accumulator_dtype(p), device=p.device)
                state[f"statistic_{b}_{i}"] = torch.zeros_like(eye)
                state[f"root_{b}_{i}"] = eye * initial

    @staticmethod
    def _exponent(group: dict[str, Any], order: int) -> float:
        return -1 / (2 * max(order, 1)) if group["exponent"] is None else group["exponent"]

    def _update(self, batch: GradientBatch, foreach: bool) -> None:
        group = batch.group
        pending = []  # (state, block index, dimension, order) whose roots are due
        directions = []
        for p, g, state in zip(batch.params, batch.grads, batch.states, strict=True):
            t = int(state["step"])
            self._accumulate(p, g, state, group)
            directions.append(self._momentum(p, g, state, group))
            if p.dim() > 1 and self._root_due(t, group):
                blocks = len(block_slices(tuple(p.shape), group["max_dim"]))
                pending += [(state, b, i, p.dim()) for b in range(blocks) for i in range(p.dim())]
        self._refresh_roots(pending, group)
        lr, decay = group["lr"], group["weight_decay"]
        for p, g, state, d in zip(batch.params, batch.grads, batch.states, directions, strict=True):
            started = int(state["step"]) > group["start_step"]
            step = self._graft_step(g, d, state, group)
            if started:
                step = self._graft(self._preconditioned(p, d, state, group), step, group)
            if decay != 0:
                p.mul_(1 - lr * decay)
            p.add_(step, alpha=-lr)

    @staticmethod
    def _root_due(t: int, group: dict[str, Any]) -> bool:
        """Whether step t recomputes the roots: every one of the first ``update_interval``
        preconditioned steps, then every ``update_interval`` steps."""
        preconditioned = t - group["start_step"]  # 1 at the first preconditioned step
        interval = group["update_interval"]
        return preconditioned >= 1 and (
            preconditioned <= interval or (preconditioned - 1) % interval == 0
        )

    def _accumulate(self, p: Tensor, g: Tensor, state: dict[str, Any], group) -> None:
        """Add this step's gradient to every statistic and to the graft's accumulator, unless
        some sum would overflow: then nothing is added and ``skipped_statistics`` counts the
        step (a single huge finite gradient must not turn the statistics into inf and freeze
        every later root). Checked without a host sync: |a + b| <= max|a| + max|b|."""
        g = g.to(accumulator_dtype(p))
        graft = {"adagrad": "graft_sum_sq", "adam": "graft_exp_avg_sq"}.get(group["grafting"])
        if graft is not None:
            state.setdefault(graft, torch.zeros_like(g))
        if g.numel() == 0:
            return
        added: list[tuple[Tensor, Tensor]] = []  # (accumulator, what this step adds to it)
        if p.dim() <= 1:
            added.append((state["diagonal"], g * g))
        else:
            for b, index in enumerate(block_slices(tuple(p.shape), group["max_dim"])):
                block = g[index]
                for i in range(block.dim()):
                    added.append((state[f"statistic_{b}_{i}"], dimension_statistic(block, i)))
        ema = None  # Adam's graft: v <- beta2 v + (1 - beta2) g^2
        if group["grafting"] == "adagrad":
            added.append((state["graft_sum_sq"], g * g))
        elif group["grafting"] == "adam":
            beta2 = group["graft_beta2"]
            ema = (state["graft_exp_avg_sq"], g * g * (1 - beta2))
        checked = added + ([ema] if ema is not None else [])
        ok = torch.isfinite(torch.stack([a.abs().amax() + x.abs().amax() for a, x in checked]))
        ok = ok.all()
        for accumulator, increment in added:
            accumulator.add_(torch.where(ok, increment, 0.0))
        if ema is not None:
            accumulator, increment = ema
            accumulator.copy_(torch.where(ok, accumulator * beta2 + increment, accumulator))
        state["skipped_statistics"].add_((~ok).long())

    @staticmethod
    def _momentum(p: Tensor, g: Tensor, state: dict[str, Any], group) -> Tensor:
        """D_t: the gradient, or the heavy-ball buffer mu D_{t-1} + g_t."""
        if group["momentum"] == 0:
            return g
        buffer = state.setdefault("momentum_buffer", torch.zeros_like(p))
        return buffer.mul_(group["momentum"]).add_(g)

    def _refresh_roots(self, pending, group) -> None:
        """Recompute the due roots, one batched decomposition per (size, order)."""
        by_shape: dict[tuple[int, int], list] = {}
        for state, b, i, order in pending:
            size = state[f"statistic_{b}_{i}"].shape[0]
            by_shape.setdefault((size, order), []).append((state, b, i))
        for (_, order), items in by_shape.items():
            stats = torch.stack([state[f"statistic_{b}_{i}"] for state, b, i in items])
            roots, ok = matrix_power(
                stats,
                self._exponent(group, order),
                group["epsilon"],
                relative=group["relative_epsilon"],
            )
            for (state, b, i), root, good in zip(items, roots, ok, strict=True):
                old = state[f"root_{b}_{i}"]
                old.copy_(torch.where(good, root.to(old.dtype), old))
                state["root_failures"].add_((~good).long())

    def _preconditioned(self, p: Tensor, d: Tensor, state: dict[str, Any], group) -> Tensor:
        if p.dim() <= 1:
            diagonal = state["diagonal"]
            eps = group["epsilon"]
            if group["relative_epsilon"]:
                top = diagonal.max()
                eps = torch.where(top > 0, eps * top, torch.full_like(top, eps))
            return d * (diagonal + eps).pow(self._exponent(group, 1))
        out = torch.empty_like(d, dtype=accumulator_dtype(p))  # cast once, when applied
        for b, index in enumerate(block_slices(tuple(p.shape), group["max_dim"])):
            roots = [state[f"root_{b}_{i}"] for i in range(d.dim())]
            out[index] = precondition(d[index].to(roots[0].dtype), roots)
        return out

    @staticmethod
    def _graft_step(g: Tensor, d: Tensor, state: dict[str, Any], group) -> Tensor:
        """The step the graft alone would take (SGD's when there is no graft)."""
        grafting, eps = group["grafting"], group["graft_eps"]
        if grafting == "adagrad":
            return d / state["graft_sum_sq"].sqrt().add_(eps)
        if grafting == "adam":
            t = int(state["step"])
            mu, beta2 = group["momentum"], group["graft_beta2"]
            first = d if mu == 0 else d * ((1 - mu) / (1 - mu**t))
            denom = (state["graft_exp_avg_sq"] / (1 - beta2**t)).sqrt_().add_(eps)
            return first / denom
        return d

    @staticmethod
    def _graft(direction: Tensor, graft_step: Tensor, group) -> Tensor:
        """Shampoo's direction with the graft step's norm (layer-wise grafting)."""
        if group["grafting"] is None:
            return direction
        # float64 norms: a float32 norm of a huge but finite step overflows, and inf/inf is NaN
        norm = torch.linalg.vector_norm(direction, dtype=torch.float64)
        ratio = torch.linalg.vector_norm(graft_step, dtype=torch.float64) / norm
        ratio = torch.where(norm > 0, ratio, torch.zeros_like(ratio))
        # float32 at least: the ratio of a float16 step can exceed float16's range
        wide = torch.promote_types(direction.dtype, torch.float32)
        return direction.to(wide) * ratio.to(wide)
