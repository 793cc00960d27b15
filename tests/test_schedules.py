"""Step-size schedules for stale gradients: values, the sufficient conditions, the LRScheduler."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from gradkit.optim.schedules import Schedule, ScheduleLR, constant, polynomial, quasilinear


def test_schedule_values_from_their_formulas():
    assert constant(7, 0.3) == 0.3
    assert polynomial(1, 0.5, 0.6) == 0.5
    assert polynomial(100, 2.0, 0.5) == pytest.approx(0.2, rel=1e-15)

    def h(m):
        return m * math.log(m) * math.log(math.log(m))

    for n in (1, 2, 17, 10**6):
        assert quasilinear(n, 0.7) == pytest.approx(0.7 * h(16) / h(n + 15), rel=1e-14)
    assert math.log(math.log(16)) > 0
    values = [quasilinear(n) for n in range(1, 2000)]
    assert values[0] == 1 and all(a > b for a, b in itertools.pairwise(values))
    # n alpha_n -> 0 (slightly faster than 1/n), but halving n at most halves alpha_n
    assert 10**6 * quasilinear(10**6) < 10**3 * quasilinear(10**3)
    assert all(quasilinear(2 * n) > 0.4 * quasilinear(n) for n in (10, 10**3, 10**6))
    assert Schedule("polynomial", 0.4, 0.95)(8) == polynomial(8, 0.4, 0.95)


@pytest.mark.parametrize(
    ("schedule", "satisfied"),  # delays bounded, n^0.5, n^0.8, n/2
    [
        (Schedule("constant"), (False, False, False, False)),
        (Schedule("polynomial", q=0.6), (True, False, False, False)),
        (Schedule("polynomial", q=0.95), (True, True, True, False)),
        (Schedule("polynomial", q=1.0), (True, True, True, False)),
        (Schedule("polynomial", q=1.2), (False, False, False, False)),
        (Schedule("quasilinear"), (True, True, True, True)),
    ],
)
def test_sufficient_conditions_for_polynomial_delays(schedule, satisfied):
    assert tuple(schedule.satisfies(p) for p in (0, 0.5, 0.8, 1)) == satisfied
    ok, reason = schedule.why(0.5)
    assert ok == satisfied[1] and reason


def test_schedule_lr_drives_any_optimizer():
    w = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.Adam([w], lr=0.3)
    schedule = Schedule("quasilinear")
    scheduler = ScheduleLR(opt, schedule)
    rates = []
    for _ in range(5):
        rates.append(opt.param_groups[0]["lr"])
        w.grad = torch.ones(3)
        opt.step()
        scheduler.step()
    assert rates == pytest.approx([0.3 * schedule(n) for n in range(1, 6)], rel=1e-12)
    restored = ScheduleLR(torch.optim.Adam([w], lr=0.3), schedule)
    restored.load_state_dict(scheduler.state_dict())
    assert restored.last_epoch == 5


def test_bad_schedules_are_refused():
    with pytest.raises(ValueError, match="unknown schedule 'cosine'; choose from constant"):
        Schedule("cosine")
    with pytest.raises(ValueError, match="first step c must be a positive number, got 0"):
        Schedule("constant", 0.0)
    with pytest.raises(ValueError, match="exponent q must be a positive number, got -1"):
        Schedule("polynomial", q=-1.0)
    with pytest.raises(ValueError, match="update count n starts at 1, got 0"):
        quasilinear(0)
    with pytest.raises(ValueError, match=r"delay exponent p must lie in \[0, 1\]"):
        Schedule("quasilinear").satisfies(1.5)
