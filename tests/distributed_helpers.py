"""Problems and rank functions shared by the simulator and torch.distributed tests (rank
functions live here so spawned processes can import them)."""

from __future__ import annotations

import dataclasses
import functools
import os
import signal
import time
from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from gradkit.distributed import Algorithm, Problem, TorchComm, ops
from gradkit.distributed.algorithms import get_algorithm
from gradkit.distributed.topology import is_active


def regression_problem(samples: int = 96, features: int = 5, batch_size: int = 4) -> Problem:
    """Float64 linear least squares with fixed data (no randomness left to the caller)."""
    generator = torch.Generator().manual_seed(123)
    inputs = torch.randn(samples, features, generator=generator, dtype=torch.float64)
    targets = inputs @ torch.linspace(-1, 1, features, dtype=torch.float64) + 0.1 * torch.randn(
        samples, generator=generator, dtype=torch.float64
    )

    def build():
        model = nn.Linear(features, 1).double()
        with torch.no_grad():
            model.weight.copy_(torch.linspace(0.5, -0.5, features).unsqueeze(0))
            model.bias.fill_(0.25)
        return model

    def loss_fn(out, y):
        return F.mse_loss(out.squeeze(-1), y)

    def evaluate(model):
        with torch.no_grad():
            return {"train_loss": float(loss_fn(model(inputs), targets))}

    return Problem(build, inputs, targets, loss_fn, batch_size, evaluate)


def average_only(worker, *, lr: float):
    """Deadlock stress program: active ranks only average with random passive neighbours,
    passive ranks only compute and apply gradients (while being averaged into)."""
    for _ in range(worker.steps):
        if worker.active:
            yield worker.average_with(worker.random_neighbor())
        else:
            grad = yield worker.gradient()
            worker.apply(grad, lr)


AVERAGE_ONLY = Algorithm(
    "average-only",
    average_only,
    "stress test",
    synchronous=False,
    needs_bipartite=True,
    serves=lambda rank: not is_active(rank),
)


def every_operation(worker, *, lr: float):
    """One of every operation (lr unused): the drivers must count the same bytes for each."""
    n, x = worker.world_size, worker.x
    grad = yield worker.gradient()
    worker.apply(grad, lr)
    yield worker.all_reduce(x)
    yield worker.all_gather(x[:3])
    yield worker.all_to_all(torch.zeros(n, 2, dtype=x.dtype))
    yield worker.broadcast(x[:4], src=1)
    yield worker.exchange(x[:5], peers=((worker.rank - 1) % n, (worker.rank + 1) % n))
    yield worker.push(x[:] * 0, reply=True)
    yield worker.push(x[:] * 0)
    yield worker.pull()
    if worker.active:
        yield worker.average_with(worker.random_neighbor())


EVERY_OPERATION = Algorithm(
    "every-operation",
    every_operation,
    "byte accounting test",
    synchronous=False,
    needs_bipartite=True,
    serves=lambda rank: rank == 0 or not is_active(rank),
)


def bytes_of_every_operation():
    trace = TorchComm(EVERY_OPERATION, regression_problem(), epochs=1, seed=3, lr=0.0).run()
    return trace.bytes_sent, trace.bytes_received


def final_models(algorithm: str, epochs: float, lr: float, evals_per_epoch: int = 1):
    comm = TorchComm(
        algorithm,
        regression_problem(),
        epochs=epochs,
        seed=3,
        lr=lr,
        evals_per_epoch=evals_per_epoch,
    )
    trace = comm.run()
    return comm.worker.x.clone(), trace


def stress_averaging(epochs: float):
    comm = TorchComm(
        AVERAGE_ONLY, regression_problem(samples=1000, batch_size=1), epochs=epochs, lr=0.01
    )
    comm.run()
    return comm._service.served if comm._service is not None else 0


def die_after(algorithm: str, victim: int, steps: int):
    """Train; rank ``victim`` SIGKILLs itself after ``steps`` gradients."""

    def on_progress(done, total):
        if dist.get_rank() == victim and done == steps:
            os.kill(os.getpid(), signal.SIGKILL)

    TorchComm(
        algorithm, regression_problem(), epochs=10_000, lr=0.01, on_progress=on_progress
    ).run()


def raise_value_error():
    raise ValueError("bad things on purpose")


