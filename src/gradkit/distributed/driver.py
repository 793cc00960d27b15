"""What every driver of worker programs shares, whether it runs them on a virtual clock
(:class:`gradkit.sim.Simulator`) or over a process group (:class:`gradkit.distributed.TorchComm`):
the algorithm and its hyper-parameters, sharding and step counts, the workers' settings, when to
evaluate and what an evaluation row holds, stepping a program, and the finished trace. A driver
adds only how each operation is executed; :func:`gradkit.distributed.ops.message_bytes` says
what each one moves, for both.

The server state (EASGD's centre, the coming parameter-server algorithms) has one meaning in
both drivers: it lives on rank :data:`SERVER_RANK`, colocated with that worker, so that rank's
own pushes and pulls are free and other ranks' cross the link to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from gradkit.checks import InputError
from gradkit.distributed import ops
from gradkit.distributed.algorithms import SERVER_RANK, Algorithm, resolve
from gradkit.distributed.problem import Problem
from gradkit.distributed.topology import TOPOLOGIES, Topology
from gradkit.distributed.trace import Trace
from gradkit.distributed.worker import StepRecord, Worker

ProgressCallback = Callable[[int, int], None]

__all__ = ["SERVER_RANK", "DriverCore", "ProgressCallback"]


class DriverCore:
    """The run-wide state of one driver: ``workers`` workers running ``algorithm`` for
    ``epochs`` passes over ``problem``'s data (the gradient engine on ``device``). The judged
    model is evaluated at step 0, ``evals_per_epoch`` times per epoch (0: none in between), and
    at the end. The
    parameter server runs on node ``server_node`` (a worker's rank, whose own messages to it
    move no bytes, or ``workers`` for a machine of its own)."""

    def __init__(
        self,
        algorithm: str | Algorithm,
        problem: Problem,
        *,
        workers: int,
        epochs: float,
        seed: int,
        topology: Topology,
        evals_per_epoch: int,
        on_progress: ProgressCallback | None,
        hyper: dict,
        device: torch.device | None = None,
        real: bool = False,
        server_node: int = SERVER_RANK,
    ):
        self.algorithm, self.hyper = resolve(algorithm, hyper)
        if topology not in TOPOLOGIES:
            raise InputError(f"unknown topology {topology!r}; choose from {', '.join(TOPOLOGIES)}")
        self.algorithm.check(workers, topology)
        if not isinstance(evals_per_epoch, int) or evals_per_epoch < 0:
            raise InputError(f"evals_per_epoch must be an integer >= 0, got {evals_per_epoch!r}")
        self.problem, self.seed, self.topology = problem, seed, topology
        self.server_node = server_node
        self.world_size, self.on_progress = workers, on_progress
        self.shard_indices, self.steps = problem.partition(workers, epochs, seed)
        self.budget = self.steps * workers
        self.engine = problem.engine(seed, device)
        self.start = self.engine.flat.detach().clone()
        per_step = problem.samples_per_step(workers)
        if evals_per_epoch == 0:
            interval = math.inf
        else:
            interval = max(1, round(problem.num_samples / per_step / evals_per_epoch))
        if self.algorithm.synchronous and evals_per_epoch:  # between rounds, never inside one
            interval = math.ceil(interval / workers) * workers
        self.eval_interval = self._next_eval = interval
        extra = {"real": True} if real else {}
        self.trace = Trace.start(
            self.algorithm.name,
            workers,
            seed,
            epochs,
            problem.batch_size,
            self.start.numel(),
            self.hyper,
            **extra,
        )

    def make_worker(
        self, rank: int, start: Tensor, clock: Callable[[], float], budget: Callable[[], bool]
    ) -> Worker:
        return Worker(
            rank,
            self.world_size,
            start.clone(),
            steps=self.steps,
            seed=self.seed,
            topology=self.topology,
            clock=clock,
            budget=budget,
            param_sizes=self.engine.param_sizes,
            share=len(self.shard_indices[rank]) / self.problem.num_samples
            if self.problem.sampling == "shards"
            else 1.0 / self.world_size,
        )

    def make_server(self, start: Tensor):
        """The run's parameter server (:attr:`Algorithm.server`) starting from ``start``."""
        return self.algorithm.server(start.clone(), self.hyper, self.budget)

    def output(self, judged: Tensor) -> Tensor:
        """The model a run reports for the judged state (:attr:`Algorithm.output`; DAve-PG
        reports prox(x_bar), not x_bar)."""
        return self.algorithm.output(judged, self.hyper)

    def program(self, worker: Worker):
        return self.algorithm.program(worker, **self.hyper)

    @staticmethod
    def next_operation(program, result):
        """The program's next operation (a tuple of concurrent ones is checked), or None once
        it has finished."""
        try:
            op = program.send(result)
        except StopIteration:
            return None
        if isinstance(op, tuple):
            ops.check_concurrent(op)
        return op

    def account(self, worker: Worker, op) -> None:
        """Add the bytes ``op`` moved for ``worker`` (see ``ops.message_bytes``)."""
        sent, received = ops.message_bytes(op, worker.rank, self.world_size, self.server_node)
        worker.bytes_sent += sent
        worker.bytes_received += received

    def progress(self, applied: int) -> bool:
        """Report ``applied`` gradients (all workers together, those the applied updates carry);
        True when an evaluation is due."""
        if self.on_progress is not None:
            self.on_progress(min(applied, self.budget), self.budget)
        if applied < self._next_eval:
            return False
        while self._next_eval <= applied:
            self._next_eval += self.eval_interval
        return True

    def record_evaluation(
        self,
        time: float,
        updates: int,
        gradients: int,
        judged: Tensor,
        consensus: float | None,
        judge=None,
    ) -> dict:
        """Append the evaluation row of the judged model (``judge``'s engine, the core's by
        default): time, epoch (passes over the data by the ``gradients`` the ``updates`` applied
        so far carry), step (``updates``), the consensus distance (1/n) sum_i ||x_i - mean||^2
        when known, and the problem's metrics."""
        samples = gradients * self.problem.samples_per_step(self.world_size)
        row = {"time": time, "epoch": samples / self.problem.num_samples, "step": updates}
        if consensus is not None:
            row["consensus"] = consensus
        if self.problem.evaluate is not None:
            row.update(self.problem.evaluate((judge or self.engine).load(self.output(judged))))
        self.trace.evals.append(row)
        return row

    def finish_trace(
        self,
        parts: list[tuple[list[StepRecord], int, int, dict]],
        duration: float,
        wall_seconds: float,
        server_staleness: list[int] | None = None,
    ) -> Trace:
        """The trace with every worker's (records, bytes sent, bytes received, counters) and
        the server's staleness record."""
        trace = self.trace
        trace.server_staleness = list(server_staleness or [])
        trace.steps = sorted(
            (r for part in parts for r in part[0]), key=lambda r: (r.time, r.worker)
        )
        trace.bytes_sent = [part[1] for part in parts]
        trace.bytes_received = [part[2] for part in parts]
        trace.counters = [dict(part[3]) for part in parts]
        trace.duration = duration
        trace.wall_seconds = wall_seconds
        return trace
