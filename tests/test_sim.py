"""The virtual-clock simulator: reference tests of the algorithms, cost model, determinism."""

from __future__ import annotations

import copy
import dataclasses
import math
import re

import pytest
import torch

from distributed_helpers import regression_problem
from gradkit.distributed import Algorithm, Problem
from gradkit.sim import Cluster, ComputeModel, NetworkModel, SimulationError, Simulator, simulate

FREE_NETWORK = NetworkModel(latency=0.0, bandwidth=1e18)


def reference_batches(problem, world_size, seed, steps):
    """Each worker's mini-batches in order (the data order is the drivers' definition, not
    the algorithm under test)."""
    shards, _ = problem.partition(world_size, 1, seed)
    return [
        [shard.next_batch() for _ in range(steps)]
        for shard in (problem.shard(index, rank, seed) for rank, index in enumerate(shards))
    ]


def plain_gradient(w, b, x, y):
    """Gradient of mean (x w + b - y)^2, written out."""
    residual = x @ w + b - y
    return 2 * x.T @ residual / len(y), 2 * residual.mean()


def initial_parameters(problem):
    model = problem.build_model()
    return model.weight.detach().reshape(-1).clone(), model.bias.detach().clone()


def run(algorithm, workers, *, problem=None, epochs=2, seed=3, cluster=None, **hyper):
    problem = problem or regression_problem()
    simulator = Simulator(
        algorithm, problem, cluster or Cluster(workers), epochs=epochs, seed=seed, **hyper
    )
    return simulator, simulator.run()


def test_a_whole_shard_batch_is_the_shard_itself_and_draws_nothing():
    problem = dataclasses.replace(regression_problem(), whole_shards=True)
    (index,) = problem.partition(1, 1, seed=3)[0]
    shard = problem.shard(index, 0, seed=3)
    state = shard.generator.get_state()
    for _ in range(3):
        inputs, targets = shard.next_batch()
        assert inputs is shard.inputs and targets is shard.targets
    assert torch.equal(shard.generator.get_state(), state)