def end_inside_rank_run(how: str) -> tuple[str, bool]:
    """A rank's run ending inside ``rank_run``: a failed collective ("error") or torchrun's
    SIGTERM ("sigterm"); returns the one-line report and whether the group is still joined."""
    from gradkit.distributed.rank import RankFailedError, rank_run

    try:
        with rank_run(watch_peers=False):
            if how == "sigterm":
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(30)
            raise RuntimeError("a collective failed\nits backtrace")
    except RankFailedError as error:
        return str(error), dist.is_initialized()
    return "ran to the end", dist.is_initialized()


def late_to_the_barrier(seconds: float) -> int:
    """Rank 0 works ``seconds`` before a barrier the others already wait at (a busy machine)."""
    if dist.get_rank() == 0:
        time.sleep(seconds)
    dist.barrier()
    return dist.get_rank()


def hang_after(victim: int, steps: int):
    """Train AllReduce SGD; rank ``victim`` stops itself (SIGSTOP: alive but silent)."""

    def on_progress(done, total):
        if dist.get_rank() == victim and done == steps:
            os.kill(os.getpid(), signal.SIGSTOP)

    TorchComm(
        "allreduce", regression_problem(), epochs=10_000, lr=0.01, on_progress=on_progress
    ).run()


def _ddp_training(make_state, hook, epochs: float, lr: float, device: str, **sgd):
    """Train the regression problem with DDP + ``hook`` + plain SGD on the simulator's shards
    and batch order (seed 3), on ``device`` (``cuda``: this rank's GPU, NCCL); return the final
    flat parameters (on the CPU) and the hook state. Buckets are tiny, so each parameter is
    its own bucket and the hook's communication of one overlaps the next."""
    from torch.nn.parallel import DistributedDataParallel

    problem = regression_problem()
    rank = dist.get_rank()
    shards, steps = problem.partition(dist.get_world_size(), epochs, 3)
    shard = problem.shard(shards[rank], rank, 3)
    where = torch.device("cuda", torch.cuda.current_device()) if device == "cuda" else "cpu"
    model = problem.build_model().to(where)
    ddp = DistributedDataParallel(
        model, device_ids=[where] if device == "cuda" else None, bucket_cap_mb=1e-6
    )
    assert len(list(model.parameters())) > 1
    state = make_state(model)
    ddp.register_comm_hook(state, hook)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=lr, **sgd)
    for _ in range(steps):
        inputs, targets = (t.to(where) for t in shard.next_batch())
        optimizer.zero_grad()
        problem.loss_fn(ddp(inputs), targets).backward()
        optimizer.step()
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).cpu(), state


def ddp_signum_vote(
    epochs: float, lr: float, momentum: float, weight_decay: float, device: str = "cpu"
):
    """The majority-vote hook (see :func:`_ddp_training`): the final flat parameters."""
    from gradkit.distributed.hooks import SignVoteState, signum_vote_hook

    x, _ = _ddp_training(
        lambda model: SignVoteState(model, momentum),
        signum_vote_hook,
        epochs,
        lr,
        device,
        weight_decay=weight_decay,
    )
    return x


def ddp_compressed(kind: str, epochs: float, lr: float, options: dict, device: str = "cpu"):
    """The ECQ or DGC hook (see :func:`_ddp_training`): the final flat parameters and the hook
    state's payload bits."""
    from gradkit.distributed.hooks import DGCState, ECQState, compressed_hook

    state_class = ECQState if kind == "ecq" else DGCState
    x, state = _ddp_training(
        lambda model: state_class(model, seed=3, **options), compressed_hook, epochs, lr, device
    )
    return x, state.payload_bits


