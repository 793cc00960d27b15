"""Optimizers by name: the one registry the command line, the Python API and every experiment
build from (gradkit's own and torch's baselines). A name means one configuration everywhere; a
run that needs other settings passes them as keyword overrides."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.optim import Optimizer

from gradkit.checks import InputError
from gradkit.optim.full_matrix import FullMatrixAdaGrad
from gradkit.optim.ggt import GGT
from gradkit.optim.perturbed import PerturbedGD
from gradkit.optim.shampoo import Shampoo
from gradkit.optim.sign import SignSGD, Signum
from gradkit.optim.svag import MSVAG, SVAG


@dataclass(frozen=True)
class OptimizerSpec:
    """A named optimizer: ``factory(params, lr=..., **settings)`` builds it. ``elementwise``:
    each coordinate's update reads only that coordinate's gradient history, so several seeds
    can train as one stacked tensor with the same result."""

    name: str
    description: str
    factory: Callable[..., Optimizer]
    default_lr: float
    settings: dict[str, Any] = field(default_factory=dict)
    elementwise: bool = False

    def build(
        self, params: Iterable[torch.Tensor], lr: float | None = None, **overrides: Any
    ) -> Optimizer:
        """The optimizer on ``params`` with ``lr`` (default: its default lr) and its settings,
        ``overrides`` replacing or adding keyword arguments."""
        lr = self.default_lr if lr is None else lr
        return self.factory(params, lr=lr, **{**self.settings, **overrides})


OPTIMIZERS: dict[str, OptimizerSpec] = {
    spec.name: spec
    for spec in [
        OptimizerSpec("sgd", "plain SGD (torch.optim.SGD)", torch.optim.SGD, 0.1, elementwise=True),
        OptimizerSpec(
            "msgd",
            "SGD with heavy-ball momentum 0.9 (torch.optim.SGD), the paper's M-SGD",
            torch.optim.SGD,
            0.05,
            {"momentum": 0.9},
            elementwise=True,
        ),
        OptimizerSpec(
            "adam",
            "Adam (torch.optim.Adam, betas 0.9/0.999)",
            torch.optim.Adam,
            1e-3,
            elementwise=True,
        ),
        OptimizerSpec(
            "signsgd", "signSGD / SSD (gradkit.optim.SignSGD)", SignSGD, 1e-3, elementwise=True
        ),
        OptimizerSpec(
            "signum",
            "Signum / M-SSD, momentum 0.9 (gradkit.optim.Signum)",
            Signum,
            1e-3,
            elementwise=True,
        ),
        OptimizerSpec("svag", "SVAG, beta 0.9 (gradkit.optim.SVAG)", SVAG, 0.05, elementwise=True),
        OptimizerSpec(
            "msvag", "M-SVAG, beta 0.9 (gradkit.optim.MSVAG)", MSVAG, 0.05, elementwise=True
        ),
        OptimizerSpec(
            "adagrad",
            "diagonal AdaGrad (torch.optim.Adagrad)",
            torch.optim.Adagrad,
            1e-2,
            elementwise=True,
        ),
        OptimizerSpec(
            "shampoo",
            "Shampoo, momentum 0.9, epsilon 1e-4, roots every 10 steps (gradkit.optim.Shampoo)",
            Shampoo,
            1e-2,
            {"momentum": 0.9, "epsilon": 1e-4, "update_interval": 10},
        ),
        OptimizerSpec(
            "ggt",
            "GGT, window 200 per parameter, betas 0.9/1, eps 1e-4 (gradkit.optim.GGT)",
            GGT,
            1e-3,
            {"window": 200, "betas": (0.9, 1.0), "eps": 1e-4},
        ),
        OptimizerSpec(
            "ggt-flat",
            "GGT as in the paper: one window of 200 gradients of all parameters together, betas "
            "0.9/1, eps 1e-4 (gradkit.optim.GGT, flatten=True)",
            GGT,
            1e-3,
            {"window": 200, "betas": (0.9, 1.0), "eps": 1e-4, "flatten": True},
        ),
        OptimizerSpec(
            "pgd",
            "perturbed gradient descent, radius 1e-3 when the gradient norm is <= 1e-3, at most "
            "every 10 steps (gradkit.optim.PerturbedGD)",
            PerturbedGD,
            0.1,
        ),
        OptimizerSpec(
            "full-adagrad",
            "full-matrix AdaGrad per parameter, eps 1e-4 (gradkit.optim.FullMatrixAdaGrad)",
            FullMatrixAdaGrad,
            1e-1,
        ),
    ]
}


def optimizer_spec(name: str) -> OptimizerSpec:
    """The registered optimizer ``name``; a clear error naming the choices otherwise."""
    if name not in OPTIMIZERS:
        raise InputError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name]


def build_optimizer(
    name: str, params: Iterable[torch.Tensor], lr: float | None = None, **overrides: Any
) -> Optimizer:
    """Build optimizer ``name`` (see :data:`OPTIMIZERS`) with ``lr`` or its default lr, and
    ``overrides`` of its settings."""
    return optimizer_spec(name).build(params, lr, **overrides)
