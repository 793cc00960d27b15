"""gradkit.init against plain computations: orthogonality, norm preservation of delta-orthogonal
convolutions with circular padding, and the critical point against scipy quadrature."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import integrate
from torch import nn

from gradkit.init import (
    MeanFieldPoint,
    critical_point,
    delta_orthogonal_,
    fixed_point,
    init_critical_,
    orthogonal_,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def gaussian_mean(f) -> float:
    """E[f(z)], z ~ N(0, 1), by adaptive quadrature (independent of the library's Gauss-Hermite)."""
    value, _ = integrate.quad(lambda z: f(z) * math.exp(-z * z / 2), -40, 40, limit=400)
    return value / math.sqrt(2 * math.pi)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("shape", "dtype"), [((8, 20), torch.float64), ((20, 8), torch.float32)])
def test_orthogonal_has_orthonormal_rows_or_columns_times_the_gain(shape, dtype, device):
    w = torch.empty(shape, dtype=dtype, device=device)
    out = orthogonal_(w, gain=1.7, generator=torch.Generator().manual_seed(0))
    assert out is w and w.dtype == dtype and w.device.type == device
    gram = w @ w.T if shape[0] <= shape[1] else w.T @ w
    tolerance = 1e-12 if dtype == torch.float64 else 1e-5
    eye = torch.eye(min(shape), dtype=dtype, device=device)
    torch.testing.assert_close(gram, 1.7**2 * eye, atol=tolerance, rtol=0)
    again = orthogonal_(torch.empty(shape, dtype=dtype), 1.7, torch.Generator().manual_seed(0))
    torch.testing.assert_close(again, w.cpu())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    ("conv", "channels", "size"),
    [(nn.Conv1d, (4, 6), (11,)), (nn.Conv2d, (5, 5), (7, 6)), (nn.Conv3d, (3, 8), (5, 4, 6))],
)
def test_delta_orthogonal_convolutions_preserve_every_norm_with_circular_padding(
    conv, channels, size, device
):
    layer = conv(*channels, kernel_size=3, padding=1, padding_mode="circular", bias=False)
    layer = layer.double().to(device)
    delta_orthogonal_(layer.weight, gain=1.3, generator=torch.Generator().manual_seed(1))
    centre = (slice(None), slice(None), *([1] * len(size)))
    off_centre = layer.weight.detach().clone()
    off_centre[centre] = 0
    assert not off_centre.any()
    x = torch.randn(16, channels[0], *size, dtype=torch.float64, device=device)
    with torch.no_grad():
        y = layer(x)
    torch.testing.assert_close(
        y.flatten(1).norm(dim=1), 1.3 * x.flatten(1).norm(dim=1), rtol=1e-12, atol=0
    )


def test_delta_orthogonal_refuses_what_has_no_norm_preserving_centre():
    with pytest.raises(ValueError, match="odd kernel sizes"):
        delta_orthogonal_(torch.empty(4, 4, 3, 2))
    with pytest.raises(ValueError, match=r"in_channels <= out_channels .* got 6 > 4"):
        delta_orthogonal_(torch.empty(4, 6, 3, 3))
    with pytest.raises(ValueError, match="Conv1d/2d/3d weight"):
        delta_orthogonal_(torch.empty(4, 4))
    with pytest.raises(ValueError, match="gain must be a positive number, got -1"):
        delta_orthogonal_(torch.empty(4, 4, 3), gain=-1)
    with pytest.raises(ValueError, match="2-D weight"):
        orthogonal_(torch.empty(4, 4, 3))


@pytest.mark.parametrize(
    ("activation", "phi", "slope", "q_star"),
    [
        ("tanh", math.tanh, lambda x: 1 - math.tanh(x) ** 2, 1e-3),
        ("tanh", math.tanh, lambda x: 1 - math.tanh(x) ** 2, 0.1),
        ("relu", lambda x: max(x, 0.0), lambda x: float(x > 0), 0.5),
        ("erf", math.erf, lambda x: 2 / math.sqrt(math.pi) * math.exp(-x * x), 0.05),
    ],
)
def test_the_critical_point_has_chi_one_and_its_fixed_point(activation, phi, slope, q_star):
    point = critical_point(activation, q_star)
    root = math.sqrt(q_star)
    chi_1 = point.sigma_w2 * gaussian_mean(lambda z: slope(root * z) ** 2)
    mapped = point.sigma_w2 * gaussian_mean(lambda z: phi(root * z) ** 2) + point.sigma_b2
    assert abs(chi_1 - 1) < 1e-8 and abs(mapped - q_star) < 1e-8 * max(1.0, q_star)
    assert point.sigma_b2 >= 0 and point.gain == math.sqrt(point.sigma_w2)


