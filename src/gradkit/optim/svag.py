"""Variance adaptation: SVAG and M-SVAG.

Balles & Hennig, "Dissecting Adam: The Sign, Magnitude and Variance of Stochastic Gradients",
ICML 2018 (arXiv 1705.07774); authors' code lballes/msvag (TensorFlow).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from gradkit.checks import FLAG, NONNEGATIVE, UNIT_INTERVAL, Rule
from gradkit.optim._base import GradientBatch, GradkitOptimizer, tensors_by_step

RHO_CAP = 0.999
"""Upper bound on rho(beta, t), the authors' value. rho(beta, 1) = 1 and it falls fast, so the
cap binds at the first step only, where it keeps 1/(1 - rho) finite."""


TINY = torch.finfo(torch.float32).tiny
"""Added to the squared mean so it is never 0; representable in every moment dtype."""


def rho(beta: float, t: int) -> float:
    r""":math:`\rho(\beta, t) = \frac{(1-\beta)(1+\beta^t)}{(1+\beta)(1-\beta^t)}`, capped at
    :data:`RHO_CAP`: the variance of the bias-corrected EMA :math:`m_t` of :math:`t` i.i.d.
    gradients, as a fraction of one gradient's variance."""
    return min((1 - beta) * (1 + beta**t) / ((1 + beta) * (1 - beta**t)), RHO_CAP)


_DOC_COMMON = r"""
    Both moments use one coefficient :math:`\beta` and are bias-corrected (:math:`t = 1` at the
    first update):

    .. math::
        \tilde m_t = \beta\tilde m_{t-1} + (1-\beta) g_t, \qquad
        \tilde v_t = \beta\tilde v_{t-1} + (1-\beta) g_t^2, \qquad
        m_t = \frac{\tilde m_t}{1-\beta^t}, \qquad v_t = \frac{\tilde v_t}{1-\beta^t}

        \rho_t = \min\!\Bigl(\frac{(1-\beta)(1+\beta^t)}{(1+\beta)(1-\beta^t)},\ 0.999\Bigr),
        \qquad
        s_t = \frac{\max(v_t - m_t^2,\ 0)}{1-\rho_t}

    :math:`s_t` is the unbiased per-coordinate estimate of the gradient variance. The factor
    :math:`\gamma_t` below lies in :math:`[0, 1]` (the clip of the authors' code is implied by
    :math:`s_t \ge 0`), and it is 0 where :math:`m_t = v_t = 0`, so a coordinate that never had a
    gradient stays put and no NaN can appear. Weight decay is decoupled, as in chainer's port:
    :math:`\theta_t = \theta_{t-1} - \mathrm{lr}\,(\gamma_t \odot d_t + \lambda\theta_{t-1})`.

    The moment buffers are kept in at least float32, also for bfloat16/float16 parameters (the
    variance estimate is a small difference of large numbers). Non-finite gradients raise
    :class:`~gradkit.optim.NonFiniteGradientError` before anything changes.

    Args:
        params: parameters or param groups.
        lr: step size :math:`\mathrm{lr} \ge 0` (no default in the authors' code; tune it).
        beta: :math:`\beta \in [0, 1)` for both moments (0.9 in the paper).
        weight_decay: decoupled decay :math:`\lambda \ge 0`.
        maximize: ascend instead of descend (negates the gradient before the moments).
        foreach: use the multi-tensor ``torch._foreach_*`` path (default: torch's choice, i.e.
            on CUDA). Both paths give identical results.
        check_finite: raise on NaN/Inf gradients (one extra read of the gradients).
"""