def hook_state_resumes(kind: str):
    """Train 3 steps, copy the hook state through state_dict into a fresh state on a copy of
    the model, train 3 more steps on both: the parameters must agree exactly."""
    import copy

    from torch.nn.parallel import DistributedDataParallel

    from gradkit.distributed.hooks import (
        DGCState,
        ECQState,
        SignVoteState,
        compressed_hook,
        signum_vote_hook,
    )

    problem = regression_problem()
    builders = {
        "sign": (lambda m: SignVoteState(m, momentum=0.9), signum_vote_hook),
        "ecq": (lambda m: ECQState(m, levels=1, bucket_size=4, beta=0.9, seed=1), compressed_hook),
        "dgc": (lambda m: DGCState(m, density=0.3, warmup_steps=1, seed=1), compressed_hook),
    }
    make_state, hook = builders[kind]
    batches = [(problem.inputs[i : i + 4], problem.targets[i : i + 4]) for i in range(0, 24, 4)]

    def train(model, state, optimizer, part):
        ddp = DistributedDataParallel(model)
        ddp.register_comm_hook(state, hook)
        for inputs, targets in part:
            optimizer.zero_grad()
            problem.loss_fn(ddp(inputs), targets).backward()
            optimizer.step()

    model = problem.build_model()
    state = make_state(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    train(model, state, optimizer, batches[:3])
    twin = copy.deepcopy(model)
    twin_state = make_state(twin)
    twin_state.load_state_dict(copy.deepcopy(state.state_dict()))
    twin_optimizer = torch.optim.SGD(twin.parameters(), lr=0.05)
    train(model, state, optimizer, batches[3:])
    train(twin, twin_state, twin_optimizer, batches[3:])
    return all(
        torch.equal(a, b) for a, b in zip(model.parameters(), twin.parameters(), strict=True)
    )


def in_turns(name: str, settle: Callable[[int], None] | None = None) -> Algorithm:
    """The registered algorithm ``name`` with every message to the server (push or pull) sent
    in rank order: a worker sends on its turn, and every worker passes a barrier after each
    turn, so the server sees one order of arrivals in every driver. A real push without reply
    is done once sent, not once applied, so in real runs ``settle(pushes)`` (on every rank)
    waits until the server has applied the pushes counted so far, before a second barrier lets
    the next turn begin; otherwise the server's own rank could overtake a queued push."""
    algorithm = get_algorithm(name)

    @functools.wraps(algorithm.program)
    def program(worker, **hyper):
        inner, result, pushes = algorithm.program(worker, **hyper), None, 0
        while True:
            try:
                op = inner.send(result)
            except StopIteration:
                return
            if not isinstance(op, ops.Push | ops.Pull):
                result = yield op
                continue
            for turn in range(worker.world_size):
                pushed = 0.0
                if turn == worker.rank:
                    result = yield op
                    pushed = float(isinstance(op, ops.Push))
                count = yield worker.all_reduce(worker.x.new_full((1,), pushed), op="sum")
                pushes += round(float(count.item()))
                if settle is not None:
                    settle(pushes)
                yield worker.all_reduce(worker.x.new_zeros(1))

    return dataclasses.replace(algorithm, program=program)


def forced_order_run(name: str, epochs: float, lr: float, hyper: dict):
    """A real run of :func:`in_turns` ``name`` on the whole-shard regression problem: (the
    server state on rank 0 or None, this rank's trace)."""

    def settle(pushes: int) -> None:
        deadline = time.monotonic() + 30
        while comm.server is not None and comm.server.updates < pushes:
            assert time.monotonic() < deadline, f"the server applied {comm.server.updates} pushes"
            time.sleep(0.001)

    problem = dataclasses.replace(regression_problem(), whole_shards=True)
    comm = TorchComm(in_turns(name, settle), problem, epochs=epochs, seed=3, lr=lr, **hyper)
    trace = comm.run()
    return (comm.server.state.clone() if comm.server is not None else None), trace


def ddg_stage_run(points, steps: int, variant: str = "stash"):
    """A real DDG run of the test MLP, one stage per rank: (this rank's stage's parameters, the
    losses on the last rank)."""
    from gradkit.model_parallel.distributed import DistributedDDG
    from test_ddg import batches, mlp

    model = mlp()
    ddg = DistributedDDG(model, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
                         nn.CrossEntropyLoss(), split_points=points, variant=variant)  # fmt: skip
    losses = [ddg.step(x, y) for x, y in batches(steps)]
    ddg.finish()
    return [p.detach().clone() for p in ddg.module.parameters()], losses


def ddg_stage_stops(victim: int, steps: int, timeout: float):
    """A real DDG run in which rank ``victim`` stops itself (SIGSTOP: alive but silent) before
    iteration ``steps``."""
    from gradkit.model_parallel.distributed import DistributedDDG
    from test_ddg import batches, mlp

    ddg = DistributedDDG(mlp(), lambda p: torch.optim.SGD(p, lr=0.1), nn.CrossEntropyLoss(),
                         split_points=[2, 5], timeout=timeout)  # fmt: skip
    for step, (x, y) in enumerate(batches(20)):
        if step == steps and dist.get_rank() == victim:
            os.kill(os.getpid(), signal.SIGSTOP)
        ddg.step(x, y)
    ddg.finish()


def pipeline_rank_run(balance: str):
    """``train_pipeline_rank`` of mnist1d-resmlp for one epoch: rank 0's result, None elsewhere."""
    from gradkit.tasks.pipeline_training import train_pipeline_rank

    result = train_pipeline_rank("mnist1d-resmlp", "msgd", lr=0.01, epochs=1, balance=balance)
    return None if result is None else (result.optimizer, result.step_losses)
