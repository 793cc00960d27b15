"""Runs N worker programs on a SimPy virtual clock, in one process.

The math is real (every gradient is computed on the real model and data); only time is
simulated, by the cluster's cost model. The run is deterministic given the seed: SimPy orders
simultaneous events by creation, and every random draw comes from generators seeded from it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import simpy
import torch
from torch import Tensor

from gradkit.distributed import ops
from gradkit.distributed.algorithms import Algorithm, resolve
from gradkit.distributed.problem import Problem
from gradkit.distributed.trace import Trace
from gradkit.distributed.worker import NonFiniteLossError, Worker, derived_seed
from gradkit.sim.cluster import SERVER, Cluster

ProgressCallback = Callable[[int, int], None]


class SimulationError(RuntimeError):
    """A worker program misused an operation, or the programs deadlocked."""


@dataclass
class _Round:
    """One collective call: the operations of the workers that have arrived so far."""

    done: simpy.Event
    calls: dict[int, ops.Operation] = field(default_factory=dict)


class Simulator:
    """Simulates ``algorithm`` on ``cluster`` for ``epochs`` passes over ``problem``'s data.

    The judged model (the workers' mean, or the server's state) is evaluated at step 0,
    ``evals_per_epoch`` times per epoch, and at the end. ``hyper`` overrides the algorithm's
    keyword defaults (``lr`` is required).
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
        **hyper,
    ):
        self.algorithm, self.hyper = resolve(algorithm, hyper)
        self.algorithm.check(cluster.workers, cluster.network.topology)
        if not isinstance(evals_per_epoch, int) or evals_per_epoch < 1:
            raise ValueError(f"evals_per_epoch must be a positive integer, got {evals_per_epoch!r}")
        self.problem, self.cluster, self.seed = problem, cluster, seed
        self.on_progress = on_progress
        n = cluster.workers
        shards, steps = problem.partition(n, epochs, seed)
        self.env = simpy.Environment()
        self.engine = problem.engine(seed)
        start = self.engine.flat.detach().clone()
        self.shards = [problem.shard(index, rank, seed) for rank, index in enumerate(shards)]
        self.workers = [
            Worker(
                rank,
                n,
                start.clone(),
                steps=steps,
                seed=seed,
                topology=cluster.network.topology,
                clock=lambda: self.env.now,
                budget=self._claim,
                param_sizes=self.engine.param_sizes,
            )
            for rank in range(n)
        ]
        self.server = start.clone()
        self.budget = steps * n
        self._claimed = 0
        self._applied = 0
        steps_per_epoch = problem.num_samples / problem.batch_size
        interval = max(1, round(steps_per_epoch / evals_per_epoch))
        if self.algorithm.synchronous:
            interval = math.ceil(interval / n) * n
        self._eval_interval = interval
        self._next_eval = interval
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
        self.trace = Trace.start(
            self.algorithm.name, n, seed, epochs, problem.batch_size, start.numel(), self.hyper
        )

    # running -----------------------------------------------------------------------------
    def run(self) -> Trace:
        started = time.perf_counter()
        self._evaluate()
        for worker in self.workers:
            self.env.process(self._drive(worker))
        try:
            self.env.run()
        except NonFiniteLossError:
            self.trace.diverged = True
            self._evaluate()
            row = self.trace.evals[-1]
            row.update({k: math.inf for k in row if k.endswith("loss")})
            row.update({k: math.nan for k in row if k.endswith("accuracy")})
        else:
            if self._finished < len(self.workers):
                stuck = [
                    f"worker {w.rank}: {self._blocked_on[w.rank]}"
                    for w in self.workers
                    if self._blocked_on[w.rank] != "finished"
                ]
                raise SimulationError("the worker programs deadlocked; " + "; ".join(stuck))
            if self.trace.evals[-1]["time"] != self.env.now or self._applied != self._last_eval:
                self._evaluate()
        trace = self.trace
        trace.steps = sorted(
            (r for w in self.workers for r in w.records), key=lambda r: (r.time, r.worker)
        )
        trace.bytes_sent = [w.bytes_sent for w in self.workers]
        trace.bytes_received = [w.bytes_received for w in self.workers]
        trace.counters = [dict(w.counters) for w in self.workers]
        trace.duration = float(self.env.now)
        trace.wall_seconds = time.perf_counter() - started
        return trace

    def _claim(self) -> bool:
        if self._claimed >= self.budget:
            return False
        self._claimed += 1
        return True

    def _drive(self, worker: Worker):
        program = self.algorithm.program(worker, **self.hyper)
        result = None
        while True:
            applied = len(worker.records)
            try:
                op = program.send(result)
            except StopIteration:
                self._after_applies(len(worker.records) - applied)
                break
            self._after_applies(len(worker.records) - applied)
            self._blocked_on[worker.rank] = _describe(op)
            if isinstance(op, tuple):
                ops.check_concurrent(op)
                running = [self.env.process(self._execute(worker, o)) for o in op]
                yield simpy.AllOf(self.env, running)
                result = tuple(p.value for p in running)
            else:
                result = yield from self._execute(worker, op)
        self._blocked_on[worker.rank] = "finished"
        self._finished += 1

    def _after_applies(self, count: int) -> None:
        if not count:
            return
        self._applied += count
        if self.on_progress is not None:
            self.on_progress(min(self._applied, self.budget), self.budget)
        if self._applied >= self._next_eval:
            self._evaluate()
            while self._next_eval <= self._applied:
                self._next_eval += self._eval_interval

    def _evaluate(self) -> None:
        n = len(self.workers)
        mean = torch.zeros_like(self.server)
        for worker in self.workers:
            mean.add_(worker.x)
        mean /= n
        judged = self.server if self.algorithm.evaluates == "server" else mean
        row = {
            "time": float(self.env.now),
            "epoch": self._applied * self.problem.batch_size / self.problem.num_samples,
            "step": self._applied,
            "consensus": sum(float(torch.dist(w.x, mean)) ** 2 for w in self.workers) / n,
        }
        if self.problem.evaluate is not None:
            row.update(self.problem.evaluate(self.engine.load(judged)))
        self.trace.evals.append(row)
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
        xs = self._pending_x if len(ranks) == len(self.workers) else self._pending_x[ranks]
        inputs = torch.stack([self._pending[r][0] for r in ranks])
        targets = torch.stack([self._pending[r][1] for r in ranks])
        self._pending.clear()
        try:
            grads, losses = self.engine.gradients(xs, inputs, targets)
        except NonFiniteLossError:
            raise
        except Exception:  # the model does not vectorise (torch.func): one at a time from now
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
        sent, received = ops.collective_bytes(op, worker.rank, n)
        worker.bytes_sent += sent
        worker.bytes_received += received
        return results[worker.rank]

    def _exchange(self, worker: Worker, op: ops.Exchange):
        self._check_peers(worker, op.peers)
        sends = [
            self.env.process(self._deliver(worker.rank, peer, op.tensor.clone()))
            for peer in op.peers
        ]
        received = {}
        for peer in op.peers:
            received[peer] = yield self._mailbox(peer, worker.rank).get()
        yield simpy.AllOf(self.env, sends)
        worker.bytes_sent += op.payload_bytes * len(op.peers)
        worker.bytes_received += sum(ops.tensor_bytes(t) for t in received.values())
        return received

    def _deliver(self, src: int, dst: int, tensor: Tensor):
        yield self.env.timeout(self.cluster.network.transfer(src, dst, ops.tensor_bytes(tensor)))
        yield self._mailbox(src, dst).put(tensor)

    def _mailbox(self, src: int, dst: int) -> simpy.Store:
        return self._mailboxes.setdefault((src, dst), simpy.Store(self.env))

    def _average(self, worker: Worker, op: ops.AverageWithPeer):
        self._check_peers(worker, (op.peer,))
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
            side.bytes_sent += op.payload_bytes
            side.bytes_received += op.payload_bytes

    def _push(self, worker: Worker, op: ops.Push):
        network = self.cluster.network
        with self._server_lock.request() as lock:
            yield lock
            yield self.env.timeout(network.transfer(worker.rank, SERVER, op.payload_bytes))
            self.server.add_(op.tensor)
            worker.bytes_sent += op.payload_bytes
            if not op.reply:
                return None
            state = self.server.clone()
            yield self.env.timeout(network.transfer(SERVER, worker.rank, op.payload_bytes))
        worker.bytes_received += op.payload_bytes
        return state

    def _pull(self, worker: Worker, op: ops.Pull):
        network = self.cluster.network
        with self._server_lock.request() as lock:
            yield lock
            yield self.env.timeout(network.transfer(worker.rank, SERVER, 0))
            state = self.server.clone()
            yield self.env.timeout(network.transfer(SERVER, worker.rank, op.payload_bytes))
        worker.bytes_received += op.payload_bytes
        return state

    def _check_peers(self, worker: Worker, peers: tuple[int, ...]) -> None:
        n = len(self.workers)
        if len(set(peers)) != len(peers) or any(p == worker.rank or not 0 <= p < n for p in peers):
            raise SimulationError(
                f"worker {worker.rank} named peers {peers}; peers must be distinct other ranks "
                f"in 0..{n - 1}"
            )


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
    copies = {
        r: [t.clone() for t in value] if isinstance(value, list) else value.clone()
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