def test_tanh_critical_points_approach_unit_weights_and_zero_bias():
    small, large = critical_point("tanh", 1e-4), critical_point("tanh", 1e-1)
    assert 1 < small.sigma_w2 < large.sigma_w2 and 0 < small.sigma_b2 < large.sigma_b2
    assert small.sigma_w2 - 1 < 1e-3 and small.sigma_b2 < 1e-10


def test_bad_activations_and_points_are_refused():
    with pytest.raises(ValueError, match="unknown activation 'swish'; choose from tanh"):
        critical_point("swish")
    with pytest.raises(ValueError, match="q_star must be a positive number, got 0"):
        critical_point("tanh", 0)
    with pytest.raises(ValueError, match="no critical point with fixed point q\\* = 2"):
        critical_point(torch.sigmoid, 2.0)  # sigmoid's mean is 1/2: sigma_b^2 would be < 0
    with pytest.raises(ValueError, match="sigma_w2 must be a number >= 0"):
        fixed_point("tanh", -1.0)


def test_fixed_point_off_criticality():
    ordered = fixed_point("tanh", 0.5)  # sigma_w^2 < 1, no bias: signals die, q* = 0
    assert ordered.q_star < 1e-12 and ordered.chi_1 == pytest.approx(0.5)
    chaotic = fixed_point("tanh", 2.0)
    mapped = 2.0 * gaussian_mean(lambda z: math.tanh(math.sqrt(chaotic.q_star) * z) ** 2)
    assert abs(mapped - chaotic.q_star) < 1e-8 and chaotic.chi_1 > 1
    critical = critical_point("tanh", 0.05)
    again = fixed_point("tanh", critical.sigma_w2, critical.sigma_b2, iterations=20000)
    assert again.q_star == pytest.approx(0.05, rel=1e-3) and again.chi_1 == pytest.approx(1, 1e-4)


def model():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, padding_mode="circular"),
        nn.Tanh(),
        nn.Conv2d(16, 16, 3, padding=1, padding_mode="circular"),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(16 * 64, 400),
        nn.Tanh(),
        nn.Linear(400, 10),
    ).double()


def test_init_critical_sets_every_layer_from_the_critical_point():
    net = model()
    point = init_critical_(net, "tanh", 0.01, generator=torch.Generator().manual_seed(0))
    conv, linear = net[2], net[5]
    centre = conv.weight[:, :, 1, 1]
    torch.testing.assert_close(
        centre.T @ centre, point.sigma_w2 * torch.eye(16, dtype=torch.float64)
    )
    torch.testing.assert_close(
        linear.weight @ linear.weight.T, point.sigma_w2 * torch.eye(400, dtype=torch.float64)
    )
    biases = torch.cat([m.bias.detach() for m in net if hasattr(m, "bias")])
    chi2 = float(biases.pow(2).sum() / point.sigma_b2)  # chi-square with len(biases) dof
    assert abs(chi2 - biases.numel()) < 5 * math.sqrt(2 * biases.numel())


def test_init_critical_gaussian_weights_have_variance_sigma_w2_over_fan_in():
    net = model()
    point = fixed_point("tanh", 1.5, 0.05)
    assert init_critical_(net, weights="gaussian", point=point) == point
    for layer, fan_in in ((net[2], 16 * 9), (net[5], 16 * 64)):
        scaled = layer.weight.detach().flatten() * math.sqrt(fan_in / point.sigma_w2)
        n = scaled.numel()
        assert abs(float(scaled.pow(2).mean()) - 1) < 5 * math.sqrt(2 / n)
        assert abs(float(scaled.mean())) < 5 / math.sqrt(n)


def test_init_critical_refuses_models_and_options_it_cannot_use():
    with pytest.raises(ValueError, match="no Linear or Conv1d/2d/3d layer"):
        init_critical_(nn.Sequential(nn.Tanh()))
    with pytest.raises(ValueError, match="weights must be one of orthogonal, gaussian"):
        init_critical_(model(), weights="uniform")
    with pytest.raises(ValueError, match="in_channels <= out_channels"):
        init_critical_(nn.Conv1d(8, 4, 3))
    assert isinstance(init_critical_(nn.Conv1d(4, 8, 3)), MeanFieldPoint)
