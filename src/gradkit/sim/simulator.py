"""Runs N worker programs on a SimPy virtual clock, in one process.

The math is real (every gradient is computed on the real model and data); only time is
simulated, by the cluster's cost model. The run is deterministic given the seed: SimPy orders
simultaneous events by creation, and every random draw comes from generators seeded from it.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import simpy
import torch
from torch import Tensor

from gradkit.checks import InputError
from gradkit.distributed import ops
from gradkit.distributed.algorithms import Algorithm
from gradkit.distributed.driver import DriverCore, ProgressCallback
from gradkit.distributed.gradients import NonFiniteLossError
from gradkit.distributed.problem import Problem
from gradkit.distributed.sharding import derived_seed
from gradkit.distributed.trace import Trace
from gradkit.distributed.worker import Worker
from gradkit.sim.cluster import Cluster


class SimulationError(RuntimeError):
    """A worker program misused an operation, or the programs deadlocked."""


@dataclass
class _Round:
    """One collective call: the operations of the workers that have arrived so far."""

    done: simpy.Event
    calls: dict[int, ops.Operation] = field(default_factory=dict)


class Simulator:
    """Simulates ``algorithm`` on ``cluster`` for ``epochs`` passes over ``problem``'s data,
    or until simulated time ``until`` if that comes first (the programs still running are
    stopped where they are; give a large ``epochs`` for a budget in time only).

    The judged model (the workers' mean, or the server's state) is evaluated at step 0,
    ``evals_per_epoch`` times per epoch (0: none in between), and at the end. ``hyper``
    overrides the algorithm's keyword defaults (``lr`` is required). The server state lives on
    worker ``SERVER_RANK``'s machine, as in real runs (see :mod:`gradkit.distributed.driver`),
    unless the cluster gives it one of its own (``Cluster(dedicated_server=True)``).
    """

    def __init__(
        self,
        algorithm: str | Algorithm,
        problem: Problem,
        cluster: Cluster,
        *,
        epochs: float,
        seed: int = 0,
        evals_per_epoch: int = 1,
        on_progress: ProgressCallback | None = None,
        until: float | None = None,
        **hyper,
    ):
        if until is not None and not (isinstance(until, int | float) and until > 0):
            raise InputError(f"until must be a positive simulated time, got {until!r}")
        n = cluster.workers
        self.core = DriverCore(
            algorithm,
            problem,
            workers=n,
            epochs=epochs,
            seed=seed,
            topology=cluster.network.topology,
            evals_per_epoch=evals_per_epoch,
            on_progress=on_progress,
            hyper=hyper,
            server_node=cluster.server_node,
        )
        self.algorithm, self.hyper = self.core.algorithm, self.core.hyper
        self.problem, self.cluster, self.seed, self.until = problem, cluster, seed, until
        self.engine, self.trace = self.core.engine, self.core.trace
        self.env = simpy.Environment()
        start = self.core.start
        self.shards = [
            problem.shard(index, rank, seed) for rank, index in enumerate(self.core.shard_indices)
        ]
        self.workers = [
            self.core.make_worker(rank, start, lambda: self.env.now, self._claim)
            for rank in range(n)
        ]
        self.server = self.core.make_server(start)
        self._claimed = 0
        self._applied = 0
        self._applied_gradients = 0
        self._timing_rng = np.random.default_rng(derived_seed(seed, 2))
        self._vectorise = True
        self._pending_x = torch.empty(n, start.numel(), dtype=start.dtype)
        self._pending: dict[int, tuple[Tensor, Tensor]] = {}
        self._computed: dict[int, tuple[Tensor, float]] = {}
        self._locks = [simpy.Resource(self.env, 1) for _ in range(n)]
        self._server_lock = simpy.Resource(self.env, 1)
        self._rounds: dict[int, _Round] = {}
        self._collective_calls = [0] * n
        self._mailboxes: dict[tuple[int, int], simpy.Store] = {}
        self._blocked_on: list[str] = ["not started"] * n
        self._finished = 0

    @property
    def budget(self) -> int:
        """Gradient steps of all workers together."""
        return self.core.budget

    # running -----------------------------------------------------------------------------
    def run(self) -> Trace:
        started = time.perf_counter()
        self._evaluate()
        programs = [self.env.process(self._drive(worker)) for worker in self.workers]
        stop = None
        if self.until is not None:
            stop = self.env.any_of([self.env.all_of(programs), self.env.timeout(self.until)])
        try:
            self.env.run(until=stop)
        except NonFiniteLossError:
            self.trace.diverged = True
            self._evaluate()
            row = self.trace.evals[-1]
            row.update({k: math.inf for k in row if k.endswith("loss")})
            row.update({k: math.nan for k in row if k.endswith("accuracy")})
        else:
            if self._finished < len(self.workers) and not self._out_of_time():
                stuck = [
                    f"worker {w.rank}: {self._blocked_on[w.rank]}"
                    for w in self.workers
                    if self._blocked_on[w.rank] != "finished"
                ]
                raise SimulationError("the worker programs deadlocked; " + "; ".join(stuck))
            if self.trace.evals[-1]["time"] != self.env.now or self._applied != self._last_eval:
                self._evaluate()
        parts = [(w.records, w.bytes_sent, w.bytes_received, w.counters) for w in self.workers]
        return self.core.finish_trace(
            parts, float(self.env.now), time.perf_counter() - started, self.server.staleness
        )

    def _out_of_time(self) -> bool:
        return self.until is not None and self.env.now >= self.until

    def _claim(self) -> bool:
        if self._claimed >= self.core.budget:
            return False
        self._claimed += 1
        return True

    def _drive(self, worker: Worker):
        program = self.core.program(worker)
        result = None
        while True:
            applied, carried = len(worker.records), worker.applied_gradients
            op = self.core.next_operation(program, result)
            self._after_applies(len(worker.records) - applied, worker.applied_gradients - carried)
            if op is None:
                break
            self._blocked_on[worker.rank] = _describe(op)
            if isinstance(op, tuple):
                running = [self.env.process(self._execute(worker, o)) for o in op]
                yield simpy.AllOf(self.env, running)
                result = tuple(p.value for p in running)
            else:
                result = yield from self._execute(worker, op)
        self._blocked_on[worker.rank] = "finished"
        self._finished += 1

    def _after_applies(self, updates: int, gradients: int) -> None:
        if updates:
            self._applied += updates
            self._applied_gradients += gradients
            if self.core.progress(self._applied_gradients):
                self._evaluate()

    def _evaluate(self) -> None:
        n = len(self.workers)
        mean = torch.zeros_like(self.server.state)
        for worker in self.workers:
            mean.add_(worker.x)
        mean /= n
        judged = self.server.state if self.algorithm.evaluates == "server" else mean
        consensus = sum(float(torch.dist(w.x, mean)) ** 2 for w in self.workers) / n
        self.core.record_evaluation(
            float(self.env.now), self._applied, self._applied_gradients, judged, consensus
        )
        self._last_eval = self._applied

    # operations --------------------------------------------------------------------------
    def _execute(self, worker: Worker, op):
        handler = _HANDLERS.get(type(op))
        if handler is None:
            raise SimulationError(f"worker {worker.rank} yielded {op!r}, which is not an operation")
        return (yield from handler(self, worker, op))

    def _gradient(self, worker: Worker, op: ops.Gradient):
        """The model and the batch are read when the operation starts; the gradient is needed
        only when it ends. Unless compute times are measured, gradients are evaluated lazily:
        the first one needed computes every pending one in a single vectorised call (all
        workers' in-flight gradients), which gives the same values as one at a time."""
        rank = worker.rank
        inputs, targets = self.shards[rank].next_batch()
        read_version = worker.version
        if self.cluster.compute.measured or not self._vectorise:
            started = time.perf_counter()
            grad, loss = self.engine.gradient(worker.x, inputs, targets, snapshot=False)
            measured = time.perf_counter() - started
        else:
            self._pending_x[rank].copy_(worker.x)
            self._pending[rank] = (inputs, targets)
            measured = 0.0
        yield self.env.timeout(self.cluster.compute.duration(rank, self._timing_rng, measured))
        if rank in self._pending:
            self._compute_pending()
        if rank in self._computed:
            grad, loss = self._computed.pop(rank)
        worker.note_gradient(loss, read_version)
        return grad

    def _compute_pending(self) -> None:
        ranks = sorted(self._pending)
        if len({self._pending[r][0].shape for r in ranks}) > 1:  # uneven whole-shard batches
            for rank in ranks:
                inputs, targets = self._pending.pop(rank)
                self._computed[rank] = self.engine.gradient(self._pending_x[rank], inputs, targets)
            return
        xs = self._pending_x if len(ranks) == len(self.workers) else self._pending_x[ranks]
        inputs = torch.stack([self._pending[r][0] for r in ranks])
        targets = torch.stack([self._pending[r][1] for r in ranks])
        self._pending.clear()
        try:
            grads, losses = self.engine.gradients(xs, inputs, targets)
        except NonFiniteLossError:
            raise
        except Exception as error:  # torch.func's refusals come as many exception types
            reason = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:200]}"
            warnings.warn(
                f"torch.func cannot batch the workers' gradients ({reason}); the simulator "
                "computes them one at a time for the rest of the run",
                stacklevel=2,
            )
            self._vectorise = False
            for i, rank in enumerate(ranks):
                self._computed[rank] = self.engine.gradient(xs[i], inputs[i], targets[i])
            return
        for i, (rank, loss) in enumerate(zip(ranks, losses.tolist(), strict=True)):
            self._computed[rank] = (grads[i], loss)

    def _collective(self, worker: Worker, op):
        n = len(self.workers)
        index = self._collective_calls[worker.rank]
        self._collective_calls[worker.rank] += 1
        current = self._rounds.setdefault(index, _Round(self.env.event()))
        current.calls[worker.rank] = op
        if len(current.calls) == n:
            del self._rounds[index]
            current.done.succeed(_complete_collective(current.calls, n, self.cluster))
        results, cost = yield current.done
        yield self.env.timeout(cost)
        self.core.account(worker, op)
        return results[worker.rank]

    def _exchange(self, worker: Worker, op: ops.Exchange):
        ops.check_peers(worker.rank, op.peers, len(self.workers))
        sends = [
            self.env.process(self._deliver(worker.rank, peer, op.tensor.clone()))
            for peer in op.peers
        ]
        received = {}
        for peer in op.peers:
            received[peer] = yield self._mailbox(peer, worker.rank).get()
        yield simpy.AllOf(self.env, sends)
        self.core.account(worker, op)
        return received

    def _deliver(self, src: int, dst: int, tensor: Tensor):
        yield self.env.timeout(self.cluster.network.transfer(src, dst, ops.tensor_bytes(tensor)))
        yield self._mailbox(src, dst).put(tensor)

    def _mailbox(self, src: int, dst: int) -> simpy.Store:
        return self._mailboxes.setdefault((src, dst), simpy.Store(self.env))

    def _average(self, worker: Worker, op: ops.AverageWithPeer):
        ops.check_peers(worker.rank, (op.peer,), len(self.workers))
        peer = self.workers[op.peer]
        network = self.cluster.network
        first, second = sorted((worker.rank, peer.rank))
        with self._locks[first].request() as lock_first:
            yield lock_first
            with self._locks[second].request() as lock_second:
                yield lock_second
                yield self.env.timeout(network.transfer(worker.rank, peer.rank, op.payload_bytes))
                average = (worker.x + peer.x).mul_(0.5)
                peer.replace_model(average)
                yield self.env.timeout(network.transfer(peer.rank, worker.rank, op.payload_bytes))
                worker.replace_model(average)
        for side in (worker, peer):
            self.core.account(side, op)

    def _push(self, worker: Worker, op: ops.Push):
        network, server = self.cluster.network, self.cluster.server_node
        remote = worker.rank != server
        if remote:
            yield self.env.timeout(network.latency)
        with self._server_lock.request() as lock:
            yield lock
            if remote:
                yield self.env.timeout(network.serialization(worker.rank, server, op.payload_bytes))
            state = self.server.push(worker.rank, op.tensor, op.reply)
            state = state.clone() if op.reply else None
        if op.reply and remote:
            yield self.env.timeout(network.transfer(server, worker.rank, op.payload_bytes))
        self.core.account(worker, op)
        return state

    def _pull(self, worker: Worker, op: ops.Pull):
        network, server = self.cluster.network, self.cluster.server_node
        remote = worker.rank != server
        if remote:
            yield self.env.timeout(network.latency)
        with self._server_lock.request() as lock:
            yield lock
            state = self.server.pull(worker.rank)
        if remote:
            yield self.env.timeout(network.transfer(server, worker.rank, op.payload_bytes))
        self.core.account(worker, op)
        return state


