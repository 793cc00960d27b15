"""Each optimizer against a plain float64 implementation of its paper's formula, step by step."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gradkit.optim import MSVAG, SVAG, SignSGD, Signum
from gradkit.optim.svag import rho

STEPS = 25
SIZE = 40


def gradient_stream(seed=0):
    """Random gradients with a few exact zeros and one coordinate that is always zero."""
    rng = np.random.default_rng(seed)
    for _ in range(STEPS):
        g = rng.normal(0.3, 1.0, SIZE) * rng.choice([1e-3, 1.0, 10.0], SIZE)
        g[rng.random(SIZE) < 0.1] = 0.0
        g[0] = 0.0
        yield g


def run_library(optimizer_cls, x0, seed=0, **kwargs):
    p = torch.nn.Parameter(torch.tensor(x0, dtype=torch.float64))
    opt = optimizer_cls([p], **kwargs)
    trajectory = []
    for g in gradient_stream(seed):
        p.grad = torch.tensor(g)
        opt.step()
        trajectory.append(p.detach().numpy().copy())
    return trajectory


def sign_reference(x0, lr, beta, decay):
    x, m = x0.copy(), np.zeros_like(x0)
    out = []
    for g in gradient_stream():
        m = beta * m + (1 - beta) * g
        x = x - lr * (np.sign(m) + decay * x)
        out.append(x.copy())
    return out


def svag_reference(x0, lr, beta, decay, momentum):
    """The authors' update (lballes/msvag), written out literally."""
    x, m_raw, v_raw = x0.copy(), np.zeros_like(x0), np.zeros_like(x0)
    out = []
    for t, g in enumerate(gradient_stream(), start=1):
        m_raw = beta * m_raw + (1 - beta) * g
        v_raw = beta * v_raw + (1 - beta) * g**2
        m = m_raw / (1 - beta**t)
        v = v_raw / (1 - beta**t)
        r = (1 - beta) ** 2 * (1 - beta ** (2 * t)) / ((1 - beta**t) ** 2 * (1 - beta**2))
        r = min(r, 0.999)
        s = np.maximum(v - m**2, 0.0) / (1 - r)
        den = m**2 + r * s if momentum else m**2 + s
        with np.errstate(invalid="ignore", divide="ignore"):
            factor = np.where(den > 0, m**2 / den, 0.0)
        factor = np.clip(factor, 0.0, 1.0)
        direction = m if momentum else g
        x = x - lr * (factor * direction + decay * x)
        out.append(x.copy())
    return out


X0 = np.linspace(-1.0, 1.0, SIZE)


# The variance estimate v - m^2 cancels: where v is close to m^2 it amplifies float64 rounding
# by v / (v - m^2), so the variance-adapted methods are compared at 1e-10 (the worst case seen
# is 1.1e-11), the sign methods at 1e-12. A wrong formula moves parameters by ~1e-1.
VARIANCE_RTOL = 1e-10


def assert_trajectories_close(ours, reference, rtol=1e-12, atol=1e-14):
    assert len(ours) == len(reference) >= 20
    for step, (a, b) in enumerate(zip(ours, reference, strict=True), start=1):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"step {step}")


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("decay", [0.0, 0.01])
def test_signsgd_matches_formula(foreach, decay):
    ours = run_library(SignSGD, X0, lr=0.01, weight_decay=decay, foreach=foreach)
    assert_trajectories_close(ours, sign_reference(X0, 0.01, 0.0, decay))


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("decay", [0.0, 0.01])
def test_signum_matches_formula(foreach, decay):
    ours = run_library(Signum, X0, lr=0.01, momentum=0.9, weight_decay=decay, foreach=foreach)
    assert_trajectories_close(ours, sign_reference(X0, 0.01, 0.9, decay))


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("decay", [0.0, 0.01])
@pytest.mark.parametrize("beta", [0.9, 0.5])
def test_msvag_matches_authors_update(foreach, decay, beta):
    ours = run_library(MSVAG, X0, lr=0.1, beta=beta, weight_decay=decay, foreach=foreach)
    reference = svag_reference(X0, 0.1, beta, decay, momentum=True)
    assert_trajectories_close(ours, reference, rtol=VARIANCE_RTOL)


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("decay", [0.0, 0.01])
@pytest.mark.parametrize("beta", [0.9, 0.5])
def test_svag_matches_authors_update(foreach, decay, beta):
    ours = run_library(SVAG, X0, lr=0.1, beta=beta, weight_decay=decay, foreach=foreach)
    reference = svag_reference(X0, 0.1, beta, decay, momentum=False)
    assert_trajectories_close(ours, reference, rtol=VARIANCE_RTOL)


def test_signum_keeps_its_momentum_between_steps():
    """The regression case of the reference doc: a re-zeroed buffer gives [-0.05, 0.05, 0.05]."""
    p = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    opt = Signum([p], lr=0.1, momentum=0.9)
    for g in ([1.0, -1.0, 1.0], [-0.5, 0.5, 0.5]):
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    buffer = opt.state[p]["momentum_buffer"]
    np.testing.assert_allclose(buffer.numpy(), [0.04, -0.04, 0.14], rtol=1e-12)


def test_sign_zero_convention():
    """sign(0) = 0 by default (the coordinate stays), +1 with zero_sign=1."""
    for zero_sign, expected in [(0, [0.0, -0.1, 0.1]), (1, [-0.1, -0.1, 0.1])]:
        p = torch.nn.Parameter(torch.zeros(3))
        opt = SignSGD([p], lr=0.1, zero_sign=zero_sign)
        p.grad = torch.tensor([0.0, 2.0, -3.0])
        opt.step()
        np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-6)


def test_rho_matches_both_closed_forms_and_its_limit():
    for beta in (0.5, 0.9, 0.99):
        for t in range(2, 200):
            long_form = (
                (1 - beta) ** 2 * (1 - beta ** (2 * t)) / ((1 - beta**t) ** 2 * (1 - beta**2))
            )
            assert rho(beta, t) == pytest.approx(long_form, rel=1e-12)
        assert rho(beta, 1) == 0.999
        assert rho(0.9, 400) == pytest.approx(0.1 / 1.9, rel=1e-12)


def test_msvag_moments_stay_float32_for_bfloat16_parameters():
    p = torch.nn.Parameter(torch.ones(8, dtype=torch.bfloat16))
    opt = MSVAG([p], lr=0.01)
    for _ in range(3):
        p.grad = torch.randn(8, dtype=torch.bfloat16)
        opt.step()
    assert opt.state[p]["exp_avg"].dtype == torch.float32
    assert opt.state[p]["exp_avg_sq"].dtype == torch.float32
    assert p.dtype == torch.bfloat16
    assert math.isfinite(p.float().sum().item())


@pytest.mark.parametrize("cls", [SVAG, MSVAG])
@pytest.mark.parametrize("foreach", [False, True])
def test_variance_adapted_mixed_dtypes_and_dead_coordinates_stay_finite(cls, foreach):
    params = [
        torch.nn.Parameter(torch.ones(4, dtype=torch.float64)),
        torch.nn.Parameter(torch.ones(4, dtype=torch.float32)),
    ]
    opt = cls(params, lr=0.1, foreach=foreach)
    for _ in range(3):
        for p in params:
            p.grad = torch.tensor([0.0, 1.0, -1.0, 0.0], dtype=p.dtype)
        opt.step()
    for p in params:
        assert torch.isfinite(p).all()
        assert p[0].item() == 1.0 and p[3].item() == 1.0  # never had a gradient: not moved
        assert p[1].item() < 1.0 < p[2].item()
