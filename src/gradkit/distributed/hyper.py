"""What each hyper-parameter of the distributed algorithms may be, checked before a run starts
(from Python and from the command line alike)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from gradkit.checks import (
    FLAG,
    FRACTION,
    NONNEGATIVE,
    POSITIVE,
    PROBABILITY,
    UNIT_INTERVAL,
    InputError,
    Rule,
    integer,
    one_of,
)
from gradkit.distributed.delays import DelayProfile
from gradkit.optim.schedules import KINDS as SCHEDULES

ATTACKS = ("invert", "random")
NORMS = ("l2", "max")


def _parses_as_delays(value: Any) -> bool:
    try:
        DelayProfile.parse(value)
    except (ValueError, AttributeError):
        return False
    return True


DELAYS = Rule(_parses_as_delays, "none, bounded:D, power:p (0 < p < 1) or linear:f (0 < f < 1)")


RULES: dict[str, Rule] = {
    "lr": NONNEGATIVE,
    "momentum": UNIT_INTERVAL,
    "dgc_momentum": UNIT_INTERVAL,
    "beta1": UNIT_INTERVAL,
    "beta2": UNIT_INTERVAL,
    "eps": POSITIVE,
    "weight_decay": NONNEGATIVE,
    "alpha": PROBABILITY.or_none(),
    "beta": PROBABILITY,
    "tau": integer(1),
    "byzantine": integer(0),
    "attack": one_of(ATTACKS),
    "levels": integer(1, 127),
    "bucket_size": integer(1),
    "norm": one_of(NORMS),
    "density": FRACTION,
    "sample_ratio": FRACTION,
    "clip_norm": POSITIVE.or_none(),
    "warmup_steps": integer(0),
    "momentum_correction": FLAG,
    "factor_masking": FLAG,
    "sampled": FLAG,
    "schedule": one_of(SCHEDULES),
    "l1": NONNEGATIVE,
    "l2": NONNEGATIVE,
    "rounds": integer(1),
    "prox": Rule(lambda v: v is None or callable(v), "a function prox(v, step) (or None)"),
    "smoothness": POSITIVE.or_none(),
    "q": POSITIVE,
    "delays": DELAYS,
}
"""name -> its rule. Every built-in algorithm's parameters have a rule
(a test checks it); a user's program may take others, which are passed on unchecked."""


def accepted(program: Callable) -> list[str]:
    """The hyper-parameters a worker program takes (its keyword arguments but the worker)."""
    return [k for k in inspect.signature(program).parameters if k != "worker"]


def check_hyper(name: str, program: Callable, hyper: dict[str, Any]) -> None:
    """Raise ValueError naming the first hyper-parameter that ``program`` (algorithm ``name``)
    does not take or whose value is not allowed."""
    takes = accepted(program)
    for key, value in hyper.items():
        if key not in takes:
            raise InputError(f"{name} has no hyper-parameter {key!r}; it takes {', '.join(takes)}")
        if key in RULES:
            RULES[key](f"{name}: {key}", value)