def _describe(op) -> str:
    if isinstance(op, tuple):
        return " + ".join(_describe(o) for o in op)
    return type(op).__name__


def _complete_collective(calls: dict[int, ops.Operation], n: int, cluster: Cluster):
    """(per-rank results, cost) of a collective once all n workers have called it."""
    kinds = {type(op) for op in calls.values()}
    if len(kinds) != 1:
        named = ", ".join(f"worker {r}: {type(op).__name__}" for r, op in sorted(calls.items()))
        raise SimulationError(f"workers called different collectives at the same point ({named})")
    first = calls[0]
    shapes = {tuple(op.tensor.shape) for op in calls.values()}
    if len(shapes) != 1:
        raise SimulationError(f"{type(first).__name__} called with different shapes: {shapes}")
    network, nbytes = cluster.network, first.payload_bytes
    if isinstance(first, ops.AllReduce):
        total = torch.stack([calls[r].tensor for r in range(n)]).sum(0)
        if first.op == "mean":
            total /= n
        value, cost = total, network.all_reduce(n, nbytes)
    elif isinstance(first, ops.AllGather):
        value = [calls[r].tensor for r in range(n)]
        cost = network.all_gather(n, nbytes)
    elif isinstance(first, ops.AllToAll):
        if first.tensor.shape[0] != n:
            raise SimulationError(
                f"AllToAll needs {n} rows (one per worker), got {first.tensor.shape[0]}"
            )
        rows = {r: torch.stack([calls[i].tensor[r] for i in range(n)]) for r in range(n)}
        return rows, network.all_to_all(n, nbytes)
    else:
        value, cost = calls[first.src].tensor, network.broadcast(n, nbytes)
    # every worker owns its result, as over a real network
    shared: dict = {}
    copies = {
        r: ops.Gathered([t.clone() for t in value], shared)
        if isinstance(value, list)
        else value.clone()
        for r in range(n)
    }
    return copies, cost


_HANDLERS = {
    ops.Gradient: Simulator._gradient,
    ops.AllReduce: Simulator._collective,
    ops.AllGather: Simulator._collective,
    ops.AllToAll: Simulator._collective,
    ops.Broadcast: Simulator._collective,
    ops.Exchange: Simulator._exchange,
    ops.AverageWithPeer: Simulator._average,
    ops.Push: Simulator._push,
    ops.Pull: Simulator._pull,
}


def simulate(algorithm: str | Algorithm, problem: Problem, cluster: Cluster, **settings) -> Trace:
    """Run ``algorithm`` on the simulated ``cluster`` and return its :class:`Trace`; ``settings``
    are :class:`Simulator`'s keyword arguments (``epochs`` and ``lr`` are required)."""
    return Simulator(algorithm, problem, cluster, **settings).run()
