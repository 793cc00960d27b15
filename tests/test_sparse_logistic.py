"""l1 + l2 logistic regression: the optimum against an independent proximal-gradient solve, and
the soft-thresholding prox."""

from __future__ import annotations

import math

import pytest
import torch

from gradkit.optim.prox import l1_prox, soft_threshold
from gradkit.tasks.sparse_logistic import sparse_logistic


def test_soft_threshold_is_the_l1_prox():
    v = torch.tensor([-3.0, -0.5, 0.0, 0.2, 2.0], dtype=torch.float64)
    torch.testing.assert_close(soft_threshold(v, 1.0), torch.tensor([-2.0, 0, 0, 0, 1.0]).double())
    torch.testing.assert_close(l1_prox(v, 0.5, 2.0), soft_threshold(v, 1.0))
    # the prox minimises |x| t + (x - v)^2 / 2 coordinatewise: check on a fine grid
    grid = torch.linspace(-4, 4, 80001, dtype=torch.float64)
    for value in v.tolist():
        best = grid[torch.argmin(grid.abs() + (grid - value) ** 2 / 2)]
        assert abs(float(best) - float(soft_threshold(torch.tensor(value), 1.0))) < 1e-4
    with pytest.raises(ValueError, match="threshold must be a number >= 0, got -1"):
        soft_threshold(v, -1)
    with pytest.raises(ValueError, match="l1 weight must be a number >= 0, got nan"):
        l1_prox(v, 1.0, math.nan)


def test_the_optimum_matches_an_independent_proximal_gradient_solve():
    problem = sparse_logistic("breast-cancer", l1=1e-2)
    x = torch.cat([problem.inputs, torch.ones(len(problem.targets), 1, dtype=torch.float64)], 1)
    y, n = problem.targets, len(problem.targets)
    step = 1.0 / (torch.linalg.matrix_norm(x, 2) ** 2 / (4 * n) + problem.l2)
    w = torch.zeros(x.shape[1], dtype=torch.float64)
    momentum, previous, t = w.clone(), w.clone(), 1.0
    for _ in range(20_000):  # FISTA, written out: gradient of the mean logistic loss + l2
        grad = x.T @ (torch.sigmoid(x @ momentum) - y) / n + problem.l2 * momentum
        w = momentum - step * grad
        w = torch.sign(w) * (w.abs() - step * problem.l1).clamp_min(0)
        t_next = (1 + math.sqrt(1 + 4 * t * t)) / 2
        momentum, previous, t = w + (t - 1) / t_next * (w - previous), w, t_next
    margin = x @ w
    reference = float(torch.nn.functional.softplus(-(2 * y - 1) * margin).mean())
    reference += 0.5 * problem.l2 * float(w @ w) + problem.l1 * float(w.abs().sum())
    assert problem.optimum == pytest.approx(reference, abs=1e-10)
    assert problem.optimum <= reference + 1e-12
    assert problem.kkt_residual(problem.solution) < 1e-7
    assert problem.objective(problem.solution) == problem.optimum


def test_sparse_synthetic_recovers_its_support_and_bad_input_is_refused():
    problem = sparse_logistic("sparse-synthetic", l1=1e-2, seed=1)
    found = set(torch.nonzero(problem.solution[:-1]).flatten().tolist())
    assert set(problem.support.tolist()) <= found and len(found) < 40
    assert problem.kkt_residual(problem.solution) < 1e-7
    with pytest.raises(ValueError, match="unknown problem 'rcv1'; choose from breast-cancer"):
        sparse_logistic("rcv1")
    with pytest.raises(ValueError, match=r"l1 must be a number >= 0, got -0\.1"):
        sparse_logistic("breast-cancer", l1=-0.1)


def test_dave_pg_on_uneven_whole_shards_converges_linearly_to_the_optimum():
    from gradkit.sim import Cluster, simulate

    problem = sparse_logistic("breast-cancer", l1=1e-2, l2=0.1)  # shards of 143, 142, 142, 142
    gamma = 2 / (problem.l2 + problem.smoothness())
    trace = simulate("dave-pg", problem.problem(), Cluster(4), epochs=300, lr=gamma,
                     l1=problem.l1, l2=problem.l2)  # fmt: skip
    epochs, gaps = trace.series("suboptimality")
    assert epochs[-1] == 300 and gaps[0] > 0.1
    assert max(gaps[-20:]) < 1e-12  # linear convergence down to float64 resolution
    assert gaps[100] < 1e-6 < gaps[50]


@pytest.mark.parametrize(("algorithm", "workers"), [("prox-grad", 4), ("async-sgd", 1)])
def test_proximal_gradient_baselines_equal_full_batch_proximal_gradient(algorithm, workers):
    from gradkit.sim import Cluster, Simulator

    problem = sparse_logistic("breast-cancer", l1=1e-2, l2=0.1)
    gamma = 1 / problem.smoothness()
    simulator = Simulator(algorithm, problem.problem(), Cluster(workers), epochs=30, lr=gamma,
                          l1=problem.l1, l2=problem.l2)  # fmt: skip
    simulator.run()
    w = torch.zeros(problem.dimension, dtype=torch.float64)
    for _ in range(30):  # x <- prox(x - gamma grad g(x)), g the l2-regularised mean loss
        w = problem.prox(w - gamma * problem.smooth_gradient(w), gamma)
    final = simulator.workers[0].x if algorithm == "prox-grad" else simulator.server.state
    torch.testing.assert_close(final, w, rtol=1e-10, atol=1e-12)


def test_uneven_shares_keep_the_dave_invariant_and_bad_shares_are_refused():
    from gradkit.sim import Cluster, ComputeModel, Simulator

    problem = sparse_logistic("breast-cancer", l1=1e-2, l2=0.1)
    shares = (0.1, 0.2, 0.3, 0.4)
    simulator = Simulator("dave-pg", problem.problem(shares), Cluster(4, ComputeModel(jitter=0.5)),
                          epochs=20, lr=0.3, l1=problem.l1, l2=problem.l2)  # fmt: skip
    trace = simulator.run()
    sizes = [round(w.share * len(problem.targets)) for w in simulator.workers]
    assert sizes == [57, 114, 171, 227]  # 569 samples: the last shard takes the rest
    weighted = sum(w.share * w.iterate for w in simulator.workers)
    torch.testing.assert_close(simulator.server.state, weighted, rtol=1e-12, atol=1e-12)
    assert trace.final("suboptimality") < trace.evals[0]["suboptimality"] / 100
    for bad, message in (
        ((0.5, 0.6, 0.1, 0.1), r"shares must sum to 1, got \[0.5, 0.6, 0.1, 0.1\]"),
        ((0.5, 0.5), "shares must be 4 positive numbers"),
        ((1.0, 0.0, 0.0, 0.0), "shares must be 4 positive numbers"),
        ((0.999, 0.0005, 0.0003, 0.0002), "leave a worker without samples out of 569"),
    ):
        with pytest.raises(ValueError, match=message):
            Simulator("dave-pg", problem.problem(bad), Cluster(4), epochs=1, lr=0.3)
