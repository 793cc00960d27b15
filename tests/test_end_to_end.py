"""The end-to-end rule against its formula (scipy's fractional matrix powers, the single-output
closed form) and against gradient descent on the deep linear network it describes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.linalg import fractional_matrix_power

from gradkit.optim import EndToEndGD, balanced_regressor, product_weight
from gradkit.optim.end_to_end import end_to_end_direction


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_the_direction_is_the_sum_of_fractional_powers(depth):
    rng = np.random.default_rng(depth)
    w, g = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    expected = sum(
        fractional_matrix_power(w @ w.T, (j - 1) / depth)
        @ g
        @ fractional_matrix_power(w.T @ w, (depth - j) / depth)
        for j in range(1, depth + 1)
    )
    got = end_to_end_direction(torch.from_numpy(w), torch.from_numpy(g), depth)
    np.testing.assert_allclose(got.numpy(), np.real(expected), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_a_single_output_follows_the_papers_closed_form(dtype):
    """W <- W - lr ||W||^(2 - 2/N) (g + (N - 1) <g, W> W / ||W||^2) for a 1 x d row W."""
    depth, lr = 3, 0.1
    w0 = torch.linspace(-1, 1, 7, dtype=torch.float64)
    g = torch.cos(torch.arange(7, dtype=torch.float64))
    w = torch.nn.Parameter(w0.to(dtype).clone())
    w.grad = g.to(dtype)
    EndToEndGD([w], lr=lr, depth=depth).step()
    norm = w0.norm()
    projection = (g @ w0) / norm**2 * w0
    expected = w0 - lr * norm ** (2 - 2 / depth) * (g + (depth - 1) * projection)
    tolerance = 1e-12 if dtype == torch.float64 else 1e-6
    torch.testing.assert_close(w.detach().double(), expected, rtol=tolerance, atol=tolerance)


def test_the_rule_leaves_zero_alone_for_depth_two_and_more():
    w = torch.nn.Parameter(torch.zeros(3, 2, dtype=torch.float64))
    w.grad = torch.ones(3, 2, dtype=torch.float64)
    EndToEndGD([w], lr=1.0, depth=2).step()
    assert not w.detach().any()


def l4_problem():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 5, generator=gen, dtype=torch.float64)
    y = x @ torch.randn(5, generator=gen, dtype=torch.float64)
    return x, y


def l4(prediction, y):
    return (prediction - y).pow(4).mean() / 4


def end_to_end_gap(lr: float, steps: int) -> float:
    """||W_deep - W_e2e|| / ||W_e2e|| after ``steps`` steps of GD on a balanced depth-3 regressor
    and of the end-to-end rule on its product, both at ``lr``."""
    x, y = l4_problem()
    w1 = 0.3 * torch.ones(5, dtype=torch.float64)
    net = balanced_regressor(w1, depth=3)
    deep = torch.optim.SGD(net.parameters(), lr=lr)
    w = torch.nn.Parameter(product_weight(net).clone())
    e2e = EndToEndGD([w], lr=lr, depth=3)
    for _ in range(steps):
        deep.zero_grad()
        l4(net(x).squeeze(-1), y).backward()
        deep.step()
        e2e.zero_grad()
        l4(x @ w[0], y).backward()
        e2e.step()
    return float((product_weight(net) - w.detach()).norm() / w.detach().norm())


def test_the_rule_tracks_gradient_descent_on_the_deep_net_to_first_order_in_the_step():
    coarse, fine = end_to_end_gap(2e-3, 100), end_to_end_gap(1e-3, 200)  # same time lr x steps
    assert fine < 5e-3 and fine < 0.7 * coarse  # the gap shrinks with the step


def test_balanced_regressor_is_balanced():
    net = balanced_regressor(torch.tensor([3.0, 4.0], dtype=torch.float64), depth=3)
    assert [float(layer.weight.detach()) for layer in net[1:]] == [5.0, 5.0]
    torch.testing.assert_close(
        product_weight(net), torch.tensor([[75.0, 100.0]], dtype=torch.float64)
    )
    with pytest.raises(ValueError, match="weight must be a vector"):
        balanced_regressor(torch.ones(2, 2), depth=2)
