"""What a worker program sees: its model as one flat tensor, its data shard, and operations.

Both drivers build :class:`Worker` objects the same way, so a program cannot tell whether it
runs in the simulator or over torch.distributed.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.optim.sgd import sgd

from gradkit.checks import InputError
from gradkit.distributed import ops

Topology = Literal["ring", "complete"]
TOPOLOGIES: tuple[str, ...] = ("ring", "complete")


class NonFiniteLossError(FloatingPointError):
    """A worker's mini-batch loss or gradient was NaN or infinite (the run diverged)."""


def derived_seed(*parts: int) -> int:
    """A 63-bit seed from integers such as (seed, rank): distinct parts give independent
    streams (numpy's SeedSequence hashing)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(2, np.uint64)[0] >> np.uint64(1))


def neighbors(rank: int, world_size: int, topology: Topology) -> tuple[int, ...]:
    """Graph neighbours of ``rank``: ring (rank +- 1 mod n) or complete (every other rank)."""
    if topology == "ring":
        return tuple(sorted({(rank - 1) % world_size, (rank + 1) % world_size} - {rank}))
    if topology == "complete":
        return tuple(r for r in range(world_size) if r != rank)
    raise InputError(f"unknown topology {topology!r}; choose from {', '.join(TOPOLOGIES)}")


def is_active(rank: int) -> bool:
    """Bipartite labelling used by AD-PSGD: odd ranks are active (initiate averaging), even ranks
    passive (only respond), as in the stochastic-gradient-push reference."""
    return rank % 2 == 1


def check_bipartite(world_size: int, topology: Topology) -> None:
    """Raise unless every edge of the graph joins an active and a passive rank."""
    for rank in range(world_size):
        for peer in neighbors(rank, world_size, topology):
            if is_active(peer) == is_active(rank):
                raise InputError(
                    f"this algorithm needs a bipartite graph (odd ranks active, even passive); "
                    f"{topology} with {world_size} workers joins ranks {rank} and {peer}: use an "
                    f"even number of workers on a ring, or 2 workers"
                )


def shard_indices(
    num_samples: int, world_size: int, seed: int, shares: Sequence[float] | None = None
) -> list[Tensor]:
    """An i.i.d. split of ``range(num_samples)`` into ``world_size`` shards (a permutation
    seeded by ``seed``, cut into consecutive pieces) of near-equal size, or of sizes
    round(share x num_samples) (the last takes the rest)."""
    if world_size > num_samples:
        raise InputError(f"{world_size} workers need at least as many samples, got {num_samples}")
    order = torch.randperm(num_samples, generator=torch.Generator().manual_seed(seed))
    if shares is None:
        return list(torch.tensor_split(order, world_size))
    shares = list(shares)
    if len(shares) != world_size or not all(isinstance(p, int | float) and p > 0 for p in shares):
        raise InputError(
            f"shares must be {world_size} positive numbers (one per worker), got {shares}"
        )
    if abs(sum(shares) - 1) > 1e-9:
        raise InputError(f"shares must sum to 1, got {shares} (sum {sum(shares):.12g})")
    sizes = [round(p * num_samples) for p in shares[:-1]]
    sizes.append(num_samples - sum(sizes))
    if min(sizes) < 1:
        raise InputError(f"shares {shares} leave a worker without samples out of {num_samples}")
    return list(torch.split(order, sizes))


class Shard:
    """Mini-batches of one worker's shard, without replacement, reshuffled every pass by the
    worker's own generator; the last partial batch of a pass is dropped."""

    def __init__(
        self, inputs: Tensor, targets: Tensor, batch_size: int, generator: torch.Generator
    ):
        if batch_size > len(inputs):
            raise InputError(
                f"batch_size {batch_size} exceeds the shard of {len(inputs)} samples; use fewer "
                f"workers or a smaller batch"
            )
        self.inputs, self.targets = inputs, targets
        self.batch_size = batch_size
        self.generator = generator
        self.batches_per_pass = len(inputs) // batch_size
        self._pass_inputs: Tensor | None = None
        self._pass_targets: Tensor | None = None
        self._next = 0

    def next_batch(self) -> tuple[Tensor, Tensor]:
        if self.batch_size == len(self.inputs):  # the whole shard: its order changes nothing
            return self.inputs, self.targets
        if self._next == self.batches_per_pass or self._pass_inputs is None:
            order = torch.randperm(len(self.inputs), generator=self.generator)
            self._pass_inputs, self._pass_targets = self.inputs[order], self.targets[order]
            self._next = 0
        start = self._next * self.batch_size
        self._next += 1
        end = start + self.batch_size
        return self._pass_inputs[start:end], self._pass_targets[start:end]


