"""Imposed delay profiles and the exact delayed-SGD recursion."""

from __future__ import annotations

import math

import pytest
import torch

from gradkit.distributed.delays import DelayProfile, delayed_sgd


def test_profiles_follow_their_formulas_and_never_reach_before_the_start():
    assert [DelayProfile("none")(n) for n in (1, 50)] == [0, 0]
    assert [DelayProfile("bounded", 10)(n) for n in (1, 5, 11, 100)] == [0, 4, 10, 10]
    assert [DelayProfile("power", 0.5)(n) for n in (1, 4, 99, 100)] == [0, 2, 9, 10]
    assert [DelayProfile("linear", 0.5)(n) for n in (1, 2, 7, 1000)] == [0, 1, 3, 500]
    assert DelayProfile.parse("power:0.8") == DelayProfile("power", 0.8)
    assert [DelayProfile.parse(t).exponent for t in ("bounded:3", "power:0.8", "linear:0.5")] == [
        0.0,
        0.8,
        1.0,
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fixed:3", "unknown delay profile 'fixed'; choose from none, bounded, power, linear"),
        ("power:1.5", r"a power delay needs p in \(0, 1\), got 1.5"),
        ("bounded:2.5", "a bounded delay needs an integer D >= 0, got 2.5"),
        ("linear", "needs a value: none, bounded:D, power:p or linear:f"),
        ("linear:half", "'half' is not a number"),
    ],
)
def test_bad_profiles_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        DelayProfile.parse(text)


@pytest.mark.parametrize("profile", ["none", "bounded:3", "power:0.5", "linear:0.5"])
def test_delayed_sgd_applies_the_gradient_of_iterate_n_minus_d_n(profile):
    delays = DelayProfile.parse(profile)
    a = torch.tensor([1.0, 3.0, 0.5], dtype=torch.float64)
    noise = torch.Generator().manual_seed(0)
    draws = torch.randn(60, 3, generator=noise, dtype=torch.float64)

    def gradient(x, n):
        return a * x + 0.1 * draws[n - 1]

    def step(n):
        return 0.3 / math.sqrt(n)

    seen = {}
    final = delayed_sgd(gradient, torch.ones(3, dtype=torch.float64), step, delays, 59,
                        record=lambda n, x: seen.__setitem__(n, x.clone()))  # fmt: skip
    history = [None, torch.ones(3, dtype=torch.float64)]  # the reference keeps every iterate
    for n in range(1, 60):
        stale = history[n - delays(n)]
        history.append(history[n] - step(n) * (a * stale + 0.1 * draws[n - 1]))
    torch.testing.assert_close(final, history[60], rtol=0, atol=0)
    assert all(torch.equal(seen[n], history[n]) for n in range(1, 61))
    single = delayed_sgd(lambda x, n: a.float() * x + 0.1 * draws[n - 1].float(),
                         torch.ones(3), step, delays, 59)  # fmt: skip
    assert single.dtype == torch.float32  # float32 iterates reach float32 accuracy
    torch.testing.assert_close(single, history[60].float(), rtol=1e-5, atol=1e-6)


def test_delayed_sgd_runs_a_batch_of_rows_with_their_own_steps():
    steps = torch.tensor([[0.1], [0.2]], dtype=torch.float64)
    final = delayed_sgd(lambda x, n: x, torch.ones(2, 4, dtype=torch.float64),
                        lambda n: steps, DelayProfile("none"), 3)  # fmt: skip
    torch.testing.assert_close(final, (1 - steps).pow(3).expand(2, 4))
    with pytest.raises(ValueError, match="updates must be an integer >= 0"):
        delayed_sgd(lambda x, n: x, torch.ones(2), lambda n: 0.1, DelayProfile("none"), -1)


def test_the_delayed_sgd_run_kind_measures_distance_and_its_last_decade():
    from gradkit.experiments.kinds.async_delays import delayed_sgd_run

    run = delayed_sgd_run("quadratic", "linear:0.5", "quasilinear", 0.1, seed=0, updates=2000)
    assert not run.diverged and run.metric("max_delay") == 1000
    assert run.metric("distance") < 0.1 and run.metric("decade_ratio") < 1
    x, y = run.curve("distance")
    assert x[0] == 1 and y[0] == 1 and x[-1] == 2001
    again = delayed_sgd_run("quadratic", "linear:0.5", "quasilinear", 0.1, seed=0, updates=2000)
    assert again.metrics == run.metrics
    blown = delayed_sgd_run("quadratic", "none", "constant", 3.0, seed=0, updates=2000)
    assert blown.diverged and math.isinf(blown.metric("distance"))
    with pytest.raises(ValueError, match="unknown problem 'rosenbrock'; choose from quadratic"):
        delayed_sgd_run("rosenbrock", "none", "constant", 0.1, seed=0, updates=10)
    with pytest.raises(ValueError, match="updates must be a positive integer, got 0"):
        delayed_sgd_run("quadratic", "none", "constant", 0.1, seed=0, updates=0)


def assert_same_curve(row: dict, alone) -> None:
    """A batched run's curve (JSON) equals the run alone up to rounding."""
    torch.testing.assert_close(
        torch.tensor(row["curves"]["distance"]),
        torch.tensor(alone.curves["distance"]),
        rtol=1e-12,
        atol=0,
    )


def test_the_delayed_sgd_run_kind_batches_seeds_as_rows_with_the_same_numbers():
    from gradkit.experiments.kinds.async_delays import delayed_sgd_run, delayed_sgd_runs

    for problem, schedule, c in (
        ("quadratic", "quasilinear", 0.3),
        ("nonconvex", "polynomial", 0.5),
    ):
        batch = delayed_sgd_runs(problem, "power:0.5", schedule, c, [0, 1, 2], 3000, q=0.8)
        for seed, row in enumerate(batch.extra["runs"]):
            alone = delayed_sgd_run(problem, "power:0.5", schedule, c, seed, 3000, q=0.8)
            assert row["metrics"] == pytest.approx(alone.metrics, rel=1e-12)
            assert_same_curve(row, alone)
    blown = delayed_sgd_runs("quadratic", "none", "constant", 3.0, [0, 1], 2000)
    for seed, row in enumerate(blown.extra["runs"]):
        alone = delayed_sgd_run("quadratic", "none", "constant", 3.0, seed, 2000)
        assert row["diverged"] and alone.diverged
        assert_same_curve(row, alone)
    assert blown.diverged
