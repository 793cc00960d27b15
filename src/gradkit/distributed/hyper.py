"""What each hyper-parameter of the distributed algorithms may be, checked before a run starts
(from Python and from the command line alike)."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

from gradkit.distributed.delays import DelayProfile
from gradkit.optim.schedules import KINDS as SCHEDULES

ATTACKS = ("invert", "random")
NORMS = ("l2", "max")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _delay_profile(value: Any) -> bool:
    try:
        DelayProfile.parse(value)
    except (ValueError, AttributeError):
        return False
    return True


RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "lr": (lambda v: _number(v) and v >= 0, "a finite number >= 0"),
    "momentum": (lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "dgc_momentum": (lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "beta1": (lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "beta2": (lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "eps": (lambda v: _number(v) and v > 0, "a finite number > 0"),
    "weight_decay": (lambda v: _number(v) and v >= 0, "a finite number >= 0"),
    "alpha": (lambda v: v is None or (_number(v) and 0 <= v <= 1), "a number in [0, 1]"),
    "beta": (lambda v: _number(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "tau": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "byzantine": (lambda v: _integer(v) and v >= 0, "an integer >= 0"),
    "attack": (lambda v: v in ATTACKS, f"one of {', '.join(ATTACKS)}"),
    "levels": (lambda v: _integer(v) and 1 <= v <= 127, "an integer in [1, 127]"),
    "bucket_size": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "norm": (lambda v: v in NORMS, f"one of {', '.join(NORMS)}"),
    "density": (lambda v: _number(v) and 0 < v <= 1, "a number in (0, 1]"),
    "sample_ratio": (lambda v: _number(v) and 0 < v <= 1, "a number in (0, 1]"),
    "clip_norm": (lambda v: v is None or (_number(v) and v > 0), "a number > 0 (or None)"),
    "warmup_steps": (lambda v: _integer(v) and v >= 0, "an integer >= 0"),
    "momentum_correction": (lambda v: isinstance(v, bool), "true or false"),
    "factor_masking": (lambda v: isinstance(v, bool), "true or false"),
    "sampled": (lambda v: isinstance(v, bool), "true or false"),
    "schedule": (lambda v: v in SCHEDULES, f"one of {', '.join(SCHEDULES)}"),
    "l1": (lambda v: _number(v) and v >= 0, "a finite number >= 0"),
    "l2": (lambda v: _number(v) and v >= 0, "a finite number >= 0"),
    "rounds": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "prox": (lambda v: v is None or callable(v), "a function prox(v, step) (or None)"),
    "smoothness": (lambda v: v is None or (_number(v) and v > 0), "a number > 0 (or None)"),
    "q": (lambda v: _number(v) and v > 0, "a finite number > 0"),
    "delays": (_delay_profile, "none, bounded:D, power:p (0 < p < 1) or linear:f (0 < f < 1)"),
}
"""name -> (accepts(value), what is allowed). Every built-in algorithm's parameters have a rule
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
            raise ValueError(f"{name} has no hyper-parameter {key!r}; it takes {', '.join(takes)}")
        accepts, allowed = RULES.get(key, (lambda v: True, ""))
        if not accepts(value):
            raise ValueError(f"{name}: {key} must be {allowed}, got {value!r}")
