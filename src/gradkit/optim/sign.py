"""Sign descent: SignSGD (SSD) and Signum (M-SSD).

Bernstein, Wang, Azizzadenesheli, Anandkumar, "signSGD: Compressed Optimisation for Non-Convex
Problems", ICML 2018 (arXiv 1802.04434); Balles & Hennig, "Dissecting Adam", ICML 2018
(arXiv 1705.07774), where the same two methods are called SSD and M-SSD.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
from torch import Tensor

from gradkit.checks import FLAG, NONNEGATIVE, UNIT_INTERVAL, Rule, one_of
from gradkit.optim._base import GradientBatch, GradkitOptimizer


def sign_with_zero(t: Tensor, zero_sign: int, out: Tensor | None = None) -> Tensor:
    """sign(t) with sign(0) = ``zero_sign`` (0: torch's sign, +1: a 1-bit code's convention)."""
    out = torch.empty_like(t) if out is None else out
    if zero_sign == 0:
        return torch.sign(t, out=out)
    return out.copy_(torch.ge(t, 0)).mul_(2).sub_(1)


class Signum(GradkitOptimizer):
    r"""Signum (M-SSD): steps of fixed size along the sign of a dampened momentum.

    .. math::
        m_t = \beta m_{t-1} + (1-\beta) g_t, \qquad m_0 = 0

        \theta_t = \theta_{t-1} - \mathrm{lr}\,\bigl(\operatorname{sign}(m_t)
                   + \lambda\,\theta_{t-1}\bigr)

    With ``momentum=0`` this is signSGD, :math:`\theta_t = \theta_{t-1} - \mathrm{lr}\,
    \operatorname{sign}(g_t)`. A zero-initialised dampened EMA and the heavy-ball sum
    :math:`u_t = \beta u_{t-1} + g_t` differ only by the factor :math:`1-\beta`, so their signs
    agree and no bias correction is needed.

    **Weight decay** is decoupled and applied after the sign, as in the authors' majority-vote
    code: the tuned ``weight_decay`` values of the papers belong to this placement. Decay inside
    the sign would be a different algorithm.

    **sign(0)**: by default :math:`\operatorname{sign}(0) = 0`, torch's convention, so a
    coordinate whose gradient (or momentum) is exactly zero does not move. ``zero_sign=1`` maps
    0 to +1, the convention of a 1-bit code.

    **Non-finite gradients** raise :class:`~gradkit.optim.NonFiniteGradientError` before any
    parameter or buffer changes (pass ``check_finite=False`` to skip that check, e.g. when the
    caller already guarantees finite gradients).

    Every coordinate moves by ``lr`` each step, so useful learning rates resemble Adam's
    (1e-4 to 1e-2), not SGD's.

    Args:
        params: parameters or param groups.
        lr: step size :math:`\mathrm{lr} \ge 0`.
        momentum: EMA coefficient :math:`\beta \in [0, 1)` (0.9 in the paper).
        weight_decay: decoupled decay :math:`\lambda \ge 0`.
        zero_sign: the value of sign(0), 0 or 1.
        maximize: ascend instead of descend (negates the gradient before the EMA).
        foreach: use the multi-tensor ``torch._foreach_*`` path (default: torch's choice, i.e.
            on CUDA). Both paths give identical results.
        check_finite: raise on NaN/Inf gradients (one extra read of the gradients).
    """

    _checks: ClassVar[dict[str, Rule]] = {
        "lr": NONNEGATIVE,
        "momentum": UNIT_INTERVAL,
        "weight_decay": NONNEGATIVE,
        "zero_sign": one_of((0, 1)),
        "maximize": FLAG,
    }

    def __init__(
        self,
        params,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        *,
        zero_sign: int = 0,
        maximize: bool = False,
        foreach: bool | None = None,
        check_finite: bool = True,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "zero_sign": zero_sign,
            "maximize": maximize,
            "foreach": foreach,
            "check_finite": check_finite,
        }
        super().__init__(params, defaults)

    def _momentum_buffers(self, batch: GradientBatch) -> list[Tensor]:
        for p, state in zip(batch.params, batch.states, strict=True):
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return [state["momentum_buffer"] for state in batch.states]

    def _update(self, batch: GradientBatch, foreach: bool) -> None:
        group = batch.group
        signum(
            batch.params,
            batch.grads,
            self._momentum_buffers(batch) if group["momentum"] != 0 else [],
            lr=group["lr"],
            momentum=group["momentum"],
            weight_decay=group["weight_decay"],
            zero_sign=group["zero_sign"],
            foreach=foreach,
            workspace=self._workspace,
        )


def signum_momentum_(
    momenta: list[Tensor], grads: list[Tensor], beta: float, foreach: bool = False
) -> list[Tensor]:
    r"""Signum's dampened momentum, in place: :math:`m \leftarrow \beta m + (1-\beta) g`
    (as torch's ``lerp``, :math:`m + (1-\beta)(g - m)`), for every (m, g); returns ``momenta``.
    The one copy of this rule: the optimizer, the simulator's majority vote and the DDP vote
    hook all call it."""
    if foreach:
        torch._foreach_lerp_(momenta, grads, 1 - beta)
    else:
        for m, g in zip(momenta, grads, strict=True):
            m.lerp_(g, 1 - beta)
    return momenta


def signum(
    params: list[Tensor],
    grads: list[Tensor],
    momenta: list[Tensor],
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
    zero_sign: int,
    foreach: bool,
    workspace: Callable[[Tensor], Tensor] | None = None,
) -> None:
    r"""The functional core of :class:`Signum`, in torch's style: one step on tensors and
    their state. With ``momentum`` :math:`\beta > 0`, :math:`m \leftarrow \beta m +
    (1-\beta) g` (``momenta``, one per parameter); then :math:`\theta \leftarrow \theta
    (1 - \mathrm{lr}\,\lambda) - \mathrm{lr}\,\operatorname{sign}(m)` (``g`` for
    :math:`\beta = 0`, when ``momenta`` is unused). ``workspace(like)`` lends a scratch
    tensor for the single-tensor path's signs."""
    directions = signum_momentum_(momenta, grads, momentum, foreach) if momentum else grads
    step = _multi_tensor_sign_step if foreach else _single_tensor_sign_step
    step(params, directions, lr, weight_decay, zero_sign, workspace)


def _multi_tensor_sign_step(params, directions, lr, weight_decay, zero_sign, workspace) -> None:
    if zero_sign == 0:
        signs = torch._foreach_sign(directions)
    else:
        signs = [sign_with_zero(d, zero_sign) for d in directions]
    if weight_decay != 0:
        torch._foreach_mul_(params, 1 - lr * weight_decay)
    torch._foreach_add_(params, signs, alpha=-lr)


def _single_tensor_sign_step(params, directions, lr, weight_decay, zero_sign, workspace) -> None:
    for p, d in zip(params, directions, strict=True):
        sign = sign_with_zero(d, zero_sign, out=None if workspace is None else workspace(p))
        if weight_decay != 0:
            p.mul_(1 - lr * weight_decay)
        p.add_(sign, alpha=-lr)


class SignSGD(Signum):
    r"""signSGD (SSD): :math:`\theta_t = \theta_{t-1} - \mathrm{lr}\,(\operatorname{sign}(g_t)
    + \lambda\,\theta_{t-1})`.

    :class:`Signum` with ``momentum=0`` (one implementation under both names); see
    :class:`Signum` for the sign(0) convention, the decoupled weight decay and the options.
    """

    def __init__(
        self,
        params,
        lr: float,
        weight_decay: float = 0.0,
        *,
        zero_sign: int = 0,
        maximize: bool = False,
        foreach: bool | None = None,
        check_finite: bool = True,
    ) -> None:
        super().__init__(
            params,
            lr,
            momentum=0.0,
            weight_decay=weight_decay,
            zero_sign=zero_sign,
            maximize=maximize,
            foreach=foreach,
            check_finite=check_finite,
        )
