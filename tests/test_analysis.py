"""The noise-to-signal helper against known gradient statistics."""

from __future__ import annotations

import pytest
import torch

from gradkit.analysis import GradientWindow, gradient_noise_to_signal, window_spectrum
from gradkit.optim import GGT


def test_noise_to_signal_recovers_a_known_ratio():
    """Loss = w . mean(x): the mini-batch gradient is the batch mean of x, whose mean is mu and
    whose variance is sigma^2 / B, so eta^2 = sigma^2 / (B mu^2)."""
    gen = torch.Generator().manual_seed(0)
    mu = torch.tensor([1.0, -2.0, 0.5])
    sigma = torch.tensor([1.0, 4.0, 0.1])
    x = mu + sigma * torch.randn(200_000, 3, generator=gen)
    model = torch.nn.Linear(3, 1, bias=False)
    result = gradient_noise_to_signal(
        model, lambda out, y: out.mean(), x, torch.zeros(len(x)), batch_size=10, generator=gen
    )
    expected = sigma**2 / (10 * mu**2)
    torch.testing.assert_close(result.ratio["weight"][0].float(), expected, rtol=0.03, atol=0)
    torch.testing.assert_close(result.mean["weight"][0].float(), mu, rtol=0.01, atol=0.01)
    summary = result.summary()
    assert summary["coordinates"] == 3 and summary["num_batches"] == 20_000


def test_noise_to_signal_marks_unused_coordinates_and_keeps_grad_fields():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    model[1].weight.data[0, 1] = 0.0  # the output ignores hidden unit 1
    x = torch.randn(64, 2)
    result = gradient_noise_to_signal(model, lambda out, y: out.pow(2).mean(), x, x[:, 0], 8)
    ratio = result.ratio["0.weight"]
    assert torch.isnan(ratio[1]).all()  # no gradient ever reaches unit 1's incoming weights
    assert all(p.grad is None for p in model.parameters())
    assert torch.isnan(result.flat_ratio()).sum() >= 2


@pytest.mark.parametrize("batch_size,num_batches", [(0, None), (100, None), (8, 1), (8, 9)])
def test_noise_to_signal_rejects_bad_sampling(batch_size, num_batches):
    with pytest.raises(ValueError, match="batch"):
        gradient_noise_to_signal(
            torch.nn.Linear(2, 1),
            lambda o, y: o.mean(),
            torch.randn(64, 2),
            torch.zeros(64),
            batch_size,
            num_batches,
        )


def test_window_spectrum_matches_svd_and_reports_mass():
    gen = torch.Generator().manual_seed(0)
    rows = torch.randn(7, 30, generator=gen, dtype=torch.float64)
    expected = torch.linalg.svdvals(rows)
    spectrum = window_spectrum(rows)
    torch.testing.assert_close(spectrum.singular_values, expected, rtol=1e-10, atol=1e-12)
    energy = expected.square()
    assert spectrum.mass_in_top(2) == pytest.approx(float(energy[:2].sum() / energy.sum()))
    assert spectrum.stable_rank() == pytest.approx(float(energy.sum() / energy[0]))
    # a recorder holding more gradients than its size keeps the last ones
    weight = torch.nn.Parameter(torch.zeros(5, 6, dtype=torch.float64))
    window = GradientWindow([weight], size=4)
    recorded = torch.randn(9, 5, 6, generator=gen, dtype=torch.float64)
    for g in recorded:
        weight.grad = g
        window.record()
    last = torch.linalg.svdvals(recorded[-4:].reshape(4, -1))
    torch.testing.assert_close(window.spectrum().singular_values, last, rtol=1e-10, atol=1e-12)


def test_window_spectrum_of_ggt_is_its_decayed_window():
    gen = torch.Generator().manual_seed(1)
    weight = torch.nn.Parameter(torch.zeros(8, dtype=torch.float64))
    opt = GGT([weight], lr=0.01, window=3, betas=(0.9, 0.5))
    grads = torch.randn(5, 8, generator=gen, dtype=torch.float64)
    for g in grads:
        weight.grad = g.clone()
        opt.step()
    decayed = torch.stack([grads[4], 0.5 * grads[3], 0.25 * grads[2]])
    spectrum = window_spectrum(opt, weight)
    torch.testing.assert_close(
        spectrum.singular_values, torch.linalg.svdvals(decayed), rtol=1e-10, atol=1e-12
    )
    with pytest.raises(ValueError, match="no GGT window"):
        window_spectrum(GGT([torch.nn.Parameter(torch.zeros(2))], lr=0.1))
