"""Matrix-Project and SVD truncation against their definitions, and the compression search."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gradkit.analysis import compression
from gradkit.analysis.compression import (
    compress,
    matrix_project,
    smallest_compression,
    svd_truncate,
)


def test_matrix_project_is_unbiased_with_the_stated_variance():
    a = torch.linspace(-1, 1, 12, dtype=torch.float64).reshape(3, 4)
    k, seeds = 5, 600
    draws = torch.stack([matrix_project(a, k, seed) for seed in range(seeds)])
    variance = (a.pow(2).sum() - a.pow(2)) / k  # Var of one estimate, entry by entry
    z = (draws.mean(0) - a) / (variance / seeds).sqrt()
    assert float(z.abs().max()) < 4.5  # unbiased
    ratio = draws.var(0) / variance
    assert float((ratio - 1).abs().max()) < 0.25  # 600 draws: the sample variance within ~6%


def test_matrix_project_is_deterministic_per_seed_and_does_not_depend_on_the_chunk(monkeypatch):
    a = torch.randn(4, 6, dtype=torch.float32)
    first = matrix_project(a, 9, seed=3)
    assert first.dtype == torch.float32 and torch.equal(first, matrix_project(a, 9, seed=3))
    monkeypatch.setattr(compression, "_CHUNK_ENTRIES", 24 * 2)  # two projections per chunk
    torch.testing.assert_close(matrix_project(a, 9, seed=3), first)
    with pytest.raises(ValueError, match="k must be a positive integer, got 0"):
        matrix_project(a, 0)


def test_svd_truncation_is_the_best_low_rank_approximation():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 2, 3))  # a conv-like weight, read as 6 x 6
    got = svd_truncate(torch.from_numpy(w), 2).numpy().reshape(6, 6)
    u, s, vh = np.linalg.svd(w.reshape(6, 6))
    np.testing.assert_allclose(got, (u[:, :2] * s[:2]) @ vh[:2], atol=1e-12)
    error = np.linalg.norm(w.reshape(6, 6) - got)
    assert error == pytest.approx(np.sqrt((s[2:] ** 2).sum()))


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 3)).double()


def test_compress_counts_the_numbers_it_stores():
    net = mlp()
    low, count = compress(net, "svd", 2)
    assert count == 2 * (20 + 10 + 1) + 2 * (3 + 20 + 1) + 20 + 3
    assert torch.linalg.matrix_rank(low[0].weight.detach()) == 2
    full, count = compress(net, "svd", 10)  # rank 10 stores more than a 3 x 20 weight: kept
    assert count == sum(p.numel() for p in net.parameters())
    x = torch.randn(5, 10, dtype=torch.float64)
    torch.testing.assert_close(full(x), net(x))
    projected, count = compress(net, "project", 50)
    assert count == 50 + 50 + 23 and not torch.equal(projected[0].weight, net[0].weight)
    assert torch.equal(net[0].weight, mlp()[0].weight)  # the model itself is untouched
    with pytest.raises(ValueError, match="method must be one of project, svd"):
        compress(net, "prune", 3)


def test_the_search_returns_the_smallest_size_that_keeps_the_metric():
    net = mlp()
    x = torch.randn(200, 10, dtype=torch.float64)
    labels = net(x).argmax(1)

    def agreement(model):
        with torch.no_grad():
            return float((model(x).argmax(1) == labels).double().mean())

    result = smallest_compression(net, agreement, "svd", [10, 1, 2, 3], tolerance=0.0)
    assert result.baseline == 1.0 and result.size is not None
    sizes = [size for size, _, _ in result.curve]
    assert sizes == sorted(sizes) and sizes[-1] == result.size
    assert all(value < 1.0 for _, _, value in result.curve[:-1])
    assert (
        result.effective_parameters <= result.parameters and "keeps the metric" in result.summary()
    )
    hopeless = smallest_compression(net, lambda m: 0.0 if m is not net else 1.0, "svd", [1], 0.0)
    assert hopeless.size is None and "no size tried" in hopeless.summary()
    with pytest.raises(ValueError, match="sizes must be positive integers"):
        smallest_compression(net, agreement, "svd", [0], 0.0)
