"""Named tasks: a dataset, a model and a loss, with default batch size and epochs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from gradkit.checks import InputError
from gradkit.tasks import datasets, synthetic
from gradkit.tasks.datasets import Dataset
from gradkit.tasks.models import MLP, CNN1d, CNN2d, ResidualMLP, SequenceGRU


@dataclass(frozen=True)
class Task:
    """A training problem. ``load(seed)`` gives the data, ``build_model(data, seed)`` the model
    (called with torch's initialisers seeded), ``loss`` names the loss (see ``make_loss``)."""

    name: str
    description: str
    load: Callable[[int], Dataset]
    build_model: Callable[[Dataset, int], nn.Module]
    loss: str = "cross_entropy"
    batch_size: int = 32
    epochs: int = 20


def _mnist1d_task(name: str, description: str, model: Callable[[], nn.Module]) -> Task:
    return Task(
        name, description, lambda seed: datasets.mnist1d(), lambda d, s: model(), batch_size=100
    )


def _digits_task(name: str, description: str, images: bool, model: Callable[[], nn.Module]) -> Task:
    return Task(
        name, description, lambda seed: datasets.digits(images), lambda d, s: model(), batch_size=64
    )


def quadratic_task(
    rotated: bool, dim: int = 100, noise: float = 5.0, condition: tuple[float, float] = (0.1, 10.0)
) -> Task:
    """The noisy quadratic f(x) = x^T H x / 2 (see :class:`~gradkit.tasks.NoisyQuadratic`),
    started from x = 1, with batch size 1 and Gaussian gradient noise of scale ``noise``."""

    def build(data: Dataset, seed: int) -> nn.Module:
        hessian = synthetic.quadratic_hessian(dim, condition, rotated, seed)
        return synthetic.NoisyQuadratic(hessian, noise, torch.ones(dim))

    geometry = "rotated" if rotated else "axis-aligned"
    return Task(
        f"quadratic-{'rotated' if rotated else 'axis'}",
        f"noisy quadratic, d={dim}, Hessian eigenvalues log-spaced over {condition}, {geometry}",
        lambda seed: synthetic.quadratic_noise(dim, seed=seed),
        build,
        "objective",
        batch_size=1,
        epochs=1,
    )


TASKS: dict[str, Task] = {
    task.name: task
    for task in [
        _mnist1d_task(
            "mnist1d-mlp",
            "mnist1d (4000/1000, generated offline), MLP 40-256-256-10",
            lambda: MLP(40, (256, 256), 10),
        ),
        _mnist1d_task(
            "mnist1d-resmlp",
            "mnist1d, residual MLP 40-128, 8 blocks x + W2 relu(BN(W1 x)), 128-10 (a deep "
            "nn.Sequential for DDG)",
            lambda: ResidualMLP(40, 128, 8, 10),
        ),
        _mnist1d_task(
            "mnist1d-cnn",
            "mnist1d, 1-D CNN (3 strided convolutions, 32 channels, no batch norm)",
            lambda: CNN1d(40, 32, 10),
        ),
        _mnist1d_task(
            "mnist1d-cnn-bn",
            "mnist1d-cnn with batch norm after each convolution (the usual way to train it)",
            lambda: CNN1d(40, 32, 10, batch_norm=True),
        ),
        _mnist1d_task(
            "mnist1d-rnn",
            "mnist1d read by a GRU (64 hidden units) as a sequence of 10 steps of 4 values",
            lambda: SequenceGRU(64, 10),
        ),
        _digits_task(
            "digits-mlp",
            "scikit-learn digits as 64-vectors, MLP 64-128-128-10",
            False,
            lambda: MLP(64, (128, 128), 10),
        ),
        _digits_task(
            "digits-cnn",
            "scikit-learn digits as 1x8x8 images, 2-D CNN (16/32 channels, no batch norm)",
            True,
            lambda: CNN2d(16, 10),
        ),
        _digits_task(
            "digits-cnn-bn",
            "digits-cnn with batch norm after each convolution (the usual way to train it)",
            True,
            lambda: CNN2d(16, 10, batch_norm=True),
        ),
        Task(
            "breast-cancer-logreg",
            "scikit-learn breast cancer (30 standardized features), logistic regression",
            lambda seed: datasets.breast_cancer(),
            lambda data, seed: nn.Linear(30, 2),
        ),
        Task(
            "logreg-correlated",
            "synthetic binary logistic regression, 20 features with correlation 0.9^|i-j|",
            lambda seed: synthetic.correlated_logistic(seed=seed),
            lambda data, seed: nn.Linear(data.num_features, 2),
        ),
        Task(
            "least-squares",
            "synthetic linear regression (d=20, rotated features with covariance eigenvalues "
            "over [1, 10] before standardizing, label noise 0.5), squared loss",
            lambda seed: synthetic.lp_regression(2000, noise=0.5, seed=seed, condition=(1, 10)),
            lambda data, seed: nn.Linear(data.num_features, 1),
            loss="mse",
        ),
        Task(
            "l4-regression",
            "synthetic linear regression (d=20, rotated ill-conditioned features), l4 loss",
            lambda seed: synthetic.lp_regression(seed=seed),
            lambda data, seed: nn.Linear(data.num_features, 1),
            loss="l4",
        ),
        quadratic_task(rotated=False),
        quadratic_task(rotated=True),
    ]
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise InputError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
    return TASKS[name]
