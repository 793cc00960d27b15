"""The operations a worker program yields, as plain data.

A worker program is a generator: it yields one operation (or a tuple of operations to run
concurrently) and receives its result. A driver (:class:`gradkit.sim.Simulator` on a virtual
clock, :class:`gradkit.distributed.TorchComm` over torch.distributed) executes the operations,
so the same program runs in both. ``payload_bytes`` is the size of the operation's message (for
``Pull``, of the reply it receives); drivers count every message sent and received per worker.

==================  =====================================================  =====================
operation           semantics                                               result
==================  =====================================================  =====================
``Gradient``        gradient of the loss at the worker's model on its      flat gradient
                    next mini-batch (the model is read when it starts)
``AllReduce``       sum or mean of ``tensor`` over all workers             reduced tensor
``AllGather``       every worker's ``tensor``, in rank order               list of tensors
``AllToAll``        row j of ``tensor`` (n rows) goes to worker j          (n, ...) tensor: row i
                                                                           from worker i
``Broadcast``       ``tensor`` of worker ``src``                           that tensor
``Exchange``        send ``tensor`` to each of ``peers``, receive theirs   {peer: tensor}
``AverageWithPeer`` atomic x_i, x_peer <- (x_i + x_peer)/2 of the models;  None
                    the peer is passive and keeps computing meanwhile
``Push``            the server state s <- s + ``tensor``                   s after the add if
                                                                           ``reply`` else None
``Pull``            the server state s                                     a copy of s
==================  =====================================================  =====================

Collectives (``AllReduce``, ``AllGather``, ``AllToAll``, ``Broadcast``) are called by every
worker in the same order; ``Exchange`` by both ends of every pair; ``AverageWithPeer`` only by
the active side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import Tensor

from gradkit.checks import InputError


def tensor_bytes(tensor: Tensor) -> int:
    return tensor.numel() * tensor.element_size()


@dataclass(frozen=True, eq=False)
class Gradient:
    """Compute a gradient on the local model and the next local mini-batch (no communication)."""

    payload_bytes = 0


@dataclass(frozen=True, eq=False)
class AllReduce:
    tensor: Tensor
    op: Literal["mean", "sum"] = "mean"

    @property
    def payload_bytes(self) -> int:
        return tensor_bytes(self.tensor)


class Gathered(list):
    """An all-gather's result, one entry per rank. ``shared`` is a dict that the simulator gives
    every worker of the same collective (the one object), so a value computed from the gathered
    entries alone, such as their decoded mean, is computed once instead of once per worker; a
    real driver gives each worker its own empty one (each process computes it, as it must)."""

    def __init__(self, entries=(), shared: dict | None = None):
        super().__init__(entries)
        self.shared = {} if shared is None else shared


def shared_value(gathered: list, key: str, compute):
    """``compute(gathered)``, or the value another worker of the same collective already
    computed for ``key`` (see :class:`Gathered`). Only for values that depend on the gathered
    entries and on configuration every worker shares, never on a worker's own state; callers
    must not modify it in place."""
    shared = getattr(gathered, "shared", None)
    if shared is None:
        return compute(gathered)
    if key not in shared:
        shared[key] = compute(gathered)
    return shared[key]


@dataclass(frozen=True, eq=False)
class AllGather:
    tensor: Tensor

    @property
    def payload_bytes(self) -> int:
        return tensor_bytes(self.tensor)


@dataclass(frozen=True, eq=False)
class AllToAll:
    tensor: Tensor

    @property
    def payload_bytes(self) -> int:
        return tensor_bytes(self.tensor)


@dataclass(frozen=True, eq=False)
class Broadcast:
    tensor: Tensor
    src: int = 0

    @property
    def payload_bytes(self) -> int:
        return tensor_bytes(self.tensor)


@dataclass(frozen=True, eq=False)
class Exchange:
    tensor: Tensor
    peers: tuple[int, ...]

    @property
    def payload_bytes(self) -> int:
        return tensor_bytes(self.tensor)


@dataclass(frozen=True, eq=False)
class AverageWithPeer:
    peer: int
    model_bytes: int

    @property
    def payload_bytes(self) -> int:
        return self.model_bytes


@dataclass(frozen=True, eq=False)
class Push:
    tensor: Tensor
    reply: bool = False

    @property
    def payload_bytes(self) -> int:
        return tensor_bytes(self.tensor)


@dataclass(frozen=True, eq=False)
class Pull:
    model_bytes: int

    @property
    def payload_bytes(self) -> int:
        return self.model_bytes


def message_bytes(op, rank: int, n: int, server: int) -> tuple[int, int]:
    """(sent, received) bytes that ``op`` moves for the worker ``rank`` that called it, the
    same in every driver. The server state lives on rank ``server`` (colocated with that
    worker), so its own ``Push`` and ``Pull`` move nothing. For ``AverageWithPeer`` the passive
    peer moves the same bytes, counted on its side by whoever serves it."""
    if isinstance(op, AllReduce | AllGather | AllToAll | Broadcast):
        return collective_bytes(op, rank, n)
    nbytes = op.payload_bytes
    if isinstance(op, Exchange):
        return nbytes * len(op.peers), nbytes * len(op.peers)
    if isinstance(op, AverageWithPeer):
        return nbytes, nbytes
    if isinstance(op, Push | Pull) and rank == server:
        return 0, 0
    if isinstance(op, Push):
        return nbytes, nbytes if op.reply else 0
    if isinstance(op, Pull):
        return 0, nbytes
    return 0, 0


def check_peers(rank: int, peers: tuple[int, ...], n: int) -> None:
    """Peers must be distinct ranks in 0..n-1 other than ``rank``."""
    if len(set(peers)) != len(peers) or any(p == rank or not 0 <= p < n for p in peers):
        raise InputError(
            f"rank {rank} named peers {peers}; peers must be distinct other ranks in 0..{n - 1}"
        )


def check_concurrent(operations: tuple) -> None:
    """A tuple of operations runs concurrently; it may hold at most one ``Gradient`` (a worker
    computes one gradient at a time)."""
    if sum(isinstance(op, Gradient) for op in operations) > 1:
        raise InputError("a tuple of concurrent operations may hold at most one gradient()")


Operation = (
    Gradient
    | AllReduce
    | AllGather
    | AllToAll
    | Broadcast
    | Exchange
    | AverageWithPeer
    | Push
    | Pull
)


def collective_bytes(op, rank: int, n: int) -> tuple[int, int]:
    """(sent, received) bytes of worker ``rank`` in a collective of n workers, B bytes each:
    ring all-reduce 2(n-1)B/n each way; ring all-gather (n-1)B each way; all-to-all (n-1)B/n
    each way; broadcast (n-1)B sent by the root (a tree spreads this), B received by others."""
    nbytes = op.payload_bytes
    if isinstance(op, AllReduce):
        moved = round(2 * (n - 1) * nbytes / n)
        return moved, moved
    if isinstance(op, AllGather):
        return (n - 1) * nbytes, (n - 1) * nbytes
    if isinstance(op, AllToAll):
        moved = round((n - 1) * nbytes / n)
        return moved, moved
    return ((n - 1) * nbytes, 0) if rank == op.src else (0, nbytes)
