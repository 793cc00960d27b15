"""Compressed data-parallel programs against plain float64 references (simulator)."""

from __future__ import annotations

import math

import pytest
import torch

from distributed_helpers import regression_problem
from gradkit.optim import Signum
from gradkit.sim import Cluster, Simulator
from test_sim import initial_parameters, plain_gradient, reference_batches


def run(algorithm, workers, **hyper):
    simulator = Simulator(
        algorithm, regression_problem(), Cluster(workers), epochs=3, seed=3, **hyper
    )
    return simulator, simulator.run()


def test_majority_vote_with_one_worker_is_signum():
    problem = regression_problem()
    simulator, _ = run("signum-vote", 1, lr=0.01, momentum=0.8, weight_decay=0.1)
    model = problem.build_model()
    optimizer = Signum(model.parameters(), lr=0.01, momentum=0.8, weight_decay=0.1, zero_sign=1)
    for x, y in reference_batches(problem, 1, 3, simulator.workers[0].steps)[0]:
        optimizer.zero_grad()
        problem.loss_fn(model(x), y).backward()
        optimizer.step()
    expected = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    torch.testing.assert_close(simulator.workers[0].x, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("attack", ["invert", None])
def test_majority_vote_matches_a_plain_reference(attack):
    n, lr, beta, decay = 5, 0.01, 0.9, 0.05
    byzantine = 2 if attack else 0
    problem = regression_problem()
    simulator, trace = run(
        "signum-vote", n, lr=lr, momentum=beta, weight_decay=decay, byzantine=byzantine
    )
    steps = simulator.workers[0].steps
    batches = reference_batches(problem, n, 3, steps)
    x = torch.cat(initial_parameters(problem))
    momenta = [torch.zeros_like(x) for _ in range(n)]
    for step in range(steps):
        votes = torch.zeros_like(x)
        for rank in range(n):
            gw, gb = plain_gradient(x[:-1], x[-1], *batches[rank][step])
            momenta[rank] = beta * momenta[rank] + (1 - beta) * torch.cat([gw, gb.reshape(1)])
            sent = -momenta[rank] if rank >= n - byzantine else momenta[rank]
            votes += torch.where(sent >= 0, 1.0, -1.0).double()
        x = x - lr * (torch.where(votes >= 0, 1.0, -1.0).double() + decay * x)
    for worker in simulator.workers:
        torch.testing.assert_close(worker.x, x, rtol=1e-12, atol=1e-12)
    chunk = math.ceil(math.ceil(x.numel() / 8) / n)
    assert trace.bytes_sent == [steps * 2 * (n - 1) * chunk] * n
    assert trace.counter("payload_bits") == n * steps * x.numel()


def test_topk_at_full_density_is_allreduce_sgd():
    dense, _ = run("allreduce", 4, lr=0.05)
    sparse, _ = run("topk", 4, lr=0.05, density=1.0)
    torch.testing.assert_close(sparse.workers[0].x, dense.workers[0].x, rtol=1e-6, atol=1e-7)


def test_byzantine_mean_aggregation_follows_the_negated_gradients():
    n, lr = 3, 0.05
    problem = regression_problem()
    simulator, _ = run("allreduce", n, lr=lr, byzantine=1)
    steps = simulator.workers[0].steps
    batches = reference_batches(problem, n, 3, steps)
    x = torch.cat(initial_parameters(problem))
    for step in range(steps):
        total = torch.zeros_like(x)
        for rank in range(n):
            gw, gb = plain_gradient(x[:-1], x[-1], *batches[rank][step])
            total += (-1 if rank == n - 1 else 1) * torch.cat([gw, gb.reshape(1)])
        x = x - lr * total / n
    torch.testing.assert_close(simulator.workers[0].x, x, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("algorithm", "hyper"),
    [
        ("qsgd", {"levels": 3}),
        ("ecq", {"levels": 1, "alpha": 1.0, "beta": 0.9}),
        ("dgc", {"density": 0.2, "dgc_momentum": 0.5}),
        ("signum-vote", {"attack": "random", "byzantine": 1}),
    ],
)
def test_compressed_programs_train(algorithm, hyper):
    _, trace = run(algorithm, 4, lr=0.1, **hyper)
    assert trace.final("train_loss") < trace.evals[0]["train_loss"] / 2


def test_bad_byzantine_settings_are_clear_errors():
    with pytest.raises(ValueError, match="byzantine must be an integer in"):
        run("allreduce", 3, lr=0.1, byzantine=4)
    with pytest.raises(ValueError, match="attack must be one of invert, random, got 'flip'"):
        run("signum-vote", 3, lr=0.1, attack="flip")


def test_simulated_workers_decode_each_gathered_round_once(monkeypatch):
    """The n workers of a simulated collective decode its payloads once, not n times (a real
    process decodes its own copy); every worker still ends with the same model."""
    from gradkit.distributed import compressed

    calls = []
    decode = compressed.decode_mean
    monkeypatch.setattr(
        compressed,
        "decode_mean",
        lambda codec, payloads: calls.append(1) or decode(codec, payloads),
    )
    simulator, _ = run("ecq", 4, lr=0.1, levels=1)
    tensors = len(simulator.workers[0].param_sizes)
    assert len(calls) == simulator.workers[0].steps * tensors
    for worker in simulator.workers[1:]:
        assert torch.equal(worker.x, simulator.workers[0].x)


def test_shared_value_outside_the_simulator_computes_every_time():
    from gradkit.distributed.ops import Gathered, shared_value

    calls = []
    assert shared_value([1, 2], "k", lambda _: calls.append(1) or 3) == 3
    assert shared_value([1, 2], "k", lambda _: calls.append(1) or 3) == 3
    assert len(calls) == 2
    gathered = Gathered([1, 2], {})
    assert shared_value(gathered, "k", lambda _: calls.append(1) or 4) == 4
    assert shared_value(Gathered([1, 2], gathered.shared), "k", lambda _: 5) == 4
