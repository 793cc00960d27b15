"""Optimizers by name, for the command line and the claims: gradkit's own and torch's baselines."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch.optim import Optimizer

from gradkit.optim.full_matrix import FullMatrixAdaGrad
from gradkit.optim.ggt import GGT
from gradkit.optim.perturbed import PerturbedGD
from gradkit.optim.shampoo import Shampoo
from gradkit.optim.sign import SignSGD, Signum
from gradkit.optim.svag import MSVAG, SVAG


@dataclass(frozen=True)
class OptimizerSpec:
    """A named optimizer: how to build it from parameters and a learning rate."""

    name: str
    description: str
    build: Callable[[Iterable[torch.Tensor], float], Optimizer]
    default_lr: float


OPTIMIZERS: dict[str, OptimizerSpec] = {
    spec.name: spec
    for spec in [
        OptimizerSpec(
            "sgd", "plain SGD (torch.optim.SGD)", lambda p, lr: torch.optim.SGD(p, lr), 0.1
        ),
        OptimizerSpec(
            "msgd",
            "SGD with heavy-ball momentum 0.9 (torch.optim.SGD), the paper's M-SGD",
            lambda p, lr: torch.optim.SGD(p, lr, momentum=0.9),
            0.05,
        ),
        OptimizerSpec("adam", "Adam (torch.optim.Adam, betas 0.9/0.999)", torch.optim.Adam, 1e-3),
        OptimizerSpec("signsgd", "signSGD / SSD (gradkit.optim.SignSGD)", SignSGD, 1e-3),
        OptimizerSpec(
            "signum", "Signum / M-SSD, momentum 0.9 (gradkit.optim.Signum)", Signum, 1e-3
        ),
        OptimizerSpec("svag", "SVAG, beta 0.9 (gradkit.optim.SVAG)", SVAG, 0.05),
        OptimizerSpec("msvag", "M-SVAG, beta 0.9 (gradkit.optim.MSVAG)", MSVAG, 0.05),
        OptimizerSpec(
            "adagrad", "diagonal AdaGrad (torch.optim.Adagrad)", torch.optim.Adagrad, 1e-2
        ),
        OptimizerSpec(
            "shampoo",
            "Shampoo, momentum 0.9, epsilon 1e-4, roots every 10 steps (gradkit.optim.Shampoo)",
            lambda p, lr: Shampoo(p, lr, momentum=0.9, epsilon=1e-4, update_interval=10),
            1e-2,
        ),
        OptimizerSpec(
            "ggt",
            "GGT, window 200 per parameter, betas 0.9/1, eps 1e-4 (gradkit.optim.GGT)",
            lambda p, lr: GGT(p, lr, window=200, betas=(0.9, 1.0), eps=1e-4),
            1e-3,
        ),
        OptimizerSpec(
            "ggt-flat",
            "GGT as in the paper: one window of 200 gradients of all parameters together, betas "
            "0.9/1, eps 1e-4 (gradkit.optim.GGT, flatten=True)",
            lambda p, lr: GGT(p, lr, window=200, betas=(0.9, 1.0), eps=1e-4, flatten=True),
            1e-3,
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


def build_optimizer(
    name: str, params: Iterable[torch.Tensor], lr: float | None = None
) -> Optimizer:
    """Build optimizer ``name`` (see :data:`OPTIMIZERS`) with ``lr`` or its default lr."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
    spec = OPTIMIZERS[name]
    return spec.build(params, spec.default_lr if lr is None else lr)
