r"""Progressive-batching L-BFGS (Bollapragada, Mudigere, Nocedal, Shi, Tang, ICML 2018,
arXiv 1802.05374).

Iteration k on a sample S_k of b_k data points, F_S(x) = (1/b) sum_{i in S} l_i(x) +
(lambda/2) ||x||^2, per-sample gradients G_i and g = mean_i G_i:

.. math::
    p_k = -H_k g_k, \quad x_{k+1} = x_k + \alpha_k p_k, \quad
    \alpha_k = \tau^j \alpha_0 \text{ (Armijo on } F_{S_k}\text{)}, \quad
    \alpha_0 = \big(1 + \mathrm{Var}_i(G_i^T H_k g_k)(1/b_k - 1/N) / (g_k^T H_k g_k)^2\big)^{-1}

with H_k the L-BFGS two-loop operator (:class:`~gradkit.optim.lbfgs_memory.LBFGSMemory`), the
next sample's size from the inner-product test (and optionally the orthogonality test) of
:class:`~gradkit.optim.batch_size.BatchSizeController`, and the curvature pair
s_k = x_{k+1} - x_k, y_k = g_{O_k}(x_{k+1}) - g_{O_k}(x_k) on the overlap O_k = S_k cap S_{k+1}
(``overlap`` of S_k, kept in S_{k+1}), which costs no extra gradient: both means come from the
per-sample gradients of S_k and S_{k+1}.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters
from torch.optim import Optimizer

from gradkit.checks import InputError
from gradkit.optim._base import NonFiniteGradientError
from gradkit.optim.batch_size import BatchSizeController, BatchStatistics, ProgressiveSampler
from gradkit.optim.lbfgs_memory import LBFGSMemory
from gradkit.optim.line_search import armijo_backtracking
from gradkit.optim.per_sample import METHODS, per_sample_gradients


class ProgressiveBatchLBFGS(Optimizer):
    """PBQN for ``model`` on the data ``inputs``, ``targets`` with ``loss_fn(outputs, targets)``
    (a batch mean, as ``F.cross_entropy``). Each ``step()`` draws its own sample, so unlike
    ``torch.optim.LBFGS`` it takes no closure; it returns F_S(x) before the step.

    - ``initial_batch``: |S_0| (default 1% of the data, at least 16, at most all of it);
      ``theta``, ``orthogonality``, ``nu``: the batch-size tests; ``overlap`` in (0, 1]: the
      part of each sample kept in the next (curvature pairs; 1 = full overlap).
    - ``history``: curvature pairs kept; ``curvature_eps``: a pair needs y^T s > eps ||s||^2;
      ``damping``: Powell-damp failing pairs instead of skipping them.
    - ``c1``, ``shrink``, ``max_backtracks``: the Armijo search. If it fails the model stays
      where it was and the memory is cleared (the next direction is the gradient).
    - ``weight_decay``: lambda of the (lambda/2)||x||^2 term; ``per_sample``: "auto", "vmap"
      or "loop" (:func:`~gradkit.optim.per_sample.per_sample_gradients`).

    Work is counted: ``gradient_evaluations`` (per-sample gradients) and
    ``function_evaluations`` (per-sample losses, line search included); ``batch_sizes`` and
    ``step_sizes`` hold one entry per step. Layers must be deterministic on a fixed sample
    (put dropout and batch norm in eval mode): the first step checks it.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable[[Tensor, Tensor], Tensor],
        inputs: Tensor,
        targets: Tensor,
        *,
        initial_batch: int | None = None,
        theta: float = 0.9,
        orthogonality: bool = False,
        nu: float = 5.84,
        overlap: float = 0.25,
        history: int = 10,
        curvature_eps: float = 1e-6,
        damping: bool = False,
        c1: float = 1e-4,
        shrink: float = 0.5,
        max_backtracks: int = 30,
        weight_decay: float = 0.0,
        per_sample: str = "auto",
        seed: int = 0,
    ):
        n = inputs.shape[0]
        if n == 0:
            raise InputError("the data set is empty: PBQN needs at least 2 samples")
        if targets.shape[0] != n:
            raise InputError(f"inputs hold {n} samples but targets {targets.shape[0]}")
        if initial_batch is None:
            initial_batch = min(n, max(16, math.ceil(0.01 * n)))
        if not isinstance(initial_batch, int) or not 2 <= initial_batch <= n:
            raise InputError(
                f"initial_batch must be an integer in [2, {n}] (the number of samples), "
                f"got {initial_batch!r}"
            )
        if not (isinstance(overlap, int | float) and 0 < overlap <= 1):
            raise InputError(
                f"overlap must be in (0, 1] (curvature pairs need it), got {overlap!r}"
            )
        if not (isinstance(weight_decay, int | float) and weight_decay >= 0):
            raise InputError(f"weight_decay must be >= 0, got {weight_decay!r}")
        for name, value in (("c1", c1), ("shrink", shrink)):
            if not (isinstance(value, int | float) and 0 < value < 1):
                raise InputError(f"{name} must be in (0, 1), got {value!r}")
        if not isinstance(max_backtracks, int) or max_backtracks < 1:
            raise InputError(f"max_backtracks must be a positive integer, got {max_backtracks!r}")
        if per_sample not in METHODS:
            raise InputError(f"per_sample must be one of {', '.join(METHODS)}, got {per_sample!r}")
        defaults = {"lr": 1.0, "weight_decay": weight_decay}
        super().__init__([p for p in model.parameters() if p.requires_grad], defaults)
        self.model, self.loss_fn, self.inputs, self.targets = model, loss_fn, inputs, targets
        self.controller = BatchSizeController(initial_batch, n, theta, orthogonality, nu)
        self.sampler = ProgressiveSampler(n, overlap, torch.Generator().manual_seed(seed))
        self.memory = LBFGSMemory(history, curvature_eps, damping)
        self.c1, self.shrink, self.max_backtracks = c1, shrink, max_backtracks
        self.weight_decay, self.per_sample = weight_decay, per_sample
        self.gradient_evaluations = 0
        self.function_evaluations = 0
        self.batch_sizes: list[int] = []
        self.step_sizes: list[float] = []
        self.last_statistics: BatchStatistics | None = None
        self._sample: Tensor | None = None
        self._previous: tuple[Tensor, Tensor] | None = None  # x_k, mean over O_k at x_k

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        if self.param_groups:
            raise InputError(
                "ProgressiveBatchLBFGS optimizes one group, the model's parameters; it cannot "
                "take another"
            )
        super().add_param_group(param_group)

    def state_dict(self) -> dict[str, Any]:
        """torch.optim's state plus the run's: sample, overlap, memory, counters, RNG."""
        state = super().state_dict()
        state["pbqn"] = {
            "size": self.controller.size,
            "size_history": list(self.controller.history),
            "current": self.sampler.current.clone(),
            "kept": self.sampler.kept.clone(),
            "kept_positions": self.sampler.kept_positions.clone(),
            "generator": self.sampler.generator.get_state(),
            "pairs": [(s.clone(), y.clone()) for s, y in self.memory.pairs],
            "skipped": self.memory.skipped,
            "damped": self.memory.damped,
            "gradient_evaluations": self.gradient_evaluations,
            "function_evaluations": self.function_evaluations,
            "batch_sizes": list(self.batch_sizes),
            "step_sizes": list(self.step_sizes),
            "sample": None if self._sample is None else self._sample.clone(),
            "previous": None
            if self._previous is None
            else tuple(t.clone() for t in self._previous),
        }
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        run = state_dict["pbqn"]
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "pbqn"})
        self.controller.size, self.controller.history = run["size"], list(run["size_history"])
        self.sampler.current, self.sampler.kept = run["current"].clone(), run["kept"].clone()
        self.sampler.kept_positions = run["kept_positions"].clone()
        self.sampler.generator.set_state(run["generator"])
        self.memory.clear()
        for s, y in run["pairs"]:
            self.memory.pairs.append((s.clone(), y.clone()))
        self.memory.skipped, self.memory.damped = run["skipped"], run["damped"]
        self.gradient_evaluations = run["gradient_evaluations"]
        self.function_evaluations = run["function_evaluations"]
        self.batch_sizes, self.step_sizes = list(run["batch_sizes"]), list(run["step_sizes"])
        self._sample = None if run["sample"] is None else run["sample"].clone()
        previous = run["previous"]
        self._previous = None if previous is None else tuple(t.clone() for t in previous)

    @property
    def _params(self) -> list[Tensor]:
        return self.param_groups[0]["params"]

    def _value(self, x: Tensor, sample: Tensor) -> float:
        """F_S(x), counted."""
        vector_to_parameters(x, self._params)
        with torch.no_grad():
            loss = self.loss_fn(self.model(self.inputs[sample]), self.targets[sample])
        self.function_evaluations += sample.numel()
        return float(loss) + 0.5 * self.weight_decay * float(x @ x)

    def step(self, closure: Callable[[], Any] | None = None) -> float:  # type: ignore[override]
        if closure is not None:
            raise TypeError(
                "ProgressiveBatchLBFGS draws its own samples from the data it was given; "
                "step() takes no closure"
            )
        x = parameters_to_vector(self._params).detach()
        first = self._sample is None
        sample = self.sampler.next(self.controller.size) if first else self._sample
        value = self._value(x, sample)
        if not math.isfinite(value):
            vector_to_parameters(x, self._params)
            raise NonFiniteGradientError(f"the loss on the sample is {value}: NaN or Inf")
        if first and self._value(x, sample) != value:
            raise InputError(
                "the loss is not deterministic on a fixed sample (dropout, or batch norm in "
                "training mode?); PBQN's line search and curvature pairs need it to be"
            )
        per_sample = per_sample_gradients(
            self.model, self.loss_fn, self.inputs[sample], self.targets[sample], self.per_sample
        )
        self.gradient_evaluations += sample.numel()
        per_sample = per_sample.to(x.dtype).add_(x, alpha=self.weight_decay)
        if not bool(torch.isfinite(per_sample).all()):
            vector_to_parameters(x, self._params)
            raise NonFiniteGradientError("a per-sample gradient is NaN or Inf")
        g = per_sample.mean(0)
        if self._previous is not None:  # the overlap O_{k-1} leads this sample
            x_before, overlap_mean = self._previous
            overlap = per_sample[: self.sampler.kept.numel()].mean(0)
            self.memory.add(x - x_before, overlap - overlap_mean)
        direction = -self.memory.apply(g)
        slope = float(g @ direction)
        if not slope < 0:  # H lost positive definiteness numerically: restart from -g
            self.memory.clear()
            direction, slope = -g, -float(g @ g)
        stats = self.controller.update(per_sample, -direction)
        self.last_statistics = stats
        result = None
        if slope < 0:
            result = armijo_backtracking(
                lambda alpha: self._value(x + alpha * direction, sample),
                value,
                slope,
                initial=stats.initial_step(),
                c1=self.c1,
                shrink=self.shrink,
                max_trials=self.max_backtracks,
            )
        accepted = result is not None and result.accepted
        x_next = x + result.step * direction if accepted else x
        vector_to_parameters(x_next, self._params)
        self.batch_sizes.append(sample.numel())
        self.step_sizes.append(result.step if accepted else 0.0)
        self._sample = self.sampler.next(self.controller.size)
        kept_rows = self.sampler.kept_positions
        if accepted and kept_rows.numel():
            self._previous = (x, per_sample[kept_rows].mean(0))
        else:
            self.memory.clear()
            self._previous = None
        return value
