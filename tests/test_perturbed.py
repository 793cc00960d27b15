"""PerturbedGD against a plain float64 implementation of Jin et al.'s rule on a strict saddle."""

from __future__ import annotations

import math

import pytest
import torch

from gradkit.optim import PerturbedGD, paper_constants


def saddle(x: torch.Tensor) -> torch.Tensor:
    """f(x) = 1/2 sum lambda_i x_i^2 + x_1^4 / 4 with lambda_1 = -1, lambda_i = 1 otherwise: a
    strict saddle at 0, minima at x_1 = +-1 (f = -1/4)."""
    lam = torch.ones_like(x)
    lam[0] = -1
    return 0.5 * (lam * x * x).sum() + 0.25 * x[0] ** 4


def reference_run(x0, lr, radius, threshold, interval, seed, steps):
    """The rule written out: perturb (and only perturb) when ||grad|| <= threshold and more than
    ``interval`` steps passed since the last perturbation; else a gradient step. The ball sample
    is r U^(1/D) z/||z|| with z, U drawn as the optimizer documents (generator seeded by
    seed * 1_000_003 + count)."""
    x = x0.clone().double()
    last, count = None, 0
    for t in range(1, steps + 1):
        xg = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(saddle(xg), xg)
        if g.norm() <= threshold and (last is None or t - last > interval):
            gen = torch.Generator().manual_seed(seed * 1_000_003 + count)
            z = torch.randn(x.shape, generator=gen, dtype=torch.float64)
            u = float(torch.rand((), generator=gen, dtype=torch.float64))
            x = x + radius * u ** (1 / x.numel()) * z / z.norm()
            last, count = t, count + 1
        else:
            x = x - lr * g
    return x


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_perturbed_gd_matches_the_reference_step_by_step(dtype):
    x0 = torch.zeros(20, dtype=torch.float64)
    x0[1:] = torch.linspace(-0.01, 0.01, 19)  # near the saddle: the trigger fires
    settings = {"lr": 0.2, "radius": 1e-3, "threshold": 0.05, "interval": 5, "seed": 7}
    x = torch.nn.Parameter(x0.to(dtype).clone())
    opt = PerturbedGD([x], **settings)
    for steps in range(1, 61):
        opt.zero_grad()
        saddle(x).backward()
        opt.step()
        expected = reference_run(x0, steps=steps, **settings)
        tolerance = 1e-12 if dtype == torch.float64 else 2e-6
        torch.testing.assert_close(x.detach().double(), expected, atol=tolerance, rtol=tolerance)
    assert int(opt.state[x]["perturbations"]) >= 1


def test_gradient_descent_stays_at_the_saddle_and_perturbed_gd_escapes():
    for escapes in (False, True):
        x = torch.nn.Parameter(torch.zeros(50, dtype=torch.float64))
        opt = (
            PerturbedGD([x], lr=0.5, radius=1e-3, threshold=1e-3, interval=10)
            if escapes
            else torch.optim.SGD([x], lr=0.5)
        )
        for _ in range(200):
            opt.zero_grad()
            saddle(x).backward()
            opt.step()
        assert (float(saddle(x.detach())) < -0.2) == escapes


def test_the_perturbation_is_uniform_in_the_ball():
    dimension, radius, draws = 5, 0.1, 2000
    norms, total = [], torch.zeros(dimension, dtype=torch.float64)
    for seed in range(draws):
        x = torch.nn.Parameter(torch.zeros(dimension, dtype=torch.float64))
        opt = PerturbedGD([x], lr=0.1, radius=radius, threshold=1.0, seed=seed)
        x.grad = torch.zeros_like(x)
        opt.step()
        norms.append(float(x.detach().norm()) / radius)
        total += x.detach() / radius
    # ||xi|| / r = U^(1/D): (||xi|| / r)^D is uniform on [0, 1], mean 1/2, sd 1/sqrt(12)
    powered = torch.tensor(norms) ** dimension
    assert max(norms) <= 1 and abs(float(powered.mean()) - 0.5) < 4 / math.sqrt(12 * draws)
    # isotropic: the mean of xi / r is 0 (each coordinate's sd is below 1/sqrt(D))
    assert float((total / draws).abs().max()) < 4 / math.sqrt(dimension * draws)


def test_paper_constants_follow_algorithm_two():
    got = paper_constants(ell=2.0, rho=1.0, epsilon=0.01, delta_f=1.0, dimension=100, c=0.5)
    chi = 3 * max(math.log(100 * 2.0 * 1.0 / (0.5 * 1e-4 * 0.1)), 4)
    assert got["lr"] == 0.25
    assert got["radius"] == pytest.approx(math.sqrt(0.5) * 0.01 / (chi**2 * 2.0))
    assert got["threshold"] == pytest.approx(math.sqrt(0.5) * 0.01 / chi**2)
    assert got["interval"] == math.ceil(chi * 2.0 / (0.25 * math.sqrt(0.01)))
    assert got["f_threshold"] == pytest.approx(0.5 * math.sqrt(1e-6) / chi**3)
    with pytest.raises(ValueError, match="rho must be a finite number > 0"):
        paper_constants(ell=1.0, rho=0.0, epsilon=0.1, delta_f=1.0, dimension=3)
