"""Real torch.distributed runs: gloo process groups on 127.0.0.1 (spawned, one thread each)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time

import pytest
import torch

from distributed_helpers import (
    ddp_compressed,
    ddp_signum_vote,
    die_after,
    end_inside_rank_run,
    final_models,
    forced_order_run,
    hang_after,
    hook_state_resumes,
    in_turns,
    late_to_the_barrier,
    raise_value_error,
    regression_problem,
    stress_averaging,
)
from gradkit.distributed import TorchComm, WorkerFailedError, launch
from gradkit.sim import Cluster, Simulator


@pytest.mark.timeout(120)
@pytest.mark.parametrize("algorithm", ["allreduce", "dpsgd", "prox-grad"])
def test_real_run_gives_the_simulators_parameters(algorithm):
    results = launch(final_models, 4 if algorithm == "dpsgd" else 3, algorithm, 2, 0.05)
    n = len(results)
    simulator = Simulator(algorithm, regression_problem(), Cluster(n), epochs=2, seed=3, lr=0.05)
    sim_trace = simulator.run()
    for rank, (x, trace) in enumerate(results):
        torch.testing.assert_close(x, simulator.workers[rank].x, rtol=1e-10, atol=1e-12)
        assert trace.bytes_sent == sim_trace.bytes_sent
    assert [s.loss for s in sorted(results[0][1].steps, key=lambda s: (s.step, s.worker))] == (
        pytest.approx([s.loss for s in sorted(sim_trace.steps, key=lambda s: (s.step, s.worker))])
    )
    assert results[0][1].final("train_loss") == pytest.approx(sim_trace.final("train_loss"))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("algorithm", ["adpsgd", "easgd", "async-sgd", "dave-pg"])
def test_asynchronous_algorithms_train_for_real(algorithm):
    results = launch(final_models, 4, algorithm, 3, 0.05)
    trace = results[0][1]
    if algorithm == "async-sgd":  # the server applied every gradient, and knows how stale
        assert len(trace.server_staleness) == len(trace.steps) and trace.mean_staleness() > 0
    # DAve-PG's average moves by one worker's share per message: about one prox-gradient
    # step of lr per epoch, so 3 epochs at lr 0.05 reduce the loss without halving it
    goal = 1.0 if algorithm == "dave-pg" else 0.5
    assert trace.final("train_loss") < goal * trace.evals[0]["train_loss"]
    assert sum(s.worker == r for s in trace.steps for r in range(4)) == len(trace.steps)
    assert sum(trace.bytes_sent) == sum(trace.bytes_received) > 0


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("algorithm", "hyper"),
    [("async-sgd", {"l1": 0.01, "l2": 0.1}), ("dave-pg", {"l1": 0.01, "rounds": 2})],
)
def test_real_parameter_server_runs_equal_the_simulator_when_arrivals_are_forced(algorithm, hyper):
    """Messages to the server in rank order (tests/distributed_helpers.in_turns): the server
    applies the same updates in the same order, so its state, the staleness of every update
    and the losses agree with the simulator to round-off."""
    results = launch(forced_order_run, 3, algorithm, 4, 0.05, hyper)
    problem = dataclasses.replace(regression_problem(), whole_shards=True)
    simulator = Simulator(in_turns(algorithm), problem, Cluster(3), epochs=4, seed=3, lr=0.05,
                          **hyper)  # fmt: skip
    sim_trace = simulator.run()
    state, trace = results[0]
    torch.testing.assert_close(state, simulator.server.state, rtol=1e-12, atol=1e-14)
    assert trace.server_staleness == sim_trace.server_staleness
    assert trace.final("train_loss") == pytest.approx(sim_trace.final("train_loss"), rel=1e-12)
    assert len(trace.steps) == len(sim_trace.steps) == 12 // hyper.get("rounds", 1)
    final = {"epoch": 4.0, "step": 12 // hyper.get("rounds", 1)}
    assert {k: trace.evals[-1][k] for k in final} == {k: sim_trace.evals[-1][k] for k in final}
    assert {k: sim_trace.evals[-1][k] for k in final} == pytest.approx(final)


@pytest.mark.timeout(120)
def test_adpsgd_ten_thousand_averagings_without_deadlock():
    served = launch(stress_averaging, 4, 20, timeout=100)
    assert sum(served) == 10_000


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("algorithm", "victim"), [("allreduce", 1), ("adpsgd", 0), ("async-sgd", 0), ("async-sgd", 2)]
)
def test_a_killed_worker_ends_the_run_with_a_clear_error_within_30_s(algorithm, victim):
    started = time.monotonic()
    with pytest.raises(WorkerFailedError, match=rf"rank {victim} failed: killed by SIGKILL"):
        launch(die_after, 4, algorithm, victim, 20, timeout=50)
    assert time.monotonic() - started < 30


@pytest.mark.timeout(60)
def test_an_exception_in_a_rank_is_reported_with_its_message():
    with pytest.raises(WorkerFailedError, match="ValueError: bad things on purpose"):
        launch(raise_value_error, 2)


def test_torch_comm_needs_an_initialised_process_group():
    with pytest.raises(RuntimeError, match="launch with torchrun"):
        TorchComm("allreduce", regression_problem(), epochs=1, lr=0.1)


@pytest.mark.timeout(60)
def test_a_hung_worker_ends_the_run_with_a_timeout_error():
    started = time.monotonic()
    with pytest.raises(WorkerFailedError, match="Timed out"):
        launch(hang_after, 3, 2, 20, timeout=50, comm_timeout=5)
    assert time.monotonic() - started < 30


@pytest.mark.timeout(90)
def test_every_collective_may_wait_as_long_as_the_run():
    """A rank busy for longer than gloo's usual 20 s does not time its peers' barrier out when
    the run was given longer (the DDG timing run on a loaded machine)."""
    assert launch(late_to_the_barrier, 2, 22.0, timeout=60) == [0, 1]


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    "how, report",
    [("error", "a collective failed"), ("sigterm", "torchrun stopped this rank")],
)
def test_a_rank_run_ends_with_one_line_and_leaves_the_group(how, report):
    """The policy the CLI and Python scripts share (gradkit.distributed.rank): a failed
    collective or torchrun's SIGTERM ends the rank's run as one line, and the rank leaves the
    process group."""
    assert launch(end_inside_rank_run, 2, how, timeout=60) == [(report, False)] * 2


@pytest.mark.timeout(120)
def test_ddp_majority_vote_hook_gives_the_simulators_parameters():
    results = launch(ddp_signum_vote, 3, 3, 0.01, 0.9, 0.05)
    simulator = Simulator(
        "signum-vote",
        regression_problem(),
        Cluster(3),
        epochs=3,
        seed=3,
        lr=0.01,
        momentum=0.9,
        weight_decay=0.05,
    )
    simulator.run()
    for x in results:
        torch.testing.assert_close(x, simulator.workers[0].x, rtol=1e-12, atol=1e-12)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("kind", "options", "sim_options"),
    [
        ("ecq", {"levels": 1, "bucket_size": 4, "alpha": 1.0, "beta": 0.9}, None),
        (
            "dgc",
            {"density": 0.3, "momentum": 0.5, "clip_norm": 2.0, "warmup_steps": 2},
            {"density": 0.3, "dgc_momentum": 0.5, "clip_norm": 2.0, "warmup_steps": 2},
        ),
    ],
)
def test_ddp_compression_hooks_give_the_simulators_parameters(kind, options, sim_options):
    results = launch(ddp_compressed, 3, kind, 3, 0.05, options)
    simulator = Simulator(
        kind,
        regression_problem(),
        Cluster(3),
        epochs=3,
        seed=3,
        lr=0.05,
        **(sim_options or options),
    )
    trace = simulator.run()
    for x, _ in results:
        torch.testing.assert_close(x, simulator.workers[0].x, rtol=1e-10, atol=1e-12)
    assert sum(bits for _, bits in results) == trace.counter("payload_bits")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["sign", "ecq", "dgc"])
def test_hook_states_resume_exactly_from_their_state_dict(kind):
    assert launch(hook_state_resumes, 1, kind) == [True]


def test_a_hook_refuses_an_operation_it_cannot_run():
    from gradkit.distributed import ops
    from gradkit.distributed.hooks import run_async

    def program():
        yield ops.AllReduce(torch.ones(3))

    with pytest.raises(TypeError, match="cannot run AllReduce; hooks run AllGather and AllToAll"):
        run_async(program(), None).wait()


@pytest.mark.timeout(120)
def test_both_drivers_count_the_same_bytes_for_every_operation():
    """The server lives on rank 0 in both: its own push and pull are free and uncounted."""
    from distributed_helpers import EVERY_OPERATION, bytes_of_every_operation

    sent, received = launch(bytes_of_every_operation, 4)[0]
    trace = Simulator(
        EVERY_OPERATION, regression_problem(), Cluster(4), epochs=1, seed=3, lr=0.0
    ).run()
    assert (sent, received) == (trace.bytes_sent, trace.bytes_received)
    assert sent[0] < sent[2]  # rank 0 pushes to itself


@pytest.mark.timeout(120)
def test_real_runs_evaluate_periodically_like_the_simulator():
    """Synchronous: the same judged model at the same steps as the simulator. Asynchronous:
    rank 0's view in between (no consensus), the collective evaluation at both ends."""
    _, trace = launch(final_models, 2, "allreduce", 3, 0.05, 4)[0]
    simulated = Simulator(
        "allreduce", regression_problem(), Cluster(2), epochs=3, seed=3, lr=0.05, evals_per_epoch=4
    ).run()
    assert [e["step"] for e in trace.evals] == [e["step"] for e in simulated.evals]
    assert len(trace.evals) > 10
    assert [e["train_loss"] for e in trace.evals] == pytest.approx(
        [e["train_loss"] for e in simulated.evals], rel=1e-9
    )
    _, trace = launch(final_models, 4, "easgd", 3, 0.05, 4)[0]
    inner = trace.evals[1:-1]
    assert len(inner) >= 8 and all("consensus" not in e for e in inner)
    assert "consensus" in trace.evals[0] and "consensus" in trace.evals[-1]
    assert [e["time"] for e in trace.evals] == sorted(e["time"] for e in trace.evals)


