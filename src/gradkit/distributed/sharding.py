"""Each worker's data: an i.i.d. split of the samples into shards, mini-batches drawn from a
shard, and the seeds that make every rank's streams independent and reproducible."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from gradkit.checks import InputError


def derived_seed(*parts: int) -> int:
    """A 63-bit seed from integers such as (seed, rank): distinct parts give independent
    streams (numpy's SeedSequence hashing)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(2, np.uint64)[0] >> np.uint64(1))


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