class _VarianceAdapted(GradkitOptimizer):
    """Shared moments and update of SVAG and M-SVAG; ``_momentum`` selects the direction."""

    _momentum: bool

    _checks: ClassVar[dict[str, Rule]] = {
        "lr": NONNEGATIVE,
        "beta": UNIT_INTERVAL,
        "weight_decay": NONNEGATIVE,
        "maximize": FLAG,
    }

    def __init__(
        self,
        params,
        lr: float,
        beta: float = 0.9,
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        check_finite: bool = True,
    ) -> None:
        defaults = {
            "lr": lr,
            "beta": beta,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "foreach": foreach,
            "check_finite": check_finite,
        }
        super().__init__(params, defaults)

    def _init_state(self, p: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        dtype = torch.promote_types(p.dtype, torch.float32)
        super()._init_state(p, state, group)
        state["exp_avg"] = torch.zeros_like(p, dtype=dtype, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(p, dtype=dtype, memory_format=torch.preserve_format)

    def _update(self, batch: GradientBatch, foreach: bool) -> None:
        group = batch.group
        lr, beta, decay = group["lr"], group["beta"], group["weight_decay"]
        for t, indices in tensors_by_step(batch).items():
            params = [batch.params[i] for i in indices]
            exp_avgs = [batch.states[i]["exp_avg"] for i in indices]
            exp_avg_sqs = [batch.states[i]["exp_avg_sq"] for i in indices]
            grads = [batch.grads[i].to(exp_avgs[k].dtype) for k, i in enumerate(indices)]
            # With q = b m~^2 / c + tiny (b = 1 - beta^t the bias correction, m = m~ / b), the
            # ratio r = max(v~ / q + 1 - c, 1) equals (m^2 + c max(v - m^2, 0)) / m^2 = 1 / gamma,
            # so the step is d / r: one temporary, no 0/0 (r is 1 or +inf where m~ = 0).
            correction = 1 - beta**t
            r = rho(beta, t)
            if self._momentum:  # M-SVAG: gamma = m^2 / (m^2 + rho s),  d = m
                c, step_scale = r / (1 - r), lr / correction
            else:  # SVAG: gamma = m^2 / (m^2 + s),  d = g
                c, step_scale = 1 / (1 - r), lr
            tiny = torch.tensor(TINY, dtype=torch.float64)  # a 0-dim tensor takes m's dtype
            directions = exp_avgs if self._momentum else grads
            if foreach:
                torch._foreach_lerp_(exp_avgs, grads, 1 - beta)
                torch._foreach_mul_(exp_avg_sqs, beta)
                torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta)
                q = torch._foreach_addcmul(
                    [tiny] * len(exp_avgs), exp_avgs, exp_avgs, value=1 / (correction * c)
                )
                ratios = torch._foreach_div(exp_avg_sqs, q)
                del q
                torch._foreach_add_(ratios, 1 - c)
                torch._foreach_clamp_min_(ratios, 1.0)
                if decay != 0:
                    torch._foreach_mul_(params, 1 - lr * decay)
                torch._foreach_addcdiv_(params, directions, ratios, value=-step_scale)
                continue
            for p, g, m, v, d in zip(params, grads, exp_avgs, exp_avg_sqs, directions, strict=True):
                m.lerp_(g, 1 - beta)
                v.mul_(beta).addcmul_(g, g, value=1 - beta)
                ratio = torch.addcmul(
                    tiny, m, m, value=1 / (correction * c), out=self._workspace(m)
                )
                torch.div(v, ratio, out=ratio).add_(1 - c).clamp_min_(1.0)
                if decay != 0:
                    p.mul_(1 - lr * decay)
                p.addcdiv_(d, ratio, value=-step_scale)


class MSVAG(_VarianceAdapted):
    __doc__ = (
        r"""M-SVAG: momentum SGD with variance-adapted, per-coordinate step factors.

    .. math::
        \gamma_t = \frac{m_t^2}{m_t^2 + \rho_t s_t}, \qquad
        \theta_t = \theta_{t-1} - \mathrm{lr}\,(\gamma_t \odot m_t + \lambda\theta_{t-1})

    :math:`\rho_t s_t` estimates the variance of :math:`m_t` itself, so :math:`\gamma_t`
    shrinks the step where the momentum is dominated by noise. This is the authors' update
    (lballes/msvag); note that the popular ``pytorch-optimizer`` port is wrong (it divides by
    :math:`\beta^t` instead of :math:`1-\beta^t` and uses :math:`1-\beta` for :math:`1-\beta^2`
    in :math:`\rho`).
"""
        + _DOC_COMMON
    )
    _momentum = True


class SVAG(_VarianceAdapted):
    __doc__ = (
        r"""SVAG: SGD with variance-adapted, per-coordinate step factors.

    .. math::
        \gamma_t = \frac{m_t^2}{m_t^2 + s_t}, \qquad
        \theta_t = \theta_{t-1} - \mathrm{lr}\,(\gamma_t \odot g_t + \lambda\theta_{t-1})

    :math:`\gamma_t` estimates :math:`E[g]^2 / E[g^2] = 1/(1+\eta^2)`, the factor minimising
    :math:`E\|\gamma \odot g - \nabla L\|^2`, where :math:`\eta^2` is the per-coordinate
    noise-to-signal ratio. The direction is the current gradient, not the momentum.
"""
        + _DOC_COMMON
    )
    _momentum = False
