"""Simulated time of DDG with K stages, one per device, beyond the cores of this machine.

Each stage runs the protocol of :class:`gradkit.model_parallel.distributed.DistributedDDG` on a
SimPy clock: at iteration t it waits for batch t's activations (stage 0 has its batch), forwards
them (``forward`` time), sends them on (latency + bytes / bandwidth), then, once the stage after
it has begun sending gradients, waits for the gradient sent during iteration t - 1,
backpropagates (``backward`` time, optimizer step included) and sends its input gradient back.
Backpropagation in one process takes sum(forward + backward) per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import simpy

from gradkit.checks import InputError
from gradkit.model_parallel.costs import StageCost
from gradkit.model_parallel.stage import backpropagates
from gradkit.sim.cluster import NetworkModel


@dataclass(frozen=True)
class PipelineTiming:
    """Simulated times of ``iterations`` DDG iterations: the total, and each stage's busy
    fraction (its compute time over the total)."""

    stages: int
    iterations: int
    total: float
    busy: tuple[float, ...]

    @property
    def per_iteration(self) -> float:
        return self.total / self.iterations


def backprop_time(costs: Sequence[StageCost], iterations: int) -> float:
    """Backpropagation of the whole model in one process: every stage's forward and backward,
    one after the other, per batch."""
    return iterations * sum(c.forward + c.backward for c in costs)


def simulate_ddg(
    costs: Sequence[StageCost], iterations: int, network: NetworkModel | None = None
) -> PipelineTiming:
    """The simulated time of ``iterations`` DDG iterations with one stage per device, stage k
    costing ``costs[k]``, messages crossing ``network`` (default: latency 0.005, 1e6 bytes per
    unit)."""
    if not costs:
        raise InputError("a pipeline needs at least one stage")
    if not isinstance(iterations, int) or iterations < 1:
        raise InputError(f"iterations must be a positive integer, got {iterations!r}")
    network = network or NetworkModel()
    env, n = simpy.Environment(), len(costs)
    activations = [simpy.Store(env) for _ in range(n)]  # inbox of stage k, from k - 1
    gradients = [simpy.Store(env) for _ in range(n)]  # inbox of stage k, from k + 1
    busy = [0.0] * n

    def deliver(store: simpy.Store, nbytes: int):
        yield env.timeout(network.latency + nbytes / network.bandwidth)
        yield store.put(None)

    def stage(k: int):
        cost = costs[k]
        for t in range(iterations):
            if k > 0:
                yield activations[k].get()
            yield env.timeout(cost.forward)
            if k < n - 1:
                env.process(deliver(activations[k + 1], cost.output_bytes))
                if not backpropagates(k, n, t):  # no gradient has come back yet
                    busy[k] += cost.forward
                    continue
                yield gradients[k].get()
            yield env.timeout(cost.backward)
            busy[k] += cost.forward + cost.backward
            if k > 0:
                env.process(deliver(gradients[k - 1], costs[k - 1].output_bytes))

    for k in range(n):
        env.process(stage(k))
    env.run()
    total = float(env.now)
    return PipelineTiming(n, iterations, total, tuple(b / total if total else 0.0 for b in busy))
