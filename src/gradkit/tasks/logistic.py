"""l2-regularised binary logistic regression with a known optimum, for methods compared on work
(per-sample gradient evaluations): F(w) = (1/n) sum_i log(1 + exp(-y_i' x_i^T w)) + (lam/2)||w||^2
with a bias column, lam = 1/n, in float64.

Problems: ``breast-cancer`` (569 x 30), ``digits-parity`` (1797 x 64, even vs odd digit) and
``synthetic`` (20 000 x 50, features with covariance 0.5^|i-j|, labels from a logistic model;
drawn from the seed). F* comes from scipy's L-BFGS-B run to its tolerance floor.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gradkit.checks import InputError

LOGISTIC_PROBLEMS = ("breast-cancer", "digits-parity", "synthetic")


@dataclass(frozen=True)
class LogisticProblem:
    inputs: Tensor  # (n, d) float64, standardized
    targets: Tensor  # (n,) float64 in {0, 1}
    l2: float
    optimum: float

    @property
    def samples(self) -> int:
        return self.inputs.shape[0]

    def model(self) -> nn.Module:
        """The linear model at w = 0."""
        model = nn.Linear(self.inputs.shape[1], 1).double()
        nn.init.zeros_(model.weight)
        nn.init.zeros_(model.bias)
        return model

    def objective(self, model: nn.Module) -> float:
        """F at the model's parameters (not counted as work)."""
        with torch.no_grad():
            w = torch.cat([p.reshape(-1) for p in model.parameters()])
            return float(loss(model(self.inputs), self.targets)) + 0.5 * self.l2 * float(w @ w)


def loss(out: Tensor, target: Tensor) -> Tensor:
    """Mean logistic loss of logits ``out`` (n, 1) for labels in {0, 1}."""
    return F.binary_cross_entropy_with_logits(out.squeeze(-1), target)


def _arrays(problem: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if problem == "breast-cancer":
        from sklearn.datasets import load_breast_cancer

        x, y = load_breast_cancer(return_X_y=True)
    elif problem == "digits-parity":
        from sklearn.datasets import load_digits

        x, digit = load_digits(return_X_y=True)
        y = (digit % 2 == 0).astype(np.float64)
    elif problem == "synthetic":
        rng = np.random.default_rng(seed)
        dim = 50
        index = np.arange(dim)
        x = rng.multivariate_normal(np.zeros(dim), 0.5 ** np.abs(index[:, None] - index), 20_000)
        w = rng.normal(size=dim) / np.sqrt(dim) * 3
        y = (rng.random(20_000) < 1 / (1 + np.exp(-x @ w))).astype(np.float64)
    else:
        raise InputError(f"unknown problem {problem!r}; choose from {', '.join(LOGISTIC_PROBLEMS)}")
    std = x.std(0)
    x = (x - x.mean(0)) / np.where(std > 0, std, 1.0)
    return x, y.astype(np.float64)


@functools.cache
def logistic_problem(problem: str, seed: int = 0) -> LogisticProblem:
    """The problem (the synthetic one drawn from ``seed``; the others do not depend on it)."""
    from scipy.optimize import minimize

    x, y = _arrays(problem, seed if problem == "synthetic" else 0)
    inputs, targets = torch.tensor(x), torch.tensor(y)
    l2 = 1.0 / len(y)

    def value_and_grad(w):
        w = torch.tensor(w, requires_grad=True)
        value = loss((inputs @ w[:-1] + w[-1])[:, None], targets) + 0.5 * l2 * (w @ w)
        value.backward()
        return float(value.detach()), w.grad.numpy()

    result = minimize(
        value_and_grad, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B",
        options={"gtol": 1e-13, "ftol": 1e-16, "maxiter": 20_000},
    )  # fmt: skip
    return LogisticProblem(inputs, targets, l2, float(result.fun))
