"""Every optimizer gradkit has, described once for the contract suite.

A new optimizer joins the suite with one ``OptimizerCase(...)`` line in :data:`CASES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gradkit.optim import MSVAG, SVAG, SignSGD, Signum


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
]
