"""The simulated cluster: how long computing a gradient and moving bytes take.

Time is in abstract units; by default one mini-batch gradient costs 1.0 and a link moves
``bandwidth`` bytes per unit (if one unit is 10 ms, the default 1e6 bytes/unit is 100 MB/s).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from gradkit.checks import NONNEGATIVE, POSITIVE, InputError, Rule, number
from gradkit.distributed.algorithms import SERVER_RANK
from gradkit.distributed.topology import TOPOLOGIES, Topology

SLOWDOWN = Rule(number(1).accepts, "a finite factor >= 1")


def _check_slowdowns(name: str, factors: Mapping) -> None:
    for key, factor in factors.items():
        SLOWDOWN(f"{name}[{key!r}]", factor)


@dataclass(frozen=True)
class ComputeModel:
    """Time of one mini-batch gradient on worker i: ``time * slowdown.get(i, 1) * J`` with J
    lognormal of median 1 and log-standard-deviation ``jitter`` (J = 1 when jitter is 0). With
    ``measured=True`` the base time is the measured wall time of the real computation times
    ``time`` (then runs are no longer bit-reproducible in time)."""

    time: float = 1.0
    jitter: float = 0.0
    slowdown: Mapping[int, float] = field(default_factory=dict)
    measured: bool = False

    def __post_init__(self):
        POSITIVE("compute time", self.time)
        NONNEGATIVE("jitter", self.jitter)
        _check_slowdowns("slowdown", self.slowdown)

    def duration(self, rank: int, rng: np.random.Generator, measured_seconds: float) -> float:
        base = self.time * (measured_seconds if self.measured else 1.0)
        factor = self.slowdown.get(rank, 1.0)
        if self.jitter:
            factor *= float(rng.lognormal(0.0, self.jitter))
        return base * factor


@dataclass(frozen=True)
class NetworkModel:
    """A message of B bytes from i to j takes ``latency + B * s_ij / bandwidth``, where s_ij is
    ``link_slowdown`` of the unordered pair (1 if absent; the server lives on rank 0).

    Collective costs for n workers and B bytes per worker, with s the slowest link of the ring
    0-1-...-(n-1)-0:

    - ring all-reduce: 2 (n-1) (latency + s B / (n bandwidth))  (reduce-scatter + all-gather)
    - ring all-gather: (n-1) (latency + s B / bandwidth)
    - pairwise all-to-all: (n-1) (latency + s B / (n bandwidth))
    - broadcast (binomial tree): ceil(log2 n) (latency + s B / bandwidth)

    Links are full duplex and independent; contention is modelled only at a model (one averaging
    at a time) and at the server, which receives one message at a time: messages to it are in
    flight together (latency), but their bytes arrive one message after another.
    """

    latency: float = 0.005
    bandwidth: float = 1e6
    topology: Topology = "ring"
    link_slowdown: Mapping[tuple[int, int], float] = field(default_factory=dict)

    def __post_init__(self):
        NONNEGATIVE("latency", self.latency)
        POSITIVE("bandwidth", self.bandwidth)
        if self.topology not in TOPOLOGIES:
            raise InputError(
                f"unknown topology {self.topology!r}; choose from {', '.join(TOPOLOGIES)}"
            )
        _check_slowdowns("link_slowdown", self.link_slowdown)

    def slowdown(self, a: int, b: int) -> float:
        return self.link_slowdown.get((a, b), self.link_slowdown.get((b, a), 1.0))

    def serialization(self, src: int, dst: int, nbytes: int) -> float:
        """The time the link is busy putting ``nbytes`` on the wire (no latency)."""
        return nbytes * self.slowdown(src, dst) / self.bandwidth

    def transfer(self, src: int, dst: int, nbytes: int) -> float:
        return self.latency + self.serialization(src, dst, nbytes)

    def _ring_slowdown(self, n: int) -> float:
        return max((self.slowdown(i, (i + 1) % n) for i in range(n)), default=1.0)

    def all_reduce(self, n: int, nbytes: int) -> float:
        if n == 1:
            return 0.0
        return 2 * (n - 1) * (self.latency + self._ring_slowdown(n) * nbytes / (n * self.bandwidth))

    def all_gather(self, n: int, nbytes: int) -> float:
        if n == 1:
            return 0.0
        return (n - 1) * (self.latency + self._ring_slowdown(n) * nbytes / self.bandwidth)

    def all_to_all(self, n: int, nbytes: int) -> float:
        if n == 1:
            return 0.0
        return (n - 1) * (self.latency + self._ring_slowdown(n) * nbytes / (n * self.bandwidth))

    def broadcast(self, n: int, nbytes: int) -> float:
        if n == 1:
            return 0.0
        hops = math.ceil(math.log2(n))
        return hops * (self.latency + self._ring_slowdown(n) * nbytes / self.bandwidth)


@dataclass(frozen=True)
class Cluster:
    """``workers`` simulated workers with a compute-time model and a network model. A
    parameter server shares worker 0's machine (its messages to the server are free), or with
    ``dedicated_server`` runs on a machine of its own, node ``workers`` (every worker's messages
    cross a link, which ``link_slowdown`` may name)."""

    workers: int
    compute: ComputeModel = field(default_factory=ComputeModel)
    network: NetworkModel = field(default_factory=NetworkModel)
    dedicated_server: bool = False

    def __post_init__(self):
        if not isinstance(self.workers, int) or self.workers < 1:
            raise InputError(f"workers must be a positive integer, got {self.workers!r}")
        for rank in self.compute.slowdown:
            if not 0 <= rank < self.workers:
                raise InputError(f"slowdown names worker {rank}, outside 0..{self.workers - 1}")
        nodes = self.workers + 1 if self.dedicated_server else self.workers
        for a, b in self.network.link_slowdown:
            for rank in (a, b):
                if not 0 <= rank < nodes:
                    raise InputError(f"link_slowdown names node {rank}, outside 0..{nodes - 1}")

    @property
    def server_node(self) -> int:
        """Where the parameter server runs: worker 0's machine or its own (node ``workers``)."""
        return self.workers if self.dedicated_server else SERVER_RANK
