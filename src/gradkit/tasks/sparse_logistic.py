"""l1 + l2-regularised logistic regression with a tight optimum, for proximal methods (DAve-PG):

    F(w) = g(w) + l1 ||w||_1,
    g(w) = (1/n) sum_i log(1 + exp(-y_i' x_i^T w)) + (l2/2) ||w||^2

with a bias (the last coordinate, regularised like the others, as DAve-PG's r = l1 ||x||_1 on
every parameter), in float64. Problems: ``breast-cancer`` and
``digits-parity`` (standardized, as in :mod:`gradkit.tasks.logistic`) and ``sparse-synthetic``
(2000 x 100 Gaussian features, labels from a logistic model whose weights have a known support
of 10 coordinates; drawn from the seed). F* and w* come from scipy's L-BFGS-B on the split
w = u - v, u, v >= 0 (smooth, bound-constrained), run to its tolerance floor; the optimality of
w* is checked by the proximal-gradient fixed point (:meth:`SparseLogistic.kkt_residual`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from gradkit.checks import InputError
from gradkit.distributed.problem import Problem
from gradkit.optim.prox import l1_prox
from gradkit.tasks.logistic import _arrays

SPARSE_PROBLEMS = ("breast-cancer", "digits-parity", "sparse-synthetic")
SUPPORT = 10


@dataclass(frozen=True)
class SparseLogistic:
    inputs: Tensor  # (n, d) float64
    targets: Tensor  # (n,) in {0, 1}
    l1: float
    l2: float
    solution: Tensor  # w*, (d + 1,) with the bias last
    optimum: float  # F*
    support: Tensor | None = None  # the generating weights' support (sparse-synthetic only)

    @property
    def dimension(self) -> int:
        return self.inputs.shape[1] + 1

    def smooth(self, w: Tensor, rows: Tensor | None = None) -> Tensor:
        """g(w) on all samples, or the mean loss on ``rows`` plus the l2 term."""
        x, y = (
            (self.inputs, self.targets) if rows is None else (self.inputs[rows], self.targets[rows])
        )
        logits = x @ w[:-1] + w[-1]
        data = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
        return data + 0.5 * self.l2 * (w @ w)

    def smooth_gradient(self, w: Tensor, rows: Tensor | None = None) -> Tensor:
        """grad g(w) (on ``rows`` if given), in closed form."""
        x, y = (
            (self.inputs, self.targets) if rows is None else (self.inputs[rows], self.targets[rows])
        )
        residual = torch.sigmoid(x @ w[:-1] + w[-1]) - y
        grad = torch.cat([x.T @ residual, residual.sum().reshape(1)]) / len(y)
        return grad + self.l2 * w

    def objective(self, w: Tensor) -> float:
        """F(w)."""
        return float(self.smooth(w)) + self.l1 * float(w.abs().sum())

    def prox(self, w: Tensor, step: float) -> Tensor:
        """prox_{step r}(w): soft-thresholding at step x l1."""
        return l1_prox(w, step, self.l1)

    def smoothness(self) -> float:
        """L of grad g: ||X~||_2^2 / (4 n) + l2, X~ the inputs with the bias column."""
        x = torch.cat([self.inputs, self.inputs.new_ones(len(self.targets), 1)], 1)
        return float(torch.linalg.matrix_norm(x, 2)) ** 2 / (4 * len(self.targets)) + self.l2

    def problem(self, shares: tuple[float, ...] | None = None) -> Problem:
        """The distributed problem, each batch a worker's whole shard (the full local
        gradient; shards near-equal or of the given ``shares``), from w = 0. The model's loss
        is the data term; pass ``l1`` and ``l2`` to the algorithm (DAve-PG's
        hyper-parameters). Evaluations report F (as ``objective``) and ``suboptimality``
        F - F* of the model (DAve-PG's prox(x_bar))."""

        def build() -> nn.Module:
            model = nn.Linear(self.dimension - 1, 1).double()
            nn.init.zeros_(model.weight)
            nn.init.zeros_(model.bias)
            return model

        def evaluate(model: nn.Module) -> dict[str, float]:
            with torch.no_grad():
                w = torch.cat([model.weight.reshape(-1), model.bias]).double()
            value = self.objective(w)
            return {"objective": value, "suboptimality": value - self.optimum}

        def loss(out: Tensor, target: Tensor) -> Tensor:
            return torch.nn.functional.binary_cross_entropy_with_logits(out.squeeze(-1), target)

        return Problem(
            build, self.inputs, self.targets, loss, 1, evaluate, whole_shards=True, shares=shares
        )

    def kkt_residual(self, w: Tensor) -> float:
        """||w - prox_{r/L}(w - grad g(w) / L)|| L: 0 exactly at the minimiser."""
        lipschitz = self.smoothness()
        step = 1.0 / lipschitz
        return float((w - self.prox(w - step * self.smooth_gradient(w), step)).norm()) * lipschitz


def _sparse_synthetic(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2000, 100))
    weights = np.zeros(100)
    support = rng.choice(100, SUPPORT, replace=False)
    weights[support] = rng.choice([-1.0, 1.0], SUPPORT) * rng.uniform(1.0, 2.0, SUPPORT)
    y = (rng.random(2000) < 1 / (1 + np.exp(-x @ weights))).astype(np.float64)
    return x, y, np.sort(support)


@functools.cache
def sparse_logistic(
    problem: str, l1: float = 1e-2, l2: float | None = None, seed: int = 0
) -> SparseLogistic:
    """The problem with weights ``l1`` and ``l2`` (default 1/n); only the synthetic one depends
    on ``seed``."""
    from scipy.optimize import minimize

    if not (isinstance(l1, int | float) and l1 >= 0):
        raise InputError(f"l1 must be a number >= 0, got {l1!r}")
    if problem == "sparse-synthetic":
        x, y, support = _sparse_synthetic(seed)
    elif problem in SPARSE_PROBLEMS:
        (x, y), support = _arrays(problem, 0), None
    else:
        raise InputError(f"unknown problem {problem!r}; choose from {', '.join(SPARSE_PROBLEMS)}")
    l2 = 1.0 / len(y) if l2 is None else l2
    if not l2 >= 0:
        raise InputError(f"l2 must be a number >= 0, got {l2!r}")
    partial = SparseLogistic(torch.tensor(x), torch.tensor(y), l1, l2, torch.zeros(0), 0.0)
    d = x.shape[1]

    def split_objective(uv: np.ndarray) -> tuple[float, np.ndarray]:
        u, v = uv[: d + 1], uv[d + 1 :]
        w = torch.tensor(u - v)
        grad = partial.smooth_gradient(w).numpy()
        penalty = np.full(d + 1, l1)
        value = float(partial.smooth(w)) + float(penalty @ (u + v))
        return value, np.r_[grad + penalty, -grad + penalty]

    result = minimize(
        split_objective, np.zeros(2 * (d + 1)), jac=True, method="L-BFGS-B",
        bounds=[(0, None)] * (2 * (d + 1)),
        options={"gtol": 1e-14, "ftol": 1e-16, "maxiter": 50_000, "maxcor": 30},
    )  # fmt: skip
    w = torch.tensor(result.x[: d + 1] - result.x[d + 1 :])
    support_tensor = None if support is None else torch.tensor(support)
    solved = SparseLogistic(partial.inputs, partial.targets, l1, l2, w, 0.0, support_tensor)
    return SparseLogistic(
        solved.inputs, solved.targets, l1, l2, w, solved.objective(w), support_tensor
    )