def test_one_worker_allreduce_is_plain_sgd_step_for_step():
    problem = regression_problem()
    simulator, trace = run("allreduce", 1, lr=0.05)
    steps = simulator.workers[0].steps
    w, b = initial_parameters(problem)
    losses = []
    for x, y in reference_batches(problem, 1, 3, steps)[0]:
        losses.append(float(((x @ w + b - y) ** 2).mean()))
        gw, gb = plain_gradient(w, b, x, y)
        w, b = w - 0.05 * gw, b - 0.05 * gb
    assert [s.loss for s in trace.steps] == pytest.approx(losses, rel=1e-12)
    torch.testing.assert_close(simulator.workers[0].x, torch.cat([w, b]), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("algorithm", ["allreduce", "dpsgd"])
def test_synchronous_algorithms_match_a_plain_float64_reference(algorithm):
    n, lr, problem = 4, 0.05, regression_problem()
    simulator, trace = run(algorithm, n, lr=lr)
    steps = simulator.workers[0].steps
    batches = reference_batches(problem, n, 3, steps)
    w0, b0 = initial_parameters(problem)
    models = [torch.cat([w0, b0]) for _ in range(n)]
    for step in range(steps):
        grads = []
        for rank in range(n):
            x, y = batches[rank][step]
            gw, gb = plain_gradient(models[rank][:-1], models[rank][-1], x, y)
            grads.append(torch.cat([gw, gb.reshape(1)]))
        if algorithm == "allreduce":
            mean = sum(grads) / n
            models = [m - lr * mean for m in models]
        else:  # x_i <- (x_{i-1} + x_i + x_{i+1}) / 3 - lr g_i(x_i)
            models = [
                (models[(i - 1) % n] + models[i] + models[(i + 1) % n]) / 3 - lr * grads[i]
                for i in range(n)
            ]
    for rank in range(n):
        torch.testing.assert_close(simulator.workers[rank].x, models[rank], rtol=1e-10, atol=1e-12)
    assert trace.mean_staleness() == (0.0 if algorithm == "allreduce" else 1.0)


def test_same_seed_gives_an_identical_trace_and_another_seed_does_not():
    cluster = Cluster(4, ComputeModel(jitter=0.5, slowdown={1: 3.0}))
    traces = [run("adpsgd", 4, cluster=cluster, seed=s, lr=0.05)[1] for s in (5, 5, 6)]
    for trace in traces:
        trace.wall_seconds = 0.0
    assert traces[0].to_dict() == traces[1].to_dict()
    assert traces[0].to_dict() != traces[2].to_dict()


def one_all_reduce(worker, *, lr, numel):
    yield worker.all_reduce(torch.zeros(numel))


@pytest.mark.parametrize("n", [2, 5, 16])
def test_all_reduce_costs_the_ring_formula(n):
    numel, latency, bandwidth = 25_000, 0.01, 1e6
    network = NetworkModel(latency=latency, bandwidth=bandwidth)
    algorithm = Algorithm("one-all-reduce", one_all_reduce, "test", synchronous=True)
    _, trace = run(algorithm, n, cluster=Cluster(n, network=network), lr=0.0, numel=numel)
    nbytes = 4 * numel
    assert trace.duration == pytest.approx(2 * (n - 1) * (latency + nbytes / (n * bandwidth)))
    assert trace.bytes_sent == [round(2 * (n - 1) * nbytes / n)] * n
    assert trace.bytes_received == trace.bytes_sent


def test_a_slow_link_slows_the_ring_all_reduce_by_its_factor():
    numel = 25_000
    fast = NetworkModel(latency=0.0, bandwidth=1e6)
    slow = NetworkModel(latency=0.0, bandwidth=1e6, link_slowdown={(2, 3): 4.0})
    algorithm = Algorithm("one-all-reduce", one_all_reduce, "test", synchronous=True)
    durations = [
        run(algorithm, 4, cluster=Cluster(4, network=net), lr=0.0, numel=numel)[1].duration
        for net in (fast, slow)
    ]
    assert durations[1] == pytest.approx(4 * durations[0])


def test_a_k_times_slower_worker_stretches_synchronous_epochs_by_k():
    def duration(slowdown):
        cluster = Cluster(4, ComputeModel(slowdown=slowdown), FREE_NETWORK)
        return run("allreduce", 4, cluster=cluster, lr=0.05)[1].duration

    assert duration({2: 10.0}) / duration({}) == pytest.approx(10.0, rel=1e-6)


def test_adpsgd_averages_pairs_and_keeps_going_past_a_straggler():
    cluster = Cluster(4, ComputeModel(slowdown={0: 10.0}), FREE_NETWORK)
    simulator, trace = run("adpsgd", 4, cluster=cluster, lr=0.05)
    per_worker = [sum(1 for s in trace.steps if s.worker == r) for r in range(4)]
    assert sum(per_worker) == simulator.budget
    assert per_worker[0] < min(per_worker[1:]) / 5
    assert max(s.staleness for s in trace.steps) >= 1
    assert trace.final("consensus") > 0
    assert sum(trace.bytes_sent) == sum(trace.bytes_received)


def test_easgd_elastic_exchanges_conserve_workers_plus_centre():
    """With lr = 0 only the elastic moves act: x_i -= delta and c += delta."""
    problem = regression_problem()
    simulator, trace = run("easgd", 4, lr=0.0, tau=1, alpha=0.3)
    start = torch.cat(initial_parameters(problem))
    total = sum(w.x for w in simulator.workers) + simulator.server.state
    torch.testing.assert_close(total, 5 * start)
    assert trace.settings["alpha"] == 0.3


def test_evaluations_cover_the_run_and_report_consensus():
    _, trace = run("adpsgd", 4, epochs=3, lr=0.05)
    epochs = [e["epoch"] for e in trace.evals]
    assert epochs[0] == 0 and epochs == sorted(epochs) and epochs[-1] == pytest.approx(3, rel=0.1)
    assert trace.evals[0]["consensus"] == 0.0
    assert trace.evals[-1]["train_loss"] < trace.evals[0]["train_loss"]


def test_a_diverging_run_is_marked_not_raised():
    _, trace = run("allreduce", 2, lr=1e6, epochs=5)
    assert trace.diverged
    assert trace.final("train_loss") == math.inf


def test_two_gradients_in_one_concurrent_tuple_are_refused():
    def greedy(worker, *, lr):
        yield worker.gradient(), worker.gradient()

    algorithm = Algorithm("greedy", greedy, "test", synchronous=True)
    with pytest.raises(ValueError, match="at most one gradient"):
        run(algorithm, 2, lr=0.0)


def test_each_worker_owns_its_collective_result():
    seen = {}

    def scribble(worker, *, lr):
        total = yield worker.all_reduce(torch.ones(3), "sum")
        if worker.rank == 0:
            total.mul_(100)
        seen[worker.rank] = total

    run(Algorithm("scribble", scribble, "test", synchronous=True), 3, lr=0.0)
    assert seen[1].tolist() == seen[2].tolist() == [3.0, 3.0, 3.0]


def test_mismatched_collectives_are_an_error_naming_the_workers():
    def mismatched(worker, *, lr):
        if worker.rank == 0:
            yield worker.all_reduce(torch.zeros(3))
        else:
            yield worker.all_gather(torch.zeros(3))

    algorithm = Algorithm("bad", mismatched, "test", synchronous=True)
    with pytest.raises(SimulationError, match="worker 0: AllReduce"):
        run(algorithm, 2, lr=0.0)


def test_a_deadlock_is_reported_with_what_each_worker_waits_for():
    def lonely(worker, *, lr):
        if worker.rank == 0:
            yield worker.all_reduce(torch.zeros(3))

    algorithm = Algorithm("lonely", lonely, "test", synchronous=True)
    with pytest.raises(SimulationError, match="deadlocked; worker 0: AllReduce"):
        run(algorithm, 2, lr=0.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"algorithm": "nope"}, "unknown algorithm 'nope'"),
        ({"algorithm": "adpsgd", "workers": 5}, "bipartite"),
        ({"epochs": 0}, "epochs must be a positive number"),
        ({"hyper": {}}, "learning rate lr is required"),
    ],
)
def test_bad_settings_are_clear_errors(kwargs, message):
    settings = {"algorithm": "allreduce", "workers": 4, "epochs": 1, "hyper": {"lr": 0.1}}
    settings.update(kwargs)
    with pytest.raises(ValueError, match=message):
        simulate(
            settings["algorithm"],
            regression_problem(),
            Cluster(settings["workers"]),
            epochs=settings["epochs"],
            **settings["hyper"],
        )


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Cluster(0), "workers must be a positive integer"),
        (lambda: Cluster(2, ComputeModel(slowdown={5: 2.0})), "outside 0..1"),
        (lambda: ComputeModel(slowdown={0: 0.5}), "factor >= 1"),
        (
            lambda: Cluster(2, network=NetworkModel(link_slowdown={(0, 2): 3.0})),
            "link_slowdown names node 2, outside 0..1",  # node 2 exists with a dedicated server
        ),
        (lambda: NetworkModel(bandwidth=0), "bandwidth must be a finite number > 0, got 0"),
        (lambda: NetworkModel(topology="star"), "unknown topology 'star'"),
    ],
)
def test_bad_cluster_descriptions_are_clear_errors(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_with_free_compute_a_run_lasts_exactly_its_communication():
    cluster = Cluster(4, ComputeModel(time=1e-300), NetworkModel(latency=0.5, bandwidth=1e18))
    simulator, trace = run("allreduce", 4, cluster=cluster, lr=0.05)
    rounds = simulator.workers[0].steps
    assert trace.duration == pytest.approx(rounds * 2 * 3 * 0.5, rel=1e-9)
    assert math.isfinite(trace.final("train_loss"))


def test_vectorised_gradients_equal_one_at_a_time():
    """Lazy vectorised evaluation (the default) against one gradient at a time (measured
    compute times disable it); AllReduce's result does not depend on the timing."""
    results = []
    for measured in (False, True):
        cluster = Cluster(4, ComputeModel(measured=measured))
        simulator, trace = run("allreduce", 4, cluster=cluster, lr=0.05)
        results.append((simulator.workers[0].x, [s.loss for s in trace.steps]))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-12, atol=1e-14)
    assert sorted(results[0][1]) == pytest.approx(sorted(results[1][1]), rel=1e-12)


