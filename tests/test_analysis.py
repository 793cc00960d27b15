"""The noise-to-signal helper against known gradient statistics."""

from __future__ import annotations

import pytest
import torch

from gradkit.analysis import gradient_noise_to_signal


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
