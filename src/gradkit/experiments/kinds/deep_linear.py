"""l_p regression by deep linear regressors, the end-to-end rule and AdaGrad
(:func:`deep_linear_run`), and their specs (:func:`deep_linear`)."""

from __future__ import annotations

import math
import time

import torch

from gradkit.checks import InputError
from gradkit.experiments.compare import Method, SpecFactory
from gradkit.experiments.runs import CURVE_POINTS, RunRecord, RunSpec, run_kind
from gradkit.optim import EndToEndGD, balanced_regressor
from gradkit.tasks.synthetic import lp_regression

DEEP_LINEAR_METHODS = ("depth1", "depth2", "depth3", "e2e2", "e2e3", "adagrad")


def regression_data(problem: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) in float64 with the target standardized (so that one learning rate means the
    same on every instance): ``synthetic`` is :func:`gradkit.tasks.synthetic.lp_regression`
    (n 1000 with both splits, d 20, eigenvalues over [0.1, 10] in a random basis, noise 0.01,
    drawn from ``seed``), ``diabetes`` scikit-learn's (features standardized)."""
    if problem == "synthetic":
        data = lp_regression(1000, seed=seed)
        x = torch.cat([data.x_train, data.x_test]).double()
        y = torch.cat([data.y_train, data.y_test]).double()
    elif problem == "diabetes":
        from sklearn.datasets import load_diabetes

        features, target = load_diabetes(return_X_y=True)
        x, y = torch.from_numpy(features), torch.from_numpy(target)
        x = (x - x.mean(0)) / x.std(0)
    else:
        raise InputError(f"unknown problem {problem!r}; choose from synthetic, diabetes")
    return x, (y - y.mean()) / y.std()


@run_kind
def deep_linear_run(
    problem: str,
    power: int,
    seed: int,
    method: str,
    lr: float,
    iterations: int,
    target_fraction: float = 1e-3,
) -> RunRecord:
    """Full-batch l_p regression L(w) = mean((x^T w - y)^p) / p from a near-zero balanced
    initialisation (w_1 ~ N(0, 1e-6 I) from ``seed``): gradient descent on a depth-N linear
    regressor (``depthN``, N - 1 extra scalars equal to ||w_1||), the end-to-end rule on its
    product (``e2eN``) or AdaGrad on w (``adagrad``), all at ``lr``.

    The run stops at the target. Metrics: ``iterations_to_target`` (first iteration with L <=
    target_fraction L(0); iterations + 1 if never) and ``final_fraction`` L / L(0) where it
    stopped. Curve: ``loss_fraction``.
    """
    if method not in DEEP_LINEAR_METHODS:
        raise InputError(f"unknown method {method!r}; choose from {', '.join(DEEP_LINEAR_METHODS)}")
    x, y = regression_data(problem, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    w1 = 1e-3 * torch.randn(x.shape[1], generator=generator, dtype=torch.float64)
    depth = int(method[-1]) if method != "adagrad" else 1
    if method.startswith("depth"):
        net = balanced_regressor(w1, depth)
        params, predict = list(net.parameters()), lambda: net(x).squeeze(-1)
        opt = torch.optim.SGD(params, lr=lr)
    else:
        w = torch.nn.Parameter(w1.clone() * float(w1.norm()) ** (depth - 1))
        params, predict = [w], lambda: x @ w
        opt = (
            EndToEndGD(params, lr, depth)
            if method.startswith("e2e")
            else torch.optim.Adagrad(params, lr=lr)
        )

    def loss() -> torch.Tensor:
        return (predict() - y).pow(power).mean() / power

    started = time.perf_counter()
    reached, every, curve, initial = iterations + 1, max(1, iterations // CURVE_POINTS), [], None
    for t in range(iterations + 1):  # the loss at iterate t, then the step to t + 1
        opt.zero_grad(set_to_none=True)
        current = loss()
        value = float(current.detach())
        initial = value if initial is None else initial
        if not math.isfinite(value):
            break
        if t % every == 0 or t == iterations:
            curve.append([float(t), value / initial])
        if value <= target_fraction * initial:
            reached = t
            curve.append([float(t), value / initial])
            break
        if t < iterations:
            current.backward()
            opt.step()
    diverged = not math.isfinite(value)
    metrics = {"iterations_to_target": float(reached), "final_fraction": value / initial}
    return RunRecord(metrics, {"loss_fraction": curve}, diverged, time.perf_counter() - started)


def deep_linear(problem: str, power: int) -> SpecFactory:
    """Runs of :func:`deep_linear_run`: l_``power`` regression on
    ``problem`` (the synthetic instance drawn from the seed), budgets in iterations."""

    def make(method: Method, lr: float, iterations: int, seed: int, tuning: bool) -> RunSpec:
        return RunSpec.of(
            deep_linear_run,
            problem=problem,
            power=power,
            seed=seed,
            method=method.runs,
            lr=lr,
            iterations=iterations,
        )

    return make