class BranchyLinear(torch.nn.Linear):
    """Data-dependent control flow: torch.func.vmap cannot batch it."""

    def forward(self, x):
        out = super().forward(x)
        return out if float(out.detach().sum()) < 1e30 else out * 0


def test_a_model_that_does_not_vectorise_falls_back_to_one_at_a_time():
    base = regression_problem()

    def build():
        model = BranchyLinear(5, 1).double()
        model.load_state_dict(base.build_model().state_dict())
        return model

    problem = Problem(build, base.inputs, base.targets, base.loss_fn, 4, base.evaluate)
    with pytest.warns(UserWarning, match="torch.func cannot batch the workers' gradients"):
        branchy, trace = run("allreduce", 4, problem=problem, lr=0.05)
    plain, _ = run("allreduce", 4, lr=0.05)
    assert not branchy._vectorise
    torch.testing.assert_close(branchy.workers[0].x, plain.workers[0].x, rtol=1e-12, atol=1e-14)
    assert trace.final("train_loss") < trace.evals[0]["train_loss"]


def test_allreduce_adam_matches_a_plain_float64_reference():
    n, lr, b1, b2, eps = 3, 0.01, 0.9, 0.999, 1e-8
    problem = regression_problem()
    simulator, _ = run("allreduce-adam", n, lr=lr)
    steps = simulator.workers[0].steps
    batches = reference_batches(problem, n, 3, steps)
    x = torch.cat(initial_parameters(problem))
    m, v = torch.zeros_like(x), torch.zeros_like(x)
    for t in range(1, steps + 1):
        g = (
            sum(
                torch.cat([gw, gb.reshape(1)])
                for gw, gb in (plain_gradient(x[:-1], x[-1], *batches[r][t - 1]) for r in range(n))
            )
            / n
        )
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        x = x - lr * (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)
    torch.testing.assert_close(simulator.workers[0].x, x, rtol=1e-10, atol=1e-12)


