"""Noise-stability probes against the same quantities computed by hand on tiny nets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gradkit.analysis.jacobian import jacobian_spectra_along, jacobian_spectrum
from gradkit.analysis.stability import (
    interlayer_cushions,
    layer_statistics,
    noise_stability,
    probed_layers,
    stable_rank,
)
from gradkit.init import delta_orthogonal_


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 3)
    ).double()


def test_noise_attenuation_equals_a_direct_computation():
    net, x = mlp(), torch.randn(5, 6, dtype=torch.float64)
    result = noise_stability(net, x, at=0, relative=0.3, generator=torch.Generator().manual_seed(4))
    w = [net[i].weight for i in (0, 2, 4)]
    b = [net[i].bias for i in (0, 2, 4)]
    with torch.no_grad():
        x1 = x @ w[0].T + b[0]
        g = torch.randn(x1.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
        noisy1 = x1 + 0.3 * g * (x1.norm(dim=1) / g.norm(dim=1))[:, None]
        x2, noisy2 = (torch.relu(v) @ w[1].T + b[1] for v in (x1, noisy1))
        x3, noisy3 = (torch.tanh(v) @ w[2].T + b[2] for v in (x2, noisy2))
    expected = [
        (n - c).norm(dim=1) / c.norm(dim=1) for c, n in ((x1, noisy1), (x2, noisy2), (x3, noisy3))
    ]
    assert list(result.attenuation) == ["0", "2", "4"] and result.injected_at == "0"
    for got, want in zip(result.attenuation.values(), expected, strict=True):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-12)
    np.testing.assert_allclose(result.attenuation["0"], 0.3, rtol=1e-12)
    later = noise_stability(net, x, at="2", relative=0.3)
    assert list(later.attenuation) == ["2", "4"] and "median r at 2 0.3" in later.summary()


def test_cushion_contraction_and_stable_rank_of_linear_layers():
    net, x = mlp(), torch.randn(7, 6, dtype=torch.float64)
    stats = layer_statistics(net, x)
    assert [s.name for s in stats] == ["0", "2", "4"]
    with torch.no_grad():
        x1 = net[0](x)
        u2 = torch.relu(x1)
        cushion = (u2 @ net[2].weight.T).norm(dim=1) / (net[2].weight.norm() * u2.norm(dim=1))
    np.testing.assert_allclose(stats[1].cushion, cushion.numpy(), rtol=1e-12)
    np.testing.assert_allclose(stats[0].contraction, (x1.norm(dim=1) / u2.norm(dim=1)).numpy())
    assert stats[-1].contraction is None
    singular = np.linalg.svd(net[0].weight.detach().numpy(), compute_uv=False)
    assert stats[0].stable_rank == pytest.approx((singular**2).sum() / singular[0] ** 2, rel=1e-12)
    assert set(stats[0].row()) == {
        "layer",
        "cushion min",
        "cushion median",
        "contraction max",
        "stable rank",
    }


@pytest.mark.parametrize("padding_mode", ["zeros", "circular"])
def test_a_convolutions_cushion_uses_its_whole_operator(padding_mode):
    torch.manual_seed(1)
    conv = nn.Conv1d(3, 4, 3, padding=1, padding_mode=padding_mode).double()
    net = nn.Sequential(conv, nn.Tanh(), nn.Flatten(), nn.Linear(4 * 9, 2).double())
    x = torch.randn(5, 3, 9, dtype=torch.float64)
    operator = torch.func.jacrev(lambda v: conv(v[None])[0] - conv.bias[:, None])(x[0])
    operator = operator.reshape(4 * 9, 3 * 9)  # the dense matrix of the convolution
    with torch.no_grad():
        expected = (x.flatten(1) @ operator.T).norm(dim=1) / (
            operator.norm() * x.flatten(1).norm(dim=1)
        )
    np.testing.assert_allclose(layer_statistics(net, x)[0].cushion, expected.numpy(), rtol=1e-10)


def test_a_random_gaussian_layer_has_cushion_near_one_over_root_fan_in():
    layer = nn.Linear(400, 300, bias=False).double()
    nn.init.normal_(layer.weight)
    net = nn.Sequential(layer)
    cushion = layer_statistics(net, torch.randn(50, 400, dtype=torch.float64))[0].cushion
    assert np.median(cushion) * np.sqrt(400) == pytest.approx(1.0, rel=0.1)


def test_bad_probes_are_refused_and_the_mode_restored():
    net, x = mlp().train(), torch.randn(2, 6, dtype=torch.float64)
    with pytest.raises(ValueError, match="unknown layer 'fc'; the probed layers are 0, 2, 4"):
        noise_stability(net, x, at="fc")
    with pytest.raises(ValueError, match="layer position 3 is out of range: the model has 3"):
        noise_stability(net, x, at=3)
    with pytest.raises(ValueError, match="relative noise must be a positive number, got 0"):
        noise_stability(net, x, relative=0)
    with pytest.raises(ValueError, match="no Linear or Conv1d/2d/3d layer"):
        probed_layers(nn.Sequential(nn.ReLU()), x)
    assert net.training and probed_layers(net, x) == ["0", "2", "4"]
    assert stable_rank(torch.eye(5)) == pytest.approx(5.0)


def test_the_jacobian_spectrum_of_a_linear_map_is_its_singular_values():
    layer = nn.Linear(6, 4).double()
    spectrum = jacobian_spectrum(layer, torch.randn(3, 6, dtype=torch.float64))
    expected = torch.linalg.svdvals(layer.weight.detach())
    torch.testing.assert_close(spectrum.values, expected.expand(3, -1), rtol=1e-12, atol=0)
    assert spectrum.condition() == pytest.approx(float(expected[0] / expected[-1]))


def test_a_deep_delta_orthogonal_linear_cnn_is_an_exact_isometry():
    layers = []
    for _ in range(12):
        conv = nn.Conv2d(4, 4, 3, padding=1, padding_mode="circular").double()
        delta_orthogonal_(
            conv.weight, gain=1.0, generator=torch.Generator().manual_seed(len(layers))
        )
        nn.init.zeros_(conv.bias)
        layers.append(conv)
    net = nn.Sequential(*layers).train()
    spectrum = jacobian_spectrum(net, torch.randn(2, 4, 5, 5, dtype=torch.float64))
    torch.testing.assert_close(spectrum.values, torch.ones(2, 100, dtype=torch.float64))
    assert spectrum.log_spread() < 1e-12 and "mean sigma^2 1" in spectrum.summary()
    assert net.training  # the mode is restored
    gaussian = nn.Sequential(*[nn.Conv2d(4, 4, 3, padding=1, padding_mode="circular").double()
                               for _ in range(12)])  # fmt: skip
    assert (
        jacobian_spectrum(gaussian, torch.randn(2, 4, 5, 5, dtype=torch.float64)).log_spread() > 1
    )
    with pytest.raises(ValueError, match="batch dimension"):
        jacobian_spectrum(net, torch.randn(0, 4, 5, 5))


def test_jacobian_spectra_along_depth_equal_one_jacobian_per_prefix():
    blocks = nn.Sequential(
        *[nn.Sequential(nn.Conv2d(3, 3, 3, padding=1, padding_mode="circular"), nn.Tanh())
          for _ in range(5)]
    ).double()  # fmt: skip
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    spectra = jacobian_spectra_along(blocks, x, [4, 1, 2])
    assert list(spectra) == [1, 2, 4]
    for depth, spectrum in spectra.items():
        expected = jacobian_spectrum(blocks[:depth], x).values
        torch.testing.assert_close(spectrum.values, expected, rtol=1e-12, atol=1e-14)
    for bad in ([], [0], [6]):
        with pytest.raises(ValueError, match=r"depths must lie in 1\.\.5"):
            jacobian_spectra_along(blocks, x, bad)
    with pytest.raises(ValueError, match="batch dimension"):
        jacobian_spectra_along(blocks, x[:0], [1])


def test_interlayer_cushions_equal_the_jacobian_formula():
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))
    net = net.double()
    x = torch.randn(3, 4, dtype=torch.float64)
    cushions = interlayer_cushions(net, x)
    assert list(cushions) == ["0", "2", "4"] and list(cushions["2"]) == ["2", "4"]
    np.testing.assert_allclose(cushions["0"]["0"], 1 / np.sqrt(6), rtol=1e-12)  # J = identity
    with torch.no_grad():
        x0 = net[0](x)
    for s in range(3):  # J^{0,4} = W_4 diag(tanh'(x^2)) W_2 diag(tanh'(x^0))
        x2 = net[2](torch.tanh(x0[s]))
        jac = (
            net[4].weight
            @ torch.diag(1 - torch.tanh(x2) ** 2)
            @ net[2].weight
            @ torch.diag(1 - torch.tanh(x0[s]) ** 2)
        ).detach()
        expected = (jac @ x0[s]).norm() / (jac.norm() * x0[s].norm())
        assert cushions["0"]["4"][s] == pytest.approx(float(expected), rel=1e-10)
