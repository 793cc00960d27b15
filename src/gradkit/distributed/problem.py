"""A training problem in the form the distributed drivers need (no dependency on ``tasks``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor, nn


@dataclass(frozen=True)
class Problem:
    """The model, the training set sharded across workers, and how to judge a model.

    ``build_model()`` must return the same initial model on every call (every worker starts from
    it). ``batch_size`` is per worker. ``evaluate(model)`` returns named metrics such as
    ``train_loss`` and ``test_accuracy``; it is called on the averaged (or server) model.
    """

    build_model: Callable[[], nn.Module]
    inputs: Tensor
    targets: Tensor
    loss_fn: Callable[[Tensor, Tensor], Tensor]
    batch_size: int
    evaluate: Callable[[nn.Module], dict[str, float]] | None = None

    def __post_init__(self):
        if len(self.inputs) != len(self.targets):
            raise ValueError(
                f"inputs and targets differ in length: {len(self.inputs)} vs {len(self.targets)}"
            )
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")

    @property
    def num_samples(self) -> int:
        return len(self.inputs)

    def steps_per_worker(self, epochs: float, min_shard: int) -> int:
        """Local steps each worker takes so that all workers together see about ``epochs``
        passes over the data: ``epochs * min_shard / batch_size``, rounded, at least 1."""
        return max(1, round(epochs * min_shard / self.batch_size))
