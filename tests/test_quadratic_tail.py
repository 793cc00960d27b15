"""The noisy quadratic's tail loss, which sign-depends-on-geometry compares: defined at every
noise level, whether or not a run reaches the reported target."""

from __future__ import annotations

import math
import statistics

from gradkit.experiments.kinds.quadratic import TAIL, quadratic_run


def test_tail_fraction_is_the_mean_over_the_last_quarter():
    run = quadratic_run(False, 0.2, 0, "sgd", 0.1, 400, 0.01, evals=40)
    points = [f for step, f in run.curves["objective"] if step > (1 - TAIL) * 400]
    f0 = run.curves["objective"][0][1]
    assert len(points) == 10
    assert math.isclose(run.metrics["tail_fraction"], statistics.fmean(points) / f0)


def test_tail_fraction_is_defined_where_the_target_is_not_reached():
    run = quadratic_run(True, 5.0, 0, "sgd", 0.01, 200, 0.01)
    assert run.metrics["steps_to_target"] == 201  # never reached
    assert 0 < run.metric("tail_fraction") < math.inf


def test_a_diverged_run_scores_an_infinite_tail():
    run = quadratic_run(False, 0.2, 0, "sgd", 10.0, 200, 0.01)
    assert run.diverged and run.metric("tail_fraction") == math.inf
