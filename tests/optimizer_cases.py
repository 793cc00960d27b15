"""Every optimizer gradkit has, described once for the contract suite.

A new optimizer joins the suite with one ``OptimizerCase(...)`` line in :data:`CASES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gradkit.optim import (
    GGT,
    MSVAG,
    SVAG,
    EndToEndGD,
    FullMatrixAdaGrad,
    PerturbedGD,
    Shampoo,
    SignSGD,
    Signum,
)


@dataclass(frozen=True)
class OptimizerCase:
    name: str
    cls: Callable[..., Any]
    kwargs: dict[str, Any]
    # hyper-parameter name -> values that must raise ValueError naming it
    invalid: dict[str, list[Any]] = field(default_factory=dict)
    # a second set of group hyper-parameters that differ from ``kwargs``
    other_group: dict[str, Any] = field(default_factory=dict)
    has_foreach: bool = True
    # state entries kept in float64 whatever the parameter dtype (small dense linear algebra)
    float64_state: tuple[str, ...] = ()

    def build(self, params, **overrides):
        return self.cls(params, **{**self.kwargs, **overrides})

    def __str__(self) -> str:
        return self.name


_LR = [-1.0, float("nan"), float("inf"), "0.1"]
_BETA = [-0.1, 1.0, 1.5, float("nan")]
_DECAY = [-1e-3, float("nan")]

CASES = [
    OptimizerCase(
        "SignSGD",
        SignSGD,
        {"lr": 1e-2},
        {"lr": _LR, "weight_decay": _DECAY, "zero_sign": [2, -1]},
        {"lr": 3e-2, "weight_decay": 0.1},
    ),
    OptimizerCase(
        "Signum",
        Signum,
        {"lr": 1e-2, "momentum": 0.9},
        {"lr": _LR, "momentum": _BETA, "weight_decay": _DECAY},
        {"lr": 3e-2, "momentum": 0.5, "weight_decay": 0.1},
    ),
    OptimizerCase(
        "SVAG",
        SVAG,
        {"lr": 1e-2, "beta": 0.9},
        {"lr": _LR, "beta": _BETA, "weight_decay": _DECAY},
        {"lr": 3e-2, "beta": 0.5, "weight_decay": 0.1},
    ),
    OptimizerCase(
        "MSVAG",
        MSVAG,
        {"lr": 1e-2, "beta": 0.9},
        {"lr": _LR, "beta": _BETA, "weight_decay": _DECAY},
        {"lr": 3e-2, "beta": 0.5, "weight_decay": 0.1},
    ),
    OptimizerCase(
        "Shampoo",
        Shampoo,
        {"lr": 1e-2, "momentum": 0.9, "max_dim": 3, "grafting": "adam"},
        {
            "lr": _LR,
            "momentum": _BETA,
            "epsilon": [0.0, -1.0, float("nan")],
            "update_interval": [0, 1.5],
            "start_step": [-1],
            "grafting": ["adamw"],
            "max_dim": [0],
            "exponent": [0.25, -2.0],
            "weight_decay": _DECAY,
        },
        {"lr": 3e-2, "momentum": 0.5, "weight_decay": 0.1, "update_interval": 2},
        has_foreach=False,
    ),
    OptimizerCase(
        "Shampoo-sgd",
        Shampoo,
        {"lr": 1e-2, "momentum": 0.0, "start_step": 2, "update_interval": 3},
        {"lr": _LR, "grafting": ["SGD"]},
        {"lr": 3e-2, "grafting": "adagrad"},
        has_foreach=False,
    ),
    OptimizerCase(
        "GGT",
        GGT,
        {"lr": 1e-2, "window": 4},
        {"lr": _LR, "window": [0, 2.0], "betas": [(1.0, 1.0), (0.9, 0.0), (0.9,)], "eps": [0.0]},
        {"lr": 3e-2, "betas": (0.5, 0.9), "weight_decay": 0.1},
        has_foreach=False,
        float64_state=("gram", "exp_avg", "window_exp_avg"),
    ),
    OptimizerCase(
        "PerturbedGD",
        PerturbedGD,
        {"lr": 1e-2, "radius": 0.05, "threshold": 1e9, "interval": 2},  # perturbs every 3rd step
        {
            "lr": _LR,
            "radius": [0.0, -1.0, float("nan")],
            "threshold": [-1.0, float("nan")],
            "interval": [0, 1.5],
            "seed": [-1, 0.5],
            "weight_decay": _DECAY,
        },
        {"lr": 3e-2, "radius": 0.1, "interval": 1, "seed": 3, "weight_decay": 0.1},
    ),
    OptimizerCase(
        "EndToEndGD",
        EndToEndGD,
        {"lr": 1e-2, "depth": 3},
        {"lr": _LR, "depth": [0, 2.0], "weight_decay": _DECAY},
        {"lr": 3e-2, "depth": 2, "weight_decay": 0.1},
    ),
    OptimizerCase(
        "FullMatrixAdaGrad",
        FullMatrixAdaGrad,
        {"lr": 1e-1},
        {"lr": _LR, "eps": [0.0, float("nan")], "max_size": [2]},
        {"lr": 3e-1, "eps": 1e-2},
        has_foreach=False,
        float64_state=("sum_outer",),
    ),
]