def test_every_algorithms_hyper_parameters_have_a_rule():
    from gradkit.distributed.algorithms import ALGORITHMS
    from gradkit.distributed.hyper import RULES, accepted

    for algorithm in ALGORITHMS.values():
        assert set(accepted(algorithm.program)) <= set(RULES), algorithm.name


@pytest.mark.parametrize(
    ("algorithm", "hyper", "fragment"),
    [
        ("allreduce", {"momentum": 1.0}, "momentum must be a number in [0, 1), got 1.0"),
        ("easgd", {"tau": 2.5}, "tau must be an integer >= 1"),
        ("ecq", {"levels": True}, "levels must be an integer in [1, 127]"),
        ("dgc", {"density": 0.0}, "density must be a number in (0, 1]"),
        ("topk", {"attack": "flip"}, "attack must be one of invert, random"),
        ("dpsgd", {"lr": float("nan")}, "lr must be a finite number >= 0"),
        ("async-sgd", {"schedule": "cosine"}, "schedule must be one of constant, polynomial"),
        ("async-sgd", {"q": 0}, "q must be a finite number > 0, got 0"),
        ("async-sgd", {"delays": "power:2"}, "delays must be none, bounded:D, power:p"),
    ],
)
def test_simulator_refuses_bad_hyper_parameters_before_running(algorithm, hyper, fragment):
    from gradkit.sim import Cluster, Simulator

    options = {"lr": 0.1} | hyper
    with pytest.raises(ValueError, match=re.escape(fragment)):
        Simulator(algorithm, regression_problem(), Cluster(4), epochs=1, **options)


def test_one_worker_async_sgd_is_sgd_with_its_schedule_step_for_step():
    from gradkit.optim.schedules import Schedule

    problem = regression_problem()
    simulator, trace = run("async-sgd", 1, lr=0.05, schedule="polynomial", q=0.6)
    steps = simulator.budget
    w, b = initial_parameters(problem)
    schedule = Schedule("polynomial", 0.05, 0.6)
    for n, (x, y) in enumerate(reference_batches(problem, 1, 3, steps)[0], start=1):
        gw, gb = plain_gradient(w, b, x, y)
        w, b = w - schedule(n) * gw, b - schedule(n) * gb
    torch.testing.assert_close(simulator.server.state, torch.cat([w, b]), rtol=1e-12, atol=1e-12)
    assert trace.server_staleness == [0] * steps and trace.mean_staleness() == 0
    assert len(trace.steps) == steps


def test_async_sgd_with_imposed_delays_applies_the_gradient_of_iterate_n_minus_d_n():
    from gradkit.distributed.delays import DelayProfile
    from gradkit.optim.schedules import Schedule

    problem = regression_problem()
    simulator, trace = run("async-sgd", 1, lr=0.05, schedule="quasilinear", delays="linear:0.5")
    steps, delays = simulator.budget, DelayProfile("linear", 0.5)
    schedule = Schedule("quasilinear", 0.05)
    history = [None, torch.cat(initial_parameters(problem))]  # every iterate, X_1 first
    for n, (x, y) in enumerate(reference_batches(problem, 1, 3, steps)[0], start=1):
        stale = history[n - delays(n)]
        gw, gb = plain_gradient(stale[:-1], stale[-1], x, y)
        history.append(history[n] - schedule(n) * torch.cat([gw, gb.reshape(1)]))
    torch.testing.assert_close(simulator.server.state, history[-1], rtol=1e-12, atol=1e-12)
    assert trace.server_staleness == [delays(n) for n in range(1, steps + 1)]


