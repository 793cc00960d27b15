"""Datasets, models and the training loop."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from gradkit.tasks import (
    TASKS,
    NoisyQuadratic,
    breast_cancer,
    correlated_logistic,
    digits,
    fit,
    lp_regression,
    mnist1d,
    quadratic_hessian,
    seeded_model,
    train,
)


def test_mnist1d_is_generated_offline_with_the_standard_split_and_keeps_global_rngs():
    np.random.seed(123)
    random.seed(123)
    expected_np, expected_py = np.random.rand(), random.random()
    np.random.seed(123)
    random.seed(123)
    data = mnist1d()
    assert data.x_train.shape == (4000, 40) and data.x_test.shape == (1000, 40)
    assert set(data.y_train.tolist()) == set(range(10))
    assert np.random.rand() == expected_np and random.random() == expected_py


def test_sklearn_sets_have_expected_shapes():
    images, vectors, cancer = digits(images=True), digits(), breast_cancer()
    assert images.x_train.shape[1:] == (1, 8, 8) and vectors.x_train.shape[1] == 64
    assert len(images.x_train) + len(images.x_test) == 1797
    assert cancer.x_train.shape[1] == 30 and cancer.num_classes == 2
    assert abs(float(cancer.x_train.mean())) < 1e-5


def test_synthetic_sets_are_deterministic_in_their_seed():
    a, b, c = correlated_logistic(seed=1), correlated_logistic(seed=1), correlated_logistic(seed=2)
    assert torch.equal(a.x_train, b.x_train) and not torch.equal(a.x_train, c.x_train)
    x = correlated_logistic(samples=20_000, seed=0).x_train
    assert np.corrcoef(x[:, 0], x[:, 1])[0, 1] == pytest.approx(0.9, abs=0.02)
    assert torch.equal(lp_regression(seed=3).y_train, lp_regression(seed=3).y_train)


@pytest.mark.parametrize("rotated", [False, True])
def test_quadratic_hessian_spectrum_and_rotation(rotated):
    h = quadratic_hessian(50, (0.1, 10.0), rotated, seed=0).double()
    eig = torch.linalg.eigvalsh(h)
    np.testing.assert_allclose(eig.numpy(), np.logspace(-1, 1, 50), rtol=1e-4)
    off_diagonal = (h - torch.diag(torch.diag(h))).abs().max()
    assert (off_diagonal > 0.1) == rotated


def test_noisy_quadratic_gradient_is_hx_plus_scaled_noise():
    h = quadratic_hessian(5, seed=0)
    model = NoisyQuadratic(h, noise=2.0, x0=torch.ones(5))
    xi = torch.randn(4, 5)
    model(xi).mean().backward()
    expected = h @ torch.ones(5) + 2.0 * xi.mean(0)
    torch.testing.assert_close(model.x.grad, expected)
    assert model(torch.zeros(1, 5)).item() == pytest.approx(
        0.5 * float(torch.ones(5) @ h @ torch.ones(5))
    )


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_trains_a_few_steps(name):
    result = train(name, "adam", seed=0, max_steps=5, epochs=1)
    assert len(result.step_losses) == 5
    assert all(math.isfinite(v) for v in result.step_losses)
    assert result.evals[0]["step"] == 0 and result.evals[-1]["step"] == 5


def test_training_is_deterministic_given_the_seed():
    a = train("digits-mlp", "signum", lr=1e-2, epochs=2, seed=4)
    b = train("digits-mlp", "signum", lr=1e-2, epochs=2, seed=4)
    c = train("digits-mlp", "signum", lr=1e-2, epochs=2, seed=5)
    assert a.step_losses == b.step_losses and a.evals == b.evals
    assert a.step_losses != c.step_losses


def test_training_reduces_the_loss_and_evaluates_per_epoch():
    result = train("digits-cnn", "adam", lr=3e-3, epochs=3, seed=0)
    assert [e["epoch"] for e in result.evals] == [0.0, 1.0, 2.0, 3.0]
    assert result.final("train_loss") < 0.5 * result.evals[0]["train_loss"]
    assert result.final("test_accuracy") > 0.8


@pytest.mark.parametrize("optimizer", ["sgd", "msvag"])
def test_divergence_is_detected_not_raised(optimizer):
    result = train("l4-regression", optimizer, lr=1e6, epochs=2, seed=0)
    assert result.diverged
    assert result.final("train_loss") == math.inf


def test_seeded_model_leaves_the_global_rng_alone():
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    a = seeded_model(lambda: torch.nn.Linear(3, 3), 7)
    assert torch.rand(1) == expected
    b = seeded_model(lambda: torch.nn.Linear(3, 3), 7)
    assert torch.equal(a.weight, b.weight)


def test_fit_rejects_bad_settings():
    data = digits()
    model = torch.nn.Linear(64, 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="epochs"):
        fit(model, data, opt, loss="cross_entropy", epochs=0, batch_size=10)
    with pytest.raises(ValueError, match="unknown loss"):
        fit(model, data, opt, loss="hinge", epochs=1, batch_size=10)
    with pytest.raises(ValueError, match="unknown task"):
        train("nope", "adam")
    with pytest.raises(ValueError, match="unknown optimizer"):
        train("digits-mlp", "nope")


def test_lp_loss_by_name():
    from gradkit.tasks import make_loss

    out, y = torch.tensor([[1.0], [3.0]]), torch.tensor([0.0, 1.0])
    assert make_loss("l4")(out, y).item() == pytest.approx((1 + 16) / 2 / 4)
    assert make_loss("l3")(out, y).item() == pytest.approx((1 + 8) / 2 / 3)
    with pytest.raises(ValueError, match="unknown loss"):
        make_loss("l0")
