"""The shared tuning protocol of the claims, and the l_p loss."""

from __future__ import annotations

import math

import pytest
import torch

from gradkit.claims import RunContext
from gradkit.claims.tuning import (
    TUNING_SEED,
    MethodOutcome,
    grid_edge_note,
    lr_grid,
    score,
    tuned_comparison,
)
from gradkit.tasks import TrainResult, make_loss


def test_lr_grid_is_log_spaced_per_decade_or_half_decade():
    assert lr_grid("quick") == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    full = lr_grid("full")
    assert len(full) == 9 and full[1] == pytest.approx(10**-3.5)


def test_score_treats_divergence_as_infinitely_bad():
    ok = TrainResult("t", "o", 0.1, 0, 1, 1, evals=[{"test_loss": 2.0}, {"test_loss": 1.0}])
    bad = TrainResult("t", "o", 0.1, 0, 1, 1, evals=[{"test_loss": 1.0}], diverged=True)
    assert score(ok, "test_loss") == 1.0 and score(ok, "test_loss", last=2) == 1.5
    assert score(bad, "test_loss") == math.inf


def test_tuned_comparison_picks_the_best_rate_then_runs_every_seed():
    units = []
    ctx = RunContext("quick", [0, 1], on_advance=units.append)
    grid = [1e-3, 1e-1, 1e6]
    outcome = tuned_comparison(ctx, "digits-mlp", ["sgd"], epochs=2, grid=grid)["sgd"]
    assert outcome.tuning[1e6] > outcome.tuning[1e-1]  # far too large a step
    assert outcome.lr == min(grid, key=lambda lr: outcome.tuning[lr])
    assert [r.seed for r in outcome.runs] == [0, 1] and TUNING_SEED not in (0, 1)
    assert len(units) == len(grid) + 2


def test_grid_edge_note_names_rates_at_the_ends():
    grid = [1e-3, 1e-2, 1e-1]
    outcomes = {"p": {"a": MethodOutcome("a", 1e-1, {}, []), "b": MethodOutcome("b", 1e-2, {}, [])}}
    assert "a on p" in grid_edge_note(outcomes, grid) and "b on p" not in grid_edge_note(
        outcomes, grid
    )
    assert grid_edge_note({"p": {"b": outcomes["p"]["b"]}}, grid) == ""


def test_lp_loss_by_name():
    out, y = torch.tensor([[1.0], [3.0]]), torch.tensor([0.0, 1.0])
    assert make_loss("l4")(out, y).item() == pytest.approx((1 + 16) / 2 / 4)
    assert make_loss("l3")(out, y).item() == pytest.approx((1 + 8) / 2 / 3)
    with pytest.raises(ValueError, match="unknown loss"):
        make_loss("l0")
