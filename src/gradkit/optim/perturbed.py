"""Perturbed gradient descent (Jin, Ge, Netrapalli, Kakade & Jordan, ICML 2017, arXiv
1703.00887): gradient descent that adds a uniform perturbation from a small ball when the
gradient is small, so that it leaves strict saddle points."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor

from gradkit.checks import NONNEGATIVE, POSITIVE, Rule, integer
from gradkit.optim._base import GradientBatch, GradkitOptimizer


def paper_constants(
    ell: float, rho: float, epsilon: float, delta_f: float, dimension: int, c: float = 1.0,
    delta: float = 0.1,
) -> dict[str, float]:  # fmt: skip
    """The paper's Algorithm 2 settings from the gradient Lipschitz constant ``ell``, the Hessian
    Lipschitz constant ``rho``, the target ``epsilon``, ``delta_f`` >= f(x0) - f*, the dimension,
    the constant ``c`` and the failure probability ``delta``:

        chi = 3 max(log(d ell delta_f / (c eps^2 delta)), 4),  lr = c / ell,
        radius = sqrt(c) eps / (chi^2 ell),  threshold = sqrt(c) eps / chi^2,
        interval = chi ell / (c^2 sqrt(rho eps)),  f_threshold = c sqrt(eps^3 / rho) / chi^3.

    ``f_threshold`` is the optional stopping test, not part of :class:`PerturbedGD`. These are
    worst-case constants (tiny radii, long intervals); experiments set the four directly."""
    for name, value in (("ell", ell), ("rho", rho), ("epsilon", epsilon), ("delta_f", delta_f),
                        ("c", c), ("delta", delta)):  # fmt: skip
        POSITIVE(name, value)
    integer(1)("dimension", dimension)
    chi = 3 * max(math.log(dimension * ell * delta_f / (c * epsilon**2 * delta)), 4.0)
    return {
        "lr": c / ell,
        "radius": math.sqrt(c) * epsilon / (chi**2 * ell),
        "threshold": math.sqrt(c) * epsilon / chi**2,
        "interval": math.ceil(chi * ell / (c**2 * math.sqrt(rho * epsilon))),
        "f_threshold": c * math.sqrt(epsilon**3 / rho) / chi**3,
    }


class PerturbedGD(GradkitOptimizer):
    r"""Perturbed gradient descent.

    At step t of a param group, with g the concatenated gradient of the group's parameters:

    - if :math:`\|g\| \le` ``threshold`` and at least ``interval`` steps have passed since the
      last perturbation (or there was none), the step is a perturbation only:
      :math:`x \leftarrow x + \xi`, :math:`\xi` uniform in the ball of radius ``radius`` in the
      space of all the group's parameters flattened together
      (:math:`\xi = r\,U^{1/D} z/\|z\|`, z Gaussian, U uniform on [0, 1], D the number of
      entries); the next step's gradient is then taken at the perturbed point, as in the paper;
    - otherwise :math:`x \leftarrow x - \mathrm{lr}\,g`.

    With one param group (the usual case) the trigger and the ball are over all parameters, as
    in the paper; with several, each group has its own. The perturbations are drawn from a
    generator seeded by ``seed`` and the perturbation count, so a run resumed from
    ``state_dict`` continues exactly. :func:`paper_constants` gives the theory's settings.

    Args:
        params: parameters or param groups.
        lr: step size (the paper's eta = c / ell).
        radius: perturbation radius r > 0.
        threshold: gradient-norm trigger g_thres >= 0.
        interval: minimum number of steps between perturbations t_thres >= 1.
        weight_decay: l2 coefficient lambda >= 0, added to the gradient (g + lambda x) before
            the trigger and the step, as in torch.optim.SGD.
        seed: seed of the perturbations.
        maximize, foreach, check_finite: as for every gradkit optimizer.
    """

    _checks: ClassVar[dict[str, Rule]] = {
        "lr": NONNEGATIVE,
        "radius": POSITIVE,
        "threshold": NONNEGATIVE,
        "interval": integer(1),
        "seed": integer(0),
        "weight_decay": NONNEGATIVE,
    }

    def __init__(
        self,
        params,
        lr: float,
        radius: float = 1e-3,
        threshold: float = 1e-3,
        interval: int = 10,
        weight_decay: float = 0.0,
        *,
        seed: int = 0,
        maximize: bool = False,
        foreach: bool | None = None,
        check_finite: bool = True,
    ) -> None:
        defaults = {
            "lr": lr,
            "radius": radius,
            "threshold": threshold,
            "interval": interval,
            "seed": seed,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "foreach": foreach,
            "check_finite": check_finite,
        }
        super().__init__(params, defaults)

    def _init_state(self, p: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        super()._init_state(p, state, group)
        state["perturbed_at"] = torch.tensor(0, dtype=torch.int64)  # step of the last one
        state["perturbations"] = torch.tensor(0, dtype=torch.int64)

    def _update(self, batch: GradientBatch, foreach: bool) -> None:
        group, params, grads = batch.group, batch.params, batch.grads
        if group["weight_decay"] != 0:
            grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
        first = batch.states[0]
        step = float(first["step"])
        norms = torch._foreach_norm(grads) if grads else []
        grad_norm = float(torch.linalg.vector_norm(torch.stack(norms))) if norms else 0.0
        never = int(first["perturbations"]) == 0
        waited = never or step - int(first["perturbed_at"]) > group["interval"]
        if grad_norm <= group["threshold"] and waited:
            self._perturb(batch, int(first["perturbations"]))
            return
        if foreach:
            torch._foreach_add_(params, grads, alpha=-group["lr"])
        else:
            for p, g in zip(params, grads, strict=True):
                p.add_(g, alpha=-group["lr"])

    def _perturb(self, batch: GradientBatch, count: int) -> None:
        """x += r U^{1/D} z / ||z|| over the group's parameters flattened together."""
        group, params = batch.group, batch.params
        device = params[0].device
        generator = torch.Generator(device=device).manual_seed(group["seed"] * 1_000_003 + count)
        z = [torch.randn(p.shape, generator=generator, device=device, dtype=torch.float64)
             for p in params]  # fmt: skip
        entries = sum(p.numel() for p in params)
        u = float(torch.rand((), generator=generator, device=device, dtype=torch.float64))
        norm = float(torch.linalg.vector_norm(torch.stack([v.norm() for v in z])))
        scale = group["radius"] * u ** (1.0 / max(entries, 1)) / norm if norm > 0 else 0.0
        for p, v in zip(params, z, strict=True):
            p.add_(v.mul_(scale).to(p.device, p.dtype))
        for state in batch.states:
            state["perturbed_at"].fill_(int(batch.states[0]["step"]))
            state["perturbations"] += 1
