"""The vanilla tanh CNN of the initialisation claim and its two run kinds."""

from __future__ import annotations

import pytest
import torch

from gradkit.experiments.kinds.deep_cnn import (
    Q_STAR,
    deep_cnn_run,
    init_point,
    init_spectrum_run,
    vanilla_cnn,
)
from gradkit.tasks import VanillaCNN


def test_vanilla_cnn_is_stem_body_readout_with_circular_padding():
    model = VanillaCNN(depth=3, channels=4)
    assert len(model.body) == 3
    assert all(m.padding_mode == "circular" for m in model.modules() if hasattr(m, "padding_mode"))
    assert model(torch.randn(5, 1, 8, 8)).shape == (5, 10)


def test_each_init_sets_the_weights_it_names():
    def taps(model):
        weight = model.body[0][0].weight.detach()
        off_centre = weight.clone()
        off_centre[:, :, 1, 1] = 0
        return weight[:, :, 1, 1], off_centre

    centre, off = taps(vanilla_cnn("delta-orthogonal", 2, seed=0))
    gain2 = init_point("delta-orthogonal").sigma_w2
    torch.testing.assert_close(centre @ centre.T, gain2 * torch.eye(8))
    assert off.abs().max() == 0
    centre, off = taps(vanilla_cnn("ordered", 2, seed=0))
    torch.testing.assert_close(centre @ centre.T, 0.5 * torch.eye(8))
    assert taps(vanilla_cnn("gaussian", 2, seed=0))[1].abs().max() > 0
    assert init_point("delta-orthogonal").q_star == Q_STAR
    assert init_point("chaotic").chi_1 > 1 > init_point("ordered").chi_1
    weights = [p.detach() for p in vanilla_cnn("chaotic", 2, seed=3).parameters()]
    again = [p.detach() for p in vanilla_cnn("chaotic", 2, seed=3).parameters()]
    assert all(torch.equal(a, b) for a, b in zip(weights, again, strict=True))
    with pytest.raises(ValueError, match="unknown init 'xavier'; choose from delta-orthogonal"):
        init_point("xavier")


def test_deep_cnn_run_trains_and_records_per_epoch():
    record = deep_cnn_run("delta-orthogonal", depth=2, seed=0, lr=0.01, epochs=2)
    assert not record.diverged
    x, y = record.curve("train_loss")
    assert x == [0.0, 1.0, 2.0] and y[-1] < y[0]
    assert 0 <= record.metric("test_accuracy") <= 1


def test_init_spectrum_run_separates_orthogonal_from_gaussian():
    orthogonal = init_spectrum_run("delta-orthogonal", depth=6, seed=0)
    gaussian = init_spectrum_run("gaussian", depth=6, seed=0)
    assert orthogonal.metric("log_spread") < 0.5 < 1 < gaussian.metric("log_spread")
    assert abs(orthogonal.metric("log_mean_square")) < 0.1
    depths, spreads = gaussian.curve("log_spread")
    assert depths == [1, 2, 3, 4, 5, 6] and spreads == sorted(spreads)
    _, values = orthogonal.curve("log10_sigma")
    assert len(values) == 2 * 8 * 8 * 8
