"""gradkit.checks: the one way a value is validated, worded the same from Python and the CLI."""

from __future__ import annotations

import math

import pytest
import torch

from gradkit.checks import (
    FLAG,
    NONNEGATIVE,
    POSITIVE,
    PROBABILITY,
    UNIT_INTERVAL,
    InputError,
    integer,
    number,
    one_of,
)


def test_a_rule_says_what_is_allowed_and_what_it_got():
    with pytest.raises(InputError, match=r"^lr must be a finite number >= 0, got -1$"):
        NONNEGATIVE("lr", -1)
    assert issubclass(InputError, ValueError)  # callers catching ValueError keep working
    assert UNIT_INTERVAL.allowed == "a number in [0, 1)"
    assert number(0, 1, low_open=True).allowed == "a number in (0, 1]"
    assert number().allowed == "a finite number"
    assert integer(1).allowed == "an integer >= 1"
    assert integer(1, 127).allowed == "an integer in [1, 127]"
    assert one_of(("l2", "max")).allowed == "one of l2, max"
    assert PROBABILITY.or_none().allowed == "a number in [0, 1] (or None)"


@pytest.mark.parametrize("value", [True, math.nan, math.inf, "0.1", None, torch.ones(2)])
def test_numbers_are_finite_reals_and_bools_are_not_numbers(value):
    with pytest.raises(InputError):
        POSITIVE("x", value)


def test_one_element_tensors_count_as_their_number():
    POSITIVE("lr", torch.tensor(0.1))
    with pytest.raises(InputError):
        POSITIVE("lr", torch.tensor(0.0))


def test_interval_ends_integers_and_flags():
    UNIT_INTERVAL("beta", 0.0)
    with pytest.raises(InputError):
        UNIT_INTERVAL("beta", 1.0)
    integer(1)("n", 3)
    for bad in (0, 1.0, True):
        with pytest.raises(InputError):
            integer(1)("n", bad)
    FLAG("sampled", False)
    with pytest.raises(InputError, match="sampled must be true or false, got 'yes'"):
        FLAG("sampled", "yes")
    PROBABILITY.or_none()("alpha", None)