def test_a_failing_bucket_fails_its_own_future_only():
    """A bucket chained after a failed one still runs: a step whose bucket failed (a peer
    away) does not fail every later step."""
    from gradkit.distributed.hooks import run_async

    def failing():
        raise ValueError("cannot encode this bucket")
        yield  # a generator

    def harmless():
        return "reached"
        yield

    first = run_async(failing(), None)
    second = run_async(harmless(), None, after=first)
    with pytest.raises(ValueError, match="cannot encode this bucket"):
        first.wait()
    assert second.wait() == "reached"
    assert run_async(harmless(), None, after=second).wait() == "reached"


def test_a_destroyed_group_is_freed_even_when_torch_optim_imports_torch_distributed_nn_later():
    """torch.distributed.nn's functions default to ``group=group.WORLD``, evaluated at their
    first import (which torch.optim triggers lazily). gradkit's init_process_group imports it
    first, so destroy_process_group frees the group and gloo's threads end with the run,
    not during interpreter shutdown (where they aborted ranks that had succeeded)."""
    script = """
import sys, torch, torch.distributed as dist
from gradkit.distributed import free_port, init_process_group
init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
group = dist.group.WORLD
torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
assert "torch.distributed.nn.functional" in sys.modules
dist.destroy_process_group()
print(sys.getrefcount(group) - 1)  # references left besides ours (getrefcount adds one)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1"]
