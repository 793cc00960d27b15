"""Plumbing shared by gradkit's optimizers: hyper-parameter checks (rules of
:mod:`gradkit.checks`), gradient gathering, finiteness.

Every gradkit optimizer validates each param group when it is added (so a bad value in a group
passed to the constructor or to ``add_param_group`` fails the same way), gathers the parameters
that have gradients across *all* groups, and checks that those gradients are finite before it
changes anything: a NaN/Inf gradient raises :class:`NonFiniteGradientError` and leaves every
parameter and every state tensor exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.optim.optimizer import Optimizer

from gradkit._private import default_foreach
from gradkit.checks import FLAG, InputError, Rule


class NonFiniteGradientError(FloatingPointError):
    """A gradient handed to ``step()`` contains NaN or Inf; nothing was updated."""


@dataclass
class GradientBatch:
    """The parameters of one param group that have gradients, with their gradients and states."""

    group: dict[str, Any]
    group_index: int
    params: list[Tensor]
    grads: list[Tensor]
    states: list[dict[str, Any]]  # filled once the gradients passed the finiteness check


class GradkitOptimizer(Optimizer):
    """Base class: validated param groups and an all-or-nothing ``step``.

    Subclasses set ``_checks`` (hyper-parameter name -> :class:`gradkit.checks.Rule`), implement
    ``_init_state(p, state, group)`` for a parameter seen for the first time (the base creates
    the step counter), and
    ``_update(batch, foreach)`` for one param group.
    """

    _checks: ClassVar[dict[str, Rule]] = {}
    _float64_state: ClassVar[frozenset[str]] = frozenset()
    """State entries kept in float64 whatever the parameter dtype."""
    _saved_dtype_prefixes: ClassVar[tuple[str, ...]] = ()
    """Prefixes of state entries whose dtype is chosen by the optimizer, not the parameter's
    (e.g. float32 statistics of a bfloat16 parameter): loaded in their saved dtype."""

    def __init__(self, params, defaults: dict[str, Any]) -> None:
        defaults = {"maximize": False, "foreach": None, "check_finite": True, **defaults}
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for name, check in self._checks.items():
            check(name, group[name])
        FLAG("maximize", group["maximize"])
        FLAG("check_finite", group["check_finite"])
        FLAG.or_none()("foreach", group["foreach"])
        for p in group["params"]:
            if torch.is_complex(p):
                raise InputError(f"{type(self).__name__} does not support complex parameters")

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """torch's ``load_state_dict``, except that float64 entries and integer counters keep
        their dtype, as do entries named in ``_saved_dtype_prefixes`` (torch casts every
        floating entry but ``step`` to the parameter's dtype)."""
        super().load_state_dict(state_dict)
        params = [p for group in self.param_groups for p in group["params"]]
        ids = [i for group in state_dict["param_groups"] for i in group["params"]]
        for p, index in zip(params, ids, strict=True):
            for key, value in state_dict["state"].get(index, {}).items():
                exact = (
                    key in self._float64_state
                    or key.startswith(self._saved_dtype_prefixes)
                    or not value.is_floating_point()
                )
                if isinstance(value, Tensor) and key != "step" and exact:
                    self.state[p][key] = value.detach().clone().to(p.device)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("check_finite", True)

    def _workspace(self, like: Tensor) -> Tensor:
        """A scratch tensor shaped like ``like``, reused across tensors and steps.

        One flat buffer per (device, dtype), as large as the largest tensor seen; it is not
        optimizer state (not saved, not loaded). Reusing it keeps large temporaries from being
        allocated, page-faulted and freed on every step.
        """
        buffers = self.__dict__.setdefault("_workspaces", {})
        key = (like.device, like.dtype)
        flat = buffers.get(key)
        if flat is None or flat.numel() < like.numel():
            flat = buffers[key] = torch.empty(like.numel(), dtype=like.dtype, device=like.device)
        return flat[: like.numel()].view(like.shape)

    def _init_state(self, p: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        """A parameter's state at its first step: the step counter (subclasses add theirs)."""
        state["step"] = new_step_tensor()

    def _update(self, batch: GradientBatch, foreach: bool) -> None:
        raise NotImplementedError

    def _gather(self) -> list[GradientBatch]:
        batches = []
        for group_index, group in enumerate(self.param_groups):
            params = [p for p in group["params"] if p.grad is not None]
            if any(p.grad.is_sparse for p in params):
                raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
            grads = [-p.grad if group["maximize"] else p.grad for p in params]
            if params:
                batches.append(GradientBatch(group, group_index, params, grads, []))
        return batches

    def _states(self, batch: GradientBatch) -> list[dict[str, Any]]:
        """The batch's per-parameter states, created on first use."""
        states = []
        for p in batch.params:
            state = self.state[p]
            if len(state) == 0:
                self._init_state(p, state, batch.group)
            states.append(state)
        return states

    def _check_finite(self, batches: list[GradientBatch]) -> None:
        for batch in batches:
            if not batch.group["check_finite"]:
                continue
            # A finite sum proves every entry finite (NaN and Inf propagate through it); a sum is
            # one vectorised read. Only when it is not finite (or overflowed) look closer.
            sums = torch.stack([g.sum() for g in batch.grads])
            if bool(torch.isfinite(sums).all()):
                continue
            finite = [bool(torch.isfinite(g).all()) for g in batch.grads]
            if all(finite):
                continue
            bad = finite.index(False)
            shape = tuple(batch.params[bad].shape)
            raise NonFiniteGradientError(
                f"{type(self).__name__}.step(): the gradient of parameter {bad} (shape {shape}) "
                f"in param group {batch.group_index} contains NaN or Inf; "
                "no parameter or optimizer state was changed. Skip this step (as "
                "torch.amp.GradScaler does) or construct the optimizer with check_finite=False."
            )

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Perform one update; ``closure`` re-evaluates the model and returns the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        batches = self._gather()
        self._check_finite(batches)  # before any state is created or changed
        for batch in batches:
            batch.states = self._states(batch)
            foreach = batch.group["foreach"]
            if foreach is None:
                foreach = default_foreach(batch.params)
            for state in batch.states:
                state["step"] += 1
            self._update(batch, foreach)
        return loss


def tensors_by_step(batch: GradientBatch) -> dict[int, list[int]]:
    """Indices of the batch's tensors grouped by their step number t (1 at the first update).

    Tensors of one group usually share t; they differ when a parameter got no gradient in some
    steps. Bias corrections depend on t, so the fused (foreach) path runs once per distinct t.
    """
    by_step: dict[int, list[int]] = {}
    for i, state in enumerate(batch.states):
        by_step.setdefault(int(state["step"].item()), []).append(i)
    return by_step


def new_step_tensor() -> Tensor:
    """A step counter as torch's optimizers keep it (a CPU scalar tensor, so state_dict works)."""
    return torch.tensor(0.0, dtype=torch.float32)
