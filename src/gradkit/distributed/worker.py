"""What a worker program sees: its model as one flat tensor, its data shard, and operations.

Both drivers build :class:`Worker` objects the same way, so a program cannot tell whether it
runs in the simulator or over torch.distributed.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor
from torch.optim.sgd import sgd

from gradkit.checks import InputError
from gradkit.distributed import ops
from gradkit.distributed.sharding import derived_seed
from gradkit.distributed.topology import Topology, is_active, neighbors


@dataclass
class StepRecord:
    """One applied update: which worker, its local step, the simulated (or wall) time, the
    mini-batch loss of the gradient, and its staleness (changes to the worker's model between
    reading it for the gradient and applying the update)."""

    worker: int
    step: int
    time: float
    loss: float
    staleness: int


class Worker:
    """The handle a worker program drives.

    ``x`` is the worker's model as one flat tensor, changed only through :meth:`apply` and the
    averaging operations, under ``lock`` (another thread may average into it). ``steps`` is the
    number of local steps a synchronous program takes; asynchronous programs loop while
    :meth:`keep_going` (a global budget of gradient computations shared by all workers). ``rng``
    is the worker's own generator, seeded from (seed, rank). ``share`` is the worker's fraction
    pi_i of the training set; ``iterate`` is where a program keeps a local iterate apart from
    the model (DAve-PG's x_i), for inspection. ``gradients`` counts the gradients the worker
    computed, ``applied_gradients`` those its recorded updates carry (one per update, except
    DAve-RPG's, which carry its local rounds).
    """

    def __init__(
        self,
        rank: int,
        world_size: int,
        x: Tensor,
        *,
        steps: int,
        seed: int,
        topology: Topology,
        clock: Callable[[], float],
        budget: Callable[[], bool],
        param_sizes: tuple[int, ...] | None = None,
        share: float | None = None,
    ):
        self.rank, self.world_size = rank, world_size
        self.x = x
        self.seed = seed
        self.param_sizes = param_sizes or (x.numel(),)
        self.steps = steps
        self.share = 1.0 / world_size if share is None else share
        self.iterate: Tensor | None = None
        self.neighbors = neighbors(rank, world_size, topology)
        self.active = is_active(rank)
        self.rng = torch.Generator().manual_seed(derived_seed(seed, rank, 1))
        self.version = 0
        self.lock = threading.Lock()
        self.records: list[StepRecord] = []
        self.gradients = 0
        self.applied_gradients = 0
        self.bytes_sent = 0
        self.bytes_received = 0
        self.counters: dict[str, float] = {}
        self._clock, self._budget = clock, budget
        self._momentum_buffer: list[Tensor | None] = [None]  # torch SGD's, for apply()
        self._read_version = 0
        self._loss = math.nan

    # operations (executed by the driver) -------------------------------------------------
    def gradient(self) -> ops.Gradient:
        return ops.Gradient()

    def all_reduce(self, tensor: Tensor, op: Literal["mean", "sum"] = "mean") -> ops.AllReduce:
        return ops.AllReduce(tensor, op)

    def all_gather(self, tensor: Tensor) -> ops.AllGather:
        return ops.AllGather(tensor)

    def all_to_all(self, tensor: Tensor) -> ops.AllToAll:
        return ops.AllToAll(tensor)

    def broadcast(self, tensor: Tensor, src: int = 0) -> ops.Broadcast:
        return ops.Broadcast(tensor, src)

    def exchange(self, tensor: Tensor, peers: tuple[int, ...]) -> ops.Exchange:
        return ops.Exchange(tensor, tuple(peers))

    def average_with(self, peer: int) -> ops.AverageWithPeer:
        return ops.AverageWithPeer(peer, ops.tensor_bytes(self.x))

    def push(self, tensor: Tensor, reply: bool = False) -> ops.Push:
        return ops.Push(tensor, reply)

    def pull(self) -> ops.Pull:
        return ops.Pull(ops.tensor_bytes(self.x))

    # local work ---------------------------------------------------------------------------
    def random_neighbor(self) -> int:
        """A uniformly random neighbour on the other side of the bipartite labelling."""
        others = [p for p in self.neighbors if is_active(p) != self.active]
        if not others:
            raise InputError(f"worker {self.rank} has no neighbour on the other side")
        return others[int(torch.randint(len(others), (), generator=self.rng))]

    def count(self, name: str, amount: float) -> None:
        """Add ``amount`` to a named counter of this worker (e.g. the exact payload bits a
        compressed program sent), reported in the trace."""
        self.counters[name] = self.counters.get(name, 0) + amount

    def keep_going(self) -> bool:
        """Claim one gradient computation from the global budget; False once it is spent."""
        return self._budget()

    def apply(self, direction: Tensor, lr: float, momentum: float = 0.0) -> None:
        """x <- x - lr * u with u <- momentum * u + direction (heavy ball; u = direction at the
        first step and when momentum is 0): torch's SGD rule, by its functional core."""
        self.update(
            lambda: sgd(
                [self.x], [direction], self._momentum_buffer, lr=lr, momentum=momentum,
                weight_decay=0.0, dampening=0.0, nesterov=False, maximize=False,
            )
        )  # fmt: skip

    def update(self, rule: Callable[[], None]) -> None:
        """Run ``rule``, an in-place update of x (e.g. a torch.optim functional step), as one
        change of the model, and record the step."""
        with self.lock:
            rule()
            staleness = self.version - self._read_version
            self.version += 1
        self.applied_gradients = self.gradients
        self.records.append(
            StepRecord(self.rank, len(self.records) + 1, self._clock(), self._loss, staleness)
        )

    def record_update(self) -> None:
        """Record one update of this worker's gradient applied elsewhere (by the server),
        with its loss; the server records its staleness."""
        self.applied_gradients = self.gradients
        self.records.append(
            StepRecord(self.rank, len(self.records) + 1, self._clock(), self._loss, 0)
        )

    def replace_model(self, values: Tensor) -> None:
        """x <- values (an averaging result), counted as one change of the model."""
        with self.lock:
            self.x.copy_(values)
            self.version += 1

    def note_gradient(self, loss: float, read_version: int) -> None:
        """Called by the driver with the loss of a gradient computed at model version
        ``read_version``."""
        self._loss = loss
        self._read_version = read_version
        self.gradients += 1