class GradientEngine:
    """Evaluates mini-batch gradients of ``module`` at any flat parameter vector.

    The module's parameters are made views into one flat buffer; ``gradient(x, ...)`` copies ``x``
    into it (so ``x`` may change while the gradient is used) and returns a new flat gradient. One
    engine serves every simulated worker.
    """

    def __init__(self, module: nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor]):
        self.module = module
        self.loss_fn = loss_fn
        self.params = [p for p in module.parameters() if p.requires_grad]
        if not self.params:
            raise InputError("the model has no trainable parameters")
        dtypes = {p.dtype for p in self.params}
        if len(dtypes) != 1 or not next(iter(dtypes)).is_floating_point:
            raise InputError(f"all parameters must share one floating dtype, got {dtypes}")
        with torch.no_grad():
            self.flat = torch.cat([p.reshape(-1) for p in self.params])
        self._bind(self.flat)
        self._batched = None

    def _bind(self, flat: Tensor) -> None:
        """Make the module's parameters views into ``flat``."""
        offset = 0
        for p in self.params:
            p.data = flat[offset : offset + p.numel()].view_as(p)
            offset += p.numel()

    @property
    def numel(self) -> int:
        return self.flat.numel()

    @property
    def param_sizes(self) -> tuple[int, ...]:
        """Sizes of the parameters, in the order of the flat vector."""
        return tuple(p.numel() for p in self.params)

    def gradient(
        self, x: Tensor, inputs: Tensor, targets: Tensor, snapshot: bool = True
    ) -> tuple[Tensor, float]:
        """(flat gradient, loss) of the mini-batch at parameters ``x``; raises
        :class:`NonFiniteLossError` if the loss is not finite. With ``snapshot=False`` the
        module computes on ``x`` itself (no copy), which is safe only if nothing changes ``x``
        during the call."""
        if snapshot:
            with torch.no_grad():
                self.flat.copy_(x)
            self._bind(self.flat)
        else:
            self._bind(x)
        loss = self.loss_fn(self.module(inputs), targets)
        value = loss.item()
        if not math.isfinite(value):
            raise NonFiniteLossError(f"non-finite mini-batch loss ({value})")
        grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        flat = torch.cat(
            [
                (torch.zeros_like(p) if g is None else g).reshape(-1)
                for p, g in zip(self.params, grads, strict=True)
            ]
        )
        return flat, value

    def gradients(self, xs: Tensor, inputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """Gradients and losses for k parameter vectors at once: ``xs`` is (k, P), ``inputs`` and
        ``targets`` stack one mini-batch per row. Vectorised with ``torch.func.vmap`` (one
        batched forward and backward instead of k small ones); raises
        :class:`NonFiniteLossError` if any loss is not finite."""
        if self._batched is None:
            names = [name for name, p in self.module.named_parameters() if p.requires_grad]
            sizes = [p.numel() for p in self.params]
            shapes = [p.shape for p in self.params]

            def loss_at(x: Tensor, batch_inputs: Tensor, batch_targets: Tensor) -> Tensor:
                views = torch.split(x, sizes)
                params = {n: v.view(s) for n, v, s in zip(names, views, shapes, strict=True)}
                out = torch.func.functional_call(self.module, params, (batch_inputs,))
                return self.loss_fn(out, batch_targets)

            self._batched = torch.func.vmap(torch.func.grad_and_value(loss_at))
        grads, losses = self._batched(xs, inputs, targets)
        if not bool(torch.isfinite(losses).all()):
            raise NonFiniteLossError(f"non-finite mini-batch loss ({losses.tolist()})")
        return grads, losses

    def load(self, x: Tensor) -> nn.Module:
        """The module with (a copy of) parameters ``x``, for evaluation."""
        with torch.no_grad():
            self.flat.copy_(x)
        self._bind(self.flat)
        return self.module


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
