"""Files for one training run: metrics.json, metrics.csv (one row per evaluation), loss.png,
model.pt."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from matplotlib.figure import Figure

from gradkit.report.render import json_safe


def loss_figure(result) -> Figure:
    """Mini-batch loss per step, and train/test loss at the evaluations, against epochs; for an
    optimizer that chooses its own batches (PBQN) also its batch size and accepted step size per
    iteration."""
    sizes = result.history.get("batch_size")
    fig = Figure(figsize=(12 if sizes else 7, 4), layout="tight")
    axes = fig.subplots(1, 2 if sizes else 1, squeeze=False)[0]
    ax = axes[0]
    steps_per_epoch = result.evals[-1]["step"] / max(result.evals[-1]["epoch"], 1e-12)
    if result.step_losses:
        x = [(i + 1) / steps_per_epoch for i in range(len(result.step_losses))]
        ax.plot(x, result.step_losses, color="0.75", linewidth=0.8, label="mini-batch loss")
    for metric in ("train_loss", "test_loss"):
        epochs, values = result.series(metric)
        ax.plot(epochs, values, marker="o", markersize=3, label=metric.replace("_", " "))
    ax.set_xlabel("epoch" + (" (per-sample gradients / n)" if sizes else ""))
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    lr = "" if result.lr is None else f"lr {result.lr:g}, "
    ax.set_title(f"{result.task} / {result.optimizer} ({lr}seed {result.seed})")
    ax.legend()
    if sizes:
        iterations = range(1, len(sizes) + 1)
        axes[1].plot(iterations, sizes, color="C0", label="batch size")
        axes[1].set_xlabel("iteration")
        axes[1].set_ylabel("batch size")
        steps = axes[1].twinx()
        steps.plot(iterations, result.history["step_size"], ".", color="C1", label="step size")
        steps.set_ylabel("accepted step size")
        axes[1].set_title("batch size (line) and accepted step (dots)")
    return fig


def write_training_outputs(result, out: Path) -> list[Path]:
    """metrics.json, metrics.csv, loss.png and, when the result holds its model, model.pt (its
    state_dict, what ``gradkit analyze --checkpoint`` reads)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "metrics.json", out / "metrics.csv", out / "loss.png"]
    paths[0].write_text(json.dumps(json_safe(result.to_dict()), indent=2, allow_nan=False))
    result.write_csv(paths[1])
    loss_figure(result).savefig(paths[2], dpi=110)
    if result.model is not None:
        paths.append(out / "model.pt")
        torch.save(result.model.state_dict(), paths[-1])
    return paths
