"""Runs one worker program per process over torch.distributed (gloo on CPU, NCCL on GPU).

Collectives and ``Exchange`` use the default process group (``batch_isend_irecv`` for the
point-to-point exchange, safe on NCCL). Requests to a peer that keeps computing (AD-PSGD's
averaging, the EASGD server) go over a separate gloo group on the CPU, answered by the peer's
:class:`~gradkit.distributed.service.Service` thread. A program's tuple of operations runs
concurrently: communication is started, the gradient computed, then the communication awaited.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor

from gradkit._private import default_store
from gradkit.checks import InputError
from gradkit.distributed import ops
from gradkit.distributed.algorithms import SERVER_RANK, Algorithm
from gradkit.distributed.driver import DriverCore
from gradkit.distributed.problem import Problem
from gradkit.distributed.service import HEADER, PAYLOAD, REPLY, Request, Service, header
from gradkit.distributed.topology import Topology
from gradkit.distributed.trace import Trace

_run_ids = itertools.count()


class PeerFailedError(RuntimeError):
    """Another rank failed or stopped answering; the run cannot continue."""


class TorchComm:
    """Executes ``algorithm`` as this rank's worker program, with the same sharding, seeds and
    step counts as the simulator. Join a process group first, with
    :func:`gradkit.distributed.init_process_group` (``gradkit train`` and
    :func:`gradkit.distributed.launch` do). ``slowdown`` > 1 makes this rank a straggler: it
    sleeps (slowdown - 1) times the measured compute time after every gradient.
    ``timeout`` bounds every wait on a peer over the request group (seconds); the default
    group's timeout is the one given to ``init_process_group``.

    Evaluations: the judged model (the mean of all ranks' models, or the server state) at the
    start and at the end; in between, ``evals_per_epoch`` times per epoch, the same judged
    model for synchronous algorithms (every rank is at the same step), and rank 0's view for
    asynchronous ones (the server state, or rank 0's own model; such rows carry no
    ``consensus``), so that evaluating never makes asynchronous ranks wait for each other."""

    def __init__(
        self,
        algorithm: str | Algorithm,
        problem: Problem,
        *,
        epochs: float,
        seed: int = 0,
        slowdown: float = 1.0,
        topology: Topology = "ring",
        timeout: float = 20.0,
        evals_per_epoch: int = 1,
        on_progress: Callable[[int, int], None] | None = None,
        **hyper,
    ):
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError(
                "torch.distributed is not initialised: launch with torchrun, or use "
                "gradkit.distributed.launch"
            )
        if not (math.isfinite(slowdown) and slowdown >= 1):
            raise InputError(f"slowdown must be a finite factor >= 1, got {slowdown!r}")
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        nccl = dist.get_backend() == "nccl"
        self.device = (
            torch.device("cuda", torch.cuda.current_device()) if nccl else torch.device("cpu")
        )
        self.core = DriverCore(
            algorithm,
            problem,
            workers=self.world_size,
            epochs=epochs,
            seed=seed,
            topology=topology,
            evals_per_epoch=evals_per_epoch,
            on_progress=None,
            hyper=hyper,
            device=self.device,
            real=True,
        )
        self.algorithm, self.hyper = self.core.algorithm, self.core.hyper
        self.problem, self.seed, self.slowdown = problem, seed, slowdown
        self.on_progress = on_progress
        self.engine, self.trace, self.budget = self.core.engine, self.core.trace, self.core.budget
        self._judge = problem.engine(seed) if nccl else self.engine  # metrics run on the CPU
        start = self.core.start
        dist.broadcast(start, 0)
        index = self.core.shard_indices[self.rank]
        self.shard = problem.shard(index, self.rank, seed, self.device)
        self._started = time.perf_counter()
        clock = lambda: time.perf_counter() - self._started  # noqa: E731
        self.worker = self.core.make_worker(self.rank, start, clock, self._claim)
        run_id = next(_run_ids)
        self._budget_key = f"gradkit/run{run_id}/claimed"
        self._store = default_store()
        # A serving rank may legitimately hear nothing for long (its peers compute, or wait at
        # the final barrier for a straggler): the group itself never times out; requesters
        # bound their own waits by ``timeout``.
        self._gossip = dist.new_group(backend="gloo", timeout=timedelta(days=1))
        self._timeout = timedelta(seconds=timeout)
        self.server = self.core.make_server(start.cpu()) if self.rank == SERVER_RANK else None
        self._server_lock = threading.Lock()
        self._service: Service | None = None

    # running -----------------------------------------------------------------------------
    def run(self) -> Trace:
        """Run the program; every rank returns the same trace (all ranks' step records, the
        evaluations, wall-clock times)."""
        dist.barrier()
        self._started = time.perf_counter()
        self._evaluate()
        if self.world_size > 1 and self.algorithm.serves(self.rank):
            self._service = Service(self.worker, self._gossip, self.server, self._server_lock)
            self._service.start()
        program = self.core.program(self.worker)
        result = None
        while True:
            self._check_service()
            op = self.core.next_operation(program, result)
            if op is None:
                break
            result = self._execute(op)
            self._evaluate_if_due()
        dist.barrier()
        self._stop_services()
        self._evaluate()
        self._gather()
        return self.trace

    def _claim(self) -> bool:
        claimed = self._store.add(self._budget_key, 1)
        return claimed <= self.budget

    def _check_service(self) -> None:
        if self._service is not None and self._service.error is not None:
            raise PeerFailedError(
                f"rank {self.rank}: serving peers failed: {self._service.error}"
            ) from self._service.error

    def _stop_services(self) -> None:
        n = self.world_size
        if n == 1:
            return
        served = (self.rank - 1) % n
        if self.algorithm.serves(served):
            dist.send(header(Request.DONE), dst=served, group=self._gossip, tag=HEADER)
        if self._service is not None:
            self._service.join()
            self._check_service()

    def _evaluate_if_due(self) -> None:
        """Periodic evaluation (see the class docstring) when the applied gradients of all ranks
        together, estimated as this rank's times n, pass the next evaluation point."""
        if not self.core.progress(self.worker.applied_gradients * self.world_size):
            return
        if self.algorithm.synchronous:
            self._evaluate()
        elif self.rank == 0:
            if self.algorithm.evaluates == "server":
                with self._server_lock:
                    judged = self.server.state.clone()
            else:
                with self.worker.lock:
                    judged = self.worker.x.cpu()
            claimed = min(int(self._store.add(self._budget_key, 0)), self.budget)
            self.core.record_evaluation(
                self._elapsed(), claimed, claimed, judged, None, self._judge
            )

    def _evaluate(self) -> None:
        """Evaluate the judged model (a collective: every rank calls it at the same point)."""
        n = self.world_size
        x = self.worker.x
        mean = x.clone()
        dist.all_reduce(mean)
        mean /= n
        spread = (x - mean).pow(2).sum().reshape(1)
        dist.all_reduce(spread)
        if self.algorithm.evaluates == "server":
            judged = (
                self.server.state.to(self.device)
                if self.server is not None
                else torch.empty_like(x)
            )
            dist.broadcast(judged, SERVER_RANK)
        else:
            judged = mean
        updates, gradients = self._applied_totals()
        consensus = float(spread) / n
        self.core.record_evaluation(
            self._elapsed(), updates, gradients, judged.cpu(), consensus, self._judge
        )

    def _elapsed(self) -> float:
        return time.perf_counter() - self._started

    def _applied_totals(self) -> tuple[int, int]:
        """(updates, gradients they carry), all ranks together (a collective)."""
        w = self.worker
        counts = torch.tensor(
            [len(w.records), w.applied_gradients], dtype=torch.int64, device=self.device
        )
        dist.all_reduce(counts)
        return int(counts[0]), int(counts[1])

    def _gather(self) -> None:
        """Every rank's part of the trace, on every rank."""
        w = self.worker
        everyone: list = [None] * self.world_size
        dist.all_gather_object(everyone, (w.records, w.bytes_sent, w.bytes_received, w.counters))
        evals = [self.trace.evals]  # rank 0's: it alone may have evaluated in between
        dist.broadcast_object_list(evals, src=0)
        self.trace.evals = evals[0]
        staleness = [self.server.staleness if self.server is not None else []]
        dist.broadcast_object_list(staleness, src=SERVER_RANK)
        elapsed = self._elapsed()
        self.core.finish_trace(everyone, elapsed, elapsed, staleness[0])

    # operations --------------------------------------------------------------------------
    def _execute(self, op):
        if isinstance(op, tuple):
            pending = [self._begin(o) for o in op]
            return tuple(finish() for finish in pending)
        return self._begin(op)()

    def _begin(self, op) -> Callable[[], object]:
        """Start ``op`` (communication is started, the model snapshot taken) and return the
        function that completes it and returns its result."""
        begin = _BEGIN.get(type(op))
        if begin is None:
            raise TypeError(f"rank {self.rank} yielded {op!r}, which is not an operation")
        return begin(self, op)

    def _gradient(self, op: ops.Gradient):
        worker = self.worker
        with worker.lock:
            self.engine.flat.copy_(worker.x)
            read_version = worker.version

        def finish() -> Tensor:
            inputs, targets = self.shard.next_batch()
            started = time.perf_counter()
            grad, loss = self.engine.gradient(self.engine.flat, inputs, targets, snapshot=False)
            if self.slowdown > 1:
                time.sleep((self.slowdown - 1) * (time.perf_counter() - started))
            worker.note_gradient(loss, read_version)
            if self.on_progress is not None:
                self.on_progress(worker.gradients, worker.steps)
            return grad

        return finish

    def _collective(self, op):
        n = self.world_size
        if isinstance(op, ops.AllReduce):
            out = op.tensor.clone()
            work = dist.all_reduce(out, async_op=True)
        elif isinstance(op, ops.AllGather):
            out = [torch.empty_like(op.tensor) for _ in range(n)]
            work = dist.all_gather(out, op.tensor, async_op=True)
        elif isinstance(op, ops.AllToAll):
            if op.tensor.shape[0] != n:
                raise InputError(
                    f"all_to_all needs {n} rows (one per rank), got {op.tensor.shape[0]}"
                )
            out = torch.empty_like(op.tensor)
            work = dist.all_to_all_single(out, op.tensor.contiguous(), async_op=True)
        else:
            out = op.tensor.clone()
            work = dist.broadcast(out, op.src, async_op=True)

        def finish():
            work.wait()
            self.core.account(self.worker, op)
            if isinstance(op, ops.AllReduce) and op.op == "mean":
                out.div_(n)
            return out

        return finish

    def _exchange(self, op: ops.Exchange):
        ops.check_peers(self.rank, op.peers, self.world_size)
        received = {peer: torch.empty_like(op.tensor) for peer in op.peers}
        p2p = [dist.P2POp(dist.isend, op.tensor, peer) for peer in op.peers] + [
            dist.P2POp(dist.irecv, received[peer], peer) for peer in op.peers
        ]
        works = dist.batch_isend_irecv(p2p) if p2p else []

        def finish():
            for work in works:
                work.wait()
            self.core.account(self.worker, op)
            return received

        return finish

    def _average(self, op: ops.AverageWithPeer):
        ops.check_peers(self.rank, (op.peer,), self.world_size)
        worker = self.worker
        with worker.lock:
            payload = worker.x.to("cpu", copy=True)
        reply = torch.empty_like(payload)
        works = self._request(op.peer, Request.AVERAGE, payload, reply)

        def finish():
            self._wait(works, op.peer)
            worker.replace_model(reply.to(self.device))
            with worker.lock:  # the service thread counts the passive side's bytes
                self.core.account(worker, op)
            return None

        return finish

    def _push(self, op: ops.Push):
        delta = op.tensor.to("cpu", copy=True)
        reply = torch.empty_like(delta) if op.reply else None
        if self.rank == SERVER_RANK:
            with self._server_lock:
                state = self.server.push(self.rank, delta, op.reply).clone()
            return lambda: state.to(self.device) if op.reply else None
        kind = Request.PUSH_REPLY if op.reply else Request.PUSH
        works = self._request(SERVER_RANK, kind, delta, reply)

        def finish():
            self._wait(works, SERVER_RANK)
            self.core.account(self.worker, op)
            return None if reply is None else reply.to(self.device)

        return finish

    def _pull(self, op: ops.Pull):
        if self.rank == SERVER_RANK:
            with self._server_lock:
                state = self.server.pull(self.rank)
            return lambda: state.to(self.device)
        reply = torch.empty(self.worker.x.numel(), dtype=self.worker.x.dtype)
        works = self._request(SERVER_RANK, Request.PULL, None, reply)

        def finish():
            self._wait(works, SERVER_RANK)
            self.core.account(self.worker, op)
            return reply.to(self.device)

        return finish

    def _request(self, peer: int, kind: Request, payload: Tensor | None, reply: Tensor | None):
        if not self.algorithm.serves(peer):
            raise InputError(
                f"rank {self.rank} sent a {kind.name} request to rank {peer}, which does not "
                f"serve requests in {self.algorithm.name}"
            )
        works = [dist.isend(header(kind), dst=peer, group=self._gossip, tag=HEADER)]
        if payload is not None:
            works.append(dist.isend(payload, dst=peer, group=self._gossip, tag=PAYLOAD))
        if reply is not None:
            works.append(dist.irecv(reply, src=peer, group=self._gossip, tag=REPLY))
        return works

    def _wait(self, works, peer: int) -> None:
        try:
            for work in works:
                work.wait(self._timeout)
        except RuntimeError as error:
            raise PeerFailedError(
                f"rank {self.rank}: rank {peer} did not answer: {error}"
            ) from error


_BEGIN = {
    ops.Gradient: TorchComm._gradient,
    ops.AllReduce: TorchComm._collective,
    ops.AllGather: TorchComm._collective,
    ops.AllToAll: TorchComm._collective,
    ops.Broadcast: TorchComm._collective,
    ops.Exchange: TorchComm._exchange,
    ops.AverageWithPeer: TorchComm._average,
    ops.Push: TorchComm._push,
    ops.Pull: TorchComm._pull,
}