def test_async_sgd_on_four_workers_records_natural_staleness_and_trains():
    cluster = Cluster(4, ComputeModel(jitter=0.3, slowdown={3: 5.0}))
    simulator, trace = run("async-sgd", 4, cluster=cluster, lr=0.05)
    assert len(trace.server_staleness) == simulator.budget == len(trace.steps)
    assert trace.mean_staleness() > 1 and max(trace.server_staleness) >= 10  # the straggler
    assert trace.final("train_loss") < trace.evals[0]["train_loss"] / 2


def soft(v, t):
    return torch.sign(v) * (v.abs() - t).clamp_min(0)


@pytest.mark.parametrize("rounds", [1, 3])
def test_one_worker_dave_pg_is_proximal_gradient_step_for_step(rounds):
    """One worker (pi = 1): each local round is a proximal-gradient step, so 30 gradients in
    messages of ``rounds`` are 30 steps of z <- prox(z - lr (grad f(z) + l2 z))."""
    problem = regression_problem(batch_size=96)  # the whole shard: the full local gradient
    lr, l1, l2 = 0.1, 0.05, 0.01
    simulator, trace = run("dave-pg", 1, problem=problem, epochs=30, lr=lr, l1=l1, l2=l2,
                           rounds=rounds)  # fmt: skip
    w, b = initial_parameters(problem)
    z = soft(torch.cat([w, b]), lr * l1)
    for _ in range(simulator.budget):
        gw, gb = plain_gradient(z[:-1], z[-1], problem.inputs, problem.targets)
        z = soft(z - lr * (torch.cat([gw, gb.reshape(1)]) + l2 * z), lr * l1)
    output = soft(simulator.server.state, lr * l1)
    torch.testing.assert_close(output, z, rtol=1e-12, atol=1e-14)
    assert simulator.budget == 30 and len(trace.steps) == 30 // rounds
    # an epoch is a pass over the data, whatever the messages carry: a message of ``rounds``
    # whole-shard gradients is ``rounds`` epochs and one step (server update)
    assert [(e["epoch"], e["step"]) for e in trace.evals] == [
        (rounds * n, n) for n in range(30 // rounds + 1)
    ]


@pytest.mark.parametrize("rounds", [1, 3])
def test_dave_server_holds_the_share_weighted_sum_of_the_workers_iterates(rounds):
    problem = regression_problem(samples=98)  # shards of 25, 25, 24, 24
    cluster = Cluster(4, ComputeModel(jitter=0.5, slowdown={2: 10.0}))
    simulator, trace = run("dave-pg", 4, problem=problem, cluster=cluster, lr=0.05, l1=0.01,
                           rounds=rounds)  # fmt: skip
    shares = [w.share for w in simulator.workers]
    assert shares == [25 / 98, 25 / 98, 24 / 98, 24 / 98]
    weighted = sum(w.share * w.iterate for w in simulator.workers)
    torch.testing.assert_close(simulator.server.state, weighted, rtol=1e-12, atol=1e-12)
    assert trace.final("train_loss") < trace.evals[0]["train_loss"]  # the straggler's x_i lags


def test_dave_pg_refuses_bad_hyper_parameters():
    for hyper, message in (
        ({"rounds": 0}, "rounds must be an integer >= 1, got 0"),
        ({"l1": -1.0}, "l1 must be a finite number >= 0, got -1.0"),
    ):
        with pytest.raises(ValueError, match=re.escape(message)):
            Simulator("dave-pg", regression_problem(), Cluster(2), epochs=1, lr=0.1, **hyper)


def test_dave_pg_takes_the_users_prox_and_warns_above_its_step_bound():
    import warnings

    problem = regression_problem(batch_size=96)

    def nonnegative(v, step):  # the prox of the indicator of x >= 0: a projection
        return v.clamp_min(0)

    simulator, trace = run("dave-pg", 1, problem=problem, epochs=20, lr=0.1, prox=nonnegative)
    w, b = initial_parameters(problem)
    z = torch.cat([w, b]).clamp_min(0)
    for _ in range(20):  # projected gradient descent
        gw, gb = plain_gradient(z[:-1], z[-1], problem.inputs, problem.targets)
        z = (z - 0.1 * torch.cat([gw, gb.reshape(1)])).clamp_min(0)
    torch.testing.assert_close(simulator.server.state.clamp_min(0), z, rtol=1e-12, atol=1e-14)
    assert trace.settings["prox"] == "nonnegative"
    with pytest.warns(
        UserWarning, match=r"lr 1 is above 2/\(mu \+ L\) = 0.5 \(mu = l2 = 0, L = 4\)"
    ):
        run("dave-pg", 2, epochs=1, lr=1.0, smoothness=4.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run("dave-pg", 2, epochs=1, lr=0.5, smoothness=4.0)


def whole_shard_problem(shares, dtype=torch.float64):
    """The regression problem in ``dtype`` with every batch a worker's whole shard of
    ``shares``."""
    problem = regression_problem()
    return dataclasses.replace(
        problem, inputs=problem.inputs.to(dtype), targets=problem.targets.to(dtype),
        build_model=lambda: problem.build_model().to(dtype), whole_shards=True, shares=shares,
        evaluate=lambda model: problem.evaluate(copy.deepcopy(model).double()),
    )  # fmt: skip


def test_a_time_limit_stops_the_run_there_and_evaluates_at_it():
    cluster = Cluster(2, ComputeModel(jitter=0.2))
    _, trace = run("async-sgd", 2, epochs=10**6, cluster=cluster, lr=0.01, until=25.0)
    assert trace.duration == 25.0 and trace.evals[-1]["time"] == 25.0
    assert 40 < len(trace.steps) < 60  # ~2 updates per time unit
    _, finished = run("async-sgd", 2, epochs=2, cluster=cluster, lr=0.01, until=1e6)
    assert finished.duration < 100  # the programs ended first: the run ends with them
    with pytest.raises(ValueError, match="until must be a positive simulated time, got 0"):
        run("async-sgd", 2, lr=0.01, until=0)


def test_messages_to_the_server_travel_together_and_arrive_one_after_another():
    """Latency is in flight for every message at once; only the bytes queue at the server
    (rank 0 hosts the server and sends nothing)."""

    def remote_updates(network):
        cluster = Cluster(4, ComputeModel(time=1.0), network)
        _, trace = run("async-sgd", 4, epochs=10**6, cluster=cluster, lr=0.01, until=1000.0)
        return sum(step.worker != 0 for step in trace.steps)

    cycle = 1.0 + 3 * 10.0  # compute, then pull request, its reply, push: 3 latencies
    in_flight = remote_updates(NetworkModel(latency=10.0, bandwidth=1e18))
    assert in_flight == pytest.approx(3 * 1000 / cycle, rel=0.05)
    model_in_5_units = NetworkModel(latency=0.0, bandwidth=8 * 6 / 5.0)  # 6 float64 parameters
    assert remote_updates(model_in_5_units) <= 1000 / 5.0 + 1  # one push's bytes at a time


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_naive_async_prox_grad_weights_each_gradient_by_its_workers_share(dtype):
    """With the other worker never done, worker 0 alone updates: x <- prox(x - lr M pi_0
    (grad f_0(x) + l2 x)), its whole shard each time, nothing stale (reference in float64)."""
    lr, l1, l2, shares = 0.02, 0.01, 0.1, (0.25, 0.75)
    problem = whole_shard_problem(shares, dtype)
    cluster = Cluster(2, ComputeModel(slowdown={1: 1e6}))
    simulator, trace = run("async-sgd", 2, problem=problem, epochs=10**6, cluster=cluster,
                           lr=lr, l1=l1, l2=l2, until=30.5)  # fmt: skip
    rows = simulator.core.shard_indices[0]
    x, y = problem.inputs[rows].double(), problem.targets[rows].double()
    w, b = initial_parameters(problem)
    z = torch.cat([w, b]).double()
    for _ in range(30):
        gw, gb = plain_gradient(z[:-1], z[-1], x, y)
        z = soft(z - lr * 2 * 0.25 * (torch.cat([gw, gb.reshape(1)]) + l2 * z), lr * l1)
    assert len(trace.steps) == 30 and set(trace.server_staleness) == {0}
    assert simulator.server.state.dtype == dtype
    tol = {"rtol": 1e-12, "atol": 1e-14} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-6}
    torch.testing.assert_close(simulator.server.state.double(), z, **tol)
