"""The record of one distributed run, produced identically by the simulator and TorchComm."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from gradkit.distributed.worker import StepRecord


@dataclass
class Trace:
    """Per-step records of every worker, evaluations of the judged model, and bytes moved.

    ``evals`` rows hold ``time`` (simulated time, or wall seconds in real runs), ``epoch``
    (samples consumed by all workers / training-set size), ``consensus`` ((1/n) sum_i
    ||x_i - mean||^2) and the problem's metrics (e.g. ``train_loss``, ``test_accuracy``).
    """

    algorithm: str
    workers: int
    seed: int
    settings: dict[str, Any]
    steps: list[StepRecord] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)
    bytes_sent: list[int] = field(default_factory=list)
    bytes_received: list[int] = field(default_factory=list)
    counters: list[dict[str, float]] = field(default_factory=list)
    server_staleness: list[int] = field(default_factory=list)
    diverged: bool = False
    duration: float = 0.0
    wall_seconds: float = 0.0

    @classmethod
    def start(
        cls,
        algorithm: str,
        workers: int,
        seed: int,
        epochs: float,
        batch_size: int,
        parameters: int,
        hyper: dict[str, Any],
        **extra: Any,
    ) -> Trace:
        """An empty trace whose settings record the run's description."""
        settings = {"epochs": epochs, "batch_size": batch_size, "parameters": parameters}
        named = {k: getattr(v, "__name__", repr(v)) if callable(v) else v for k, v in hyper.items()}
        return cls(algorithm, workers, seed, {**settings, **extra, **named})

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes_sent)

    def final(self, metric: str) -> float:
        return self.evals[-1][metric] if self.evals else math.nan

    def series(self, metric: str, against: str = "epoch") -> tuple[list[float], list[float]]:
        """(x, y) of ``metric`` over the evaluations that have it, x being ``epoch`` or
        ``time``."""
        rows = [e for e in self.evals if metric in e]
        return [e[against] for e in rows], [e[metric] for e in rows]

    def time_to(self, metric: str, target: float, lower_is_better: bool = True) -> float:
        """The first evaluation time at which ``metric`` reached ``target`` (inf if never)."""
        for e in self.evals:
            value = e.get(metric, math.nan)
            if value <= target if lower_is_better else value >= target:
                return e["time"]
        return math.inf

    def counter(self, name: str) -> float:
        """A worker counter summed over the workers (0 if no worker counted it)."""
        return sum(c.get(name, 0) for c in self.counters)

    def mean_staleness(self) -> float:
        """Mean staleness of the applied updates: the server's record where a server applied
        them (updates between a worker's pull and its push), else the workers'."""
        if self.server_staleness:
            return sum(self.server_staleness) / len(self.server_staleness)
        return sum(s.staleness for s in self.steps) / len(self.steps) if self.steps else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["total_bytes"] = self.total_bytes
        return out
