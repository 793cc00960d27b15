"""What a value may be, checked one way everywhere: a :class:`Rule` names what is allowed and
raises ``ValueError("<name> must be <allowed>, got <value>")`` otherwise.

Optimizers (their ``_checks``), the distributed algorithms' hyper-parameters, the simulator's
cluster model and the command line's arguments all check with rules built here, so a value is
judged, and its error worded, the same from Python and from ``--param``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


class InputError(ValueError):
    """A value a user gave (a hyper-parameter, a shape, a name, a path) is not allowed. Every
    check of gradkit raises it, with one line naming what was wrong and what is allowed; the
    command line reports it as a usage error (exit status 2), and any other exception as the
    bug it is."""


def real(value: Any) -> float | None:
    """``value`` as a finite float (a one-element tensor counts as its number); None if it is
    not a finite real number (bools are not numbers here)."""
    if hasattr(value, "numel") and hasattr(value, "item"):  # a tensor (torch not imported here)
        if value.numel() != 1 or value.is_complex():
            return None
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


@dataclass(frozen=True)
class Rule:
    """``accepts(value)`` decides; ``allowed`` says what is allowed, as the end of the sentence
    "<name> must be ...". Calling a rule with (name, value) checks."""

    accepts: Callable[[Any], bool]
    allowed: str

    def __call__(self, name: str, value: Any) -> None:
        if not self.accepts(value):
            raise InputError(f"{name} must be {self.allowed}, got {value!r}")

    def or_none(self) -> Rule:
        return Rule(lambda v: v is None or self.accepts(v), f"{self.allowed} (or None)")


def number(
    low: float = -math.inf, high: float = math.inf, *, low_open: bool = False,
    high_open: bool = False,
) -> Rule:  # fmt: skip
    """A finite number in the interval from ``low`` to ``high`` (open at an end where asked)."""

    def accepts(value: Any) -> bool:
        x = real(value)
        if x is None:
            return False
        above = x > low if low_open else x >= low
        below = x < high if high_open else x <= high
        return above and below

    if high < math.inf:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        allowed = f"a number in {left}{low:g}, {high:g}{right}"
    elif low > -math.inf:
        allowed = f"a finite number {'>' if low_open else '>='} {low:g}"
    else:
        allowed = "a finite number"
    return Rule(accepts, allowed)


def integer(minimum: int = 0, maximum: int | None = None) -> Rule:
    """An integer (not a bool) >= ``minimum`` and, if given, <= ``maximum``."""

    def accepts(value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int):
            return False
        return minimum <= value and (maximum is None or value <= maximum)

    if maximum is None:
        return Rule(accepts, f"an integer >= {minimum}")
    return Rule(accepts, f"an integer in [{minimum}, {maximum}]")


def one_of(options: Iterable[Any]) -> Rule:
    options = tuple(options)
    return Rule(lambda v: v in options, f"one of {', '.join(map(str, options))}")


FLAG = Rule(lambda v: isinstance(v, bool), "true or false")
NONNEGATIVE = number(0)
POSITIVE = number(0, low_open=True)
UNIT_INTERVAL = number(0, 1, high_open=True)
"""[0, 1): the range of a moving-average coefficient."""
FRACTION = number(0, 1, low_open=True)
"""(0, 1]: a share of something."""
PROBABILITY = number(0, 1)
