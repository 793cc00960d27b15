"""A training problem in the form the distributed drivers need (no dependency on ``tasks``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gradkit.checks import InputError
from gradkit.distributed.gradients import GradientEngine
from gradkit.distributed.sharding import Shard, derived_seed, shard_indices

SAMPLING = ("shards", "whole")


@dataclass(frozen=True)
class Problem:
    """The model, the training set sharded across workers, and how to judge a model.

    ``build_model()`` must return the same initial model on every call (every worker starts from
    it). ``batch_size`` is per worker. ``evaluate(model)`` returns named metrics such as
    ``train_loss`` and ``test_accuracy``; it is called on the averaged (or server) model.
    ``sampling`` is ``"shards"`` (each worker draws from its own i.i.d. shard, the default) or
    ``"whole"`` (each worker draws from the whole training set with its own shuffling, so every
    worker's gradient is an unbiased estimate of the full gradient, the assumption of the
    majority-vote analysis). ``whole_shards``: every batch is the worker's whole shard (the
    full local gradient, e.g. for DAve-PG with uneven shards); ``batch_size`` is then unused.
    ``shares``: each worker's fraction of the training set (positive, summing to 1; one per
    worker), instead of near-equal shards.
    """

    build_model: Callable[[], nn.Module]
    inputs: Tensor
    targets: Tensor
    loss_fn: Callable[[Tensor, Tensor], Tensor]
    batch_size: int
    evaluate: Callable[[nn.Module], dict[str, float]] | None = None
    sampling: str = "shards"
    whole_shards: bool = False
    shares: tuple[float, ...] | None = None

    def __post_init__(self):
        if self.sampling not in SAMPLING:
            raise InputError(
                f"sampling must be one of {', '.join(SAMPLING)}, got {self.sampling!r}"
            )
        if len(self.inputs) != len(self.targets):
            raise InputError(
                f"inputs and targets differ in length: {len(self.inputs)} vs {len(self.targets)}"
            )
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise InputError(f"batch_size must be a positive integer, got {self.batch_size!r}")

    @property
    def num_samples(self) -> int:
        return len(self.inputs)

    def samples_per_step(self, world_size: int) -> float:
        """Samples one gradient step reads: ``batch_size``, or the mean shard with whole-shard
        batches."""
        return self.num_samples / world_size if self.whole_shards else self.batch_size

    def engine(self, seed: int, device: torch.device | None = None) -> GradientEngine:
        """A gradient engine on the model built with torch's RNG seeded by ``seed`` (the global
        RNG is left as it was)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = self.build_model()
        return GradientEngine(model.to(device) if device is not None else model, self.loss_fn)

    def partition(self, world_size: int, epochs: float, seed: int) -> tuple[list[Tensor], int]:
        """(sample indices of each worker's shard, local steps per worker). The steps make all
        workers together see about ``epochs`` passes: ``epochs * smallest shard / batch_size``
        (``epochs * samples / world_size / batch_size`` when sampling from the whole set;
        ``epochs`` with whole-shard batches), rounded, at least 1."""
        if not (isinstance(epochs, int | float) and math.isfinite(epochs) and epochs > 0):
            raise InputError(f"epochs must be a positive number, got {epochs!r}")
        if self.sampling == "whole":
            shards = [torch.arange(self.num_samples)] * world_size
            share = self.num_samples / world_size
        else:
            shards = shard_indices(self.num_samples, world_size, seed, self.shares)
            share = min(len(s) for s in shards)
        steps = max(1, round(epochs * (1 if self.whole_shards else share / self.batch_size)))
        return shards, steps

    def shard(
        self, index: Tensor, rank: int, seed: int, device: torch.device | None = None
    ) -> Shard:
        """Worker ``rank``'s mini-batches over the samples ``index``, shuffled by a generator
        seeded from (seed, rank)."""
        return Shard(
            self.inputs[index].to(device),
            self.targets[index].to(device),
            len(index) if self.whole_shards else self.batch_size,
            torch.Generator().manual_seed(derived_seed(seed, rank, 0)),
        )
