"""``gradkit analyze``: the noise-stability, compression and Jacobian probes of
:mod:`gradkit.analysis` on a task's model (freshly initialised, or a checkpoint written by
``gradkit train``), each written as JSON and a figure."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from gradkit.analysis import (
    jacobian_spectrum,
    layer_statistics,
    noise_stability,
    probed_layers,
    smallest_compression,
)
from gradkit.analysis.stability import PROBED
from gradkit.checks import InputError
from gradkit.report.render import json_safe

PROBES = ("noise-stability", "compress", "jacobian")


def load_model(task, seed: int, checkpoint: Path | None) -> tuple[nn.Module, object]:
    """The task's model initialised from ``seed`` (and its data), with the weights of
    ``checkpoint`` (a state_dict) if given."""
    from gradkit.tasks.training import seeded_model

    data = task.load(seed)
    model = seeded_model(lambda: task.build_model(data, seed), seed)
    if checkpoint is not None:
        if not checkpoint.is_file():
            raise InputError(f"checkpoint {checkpoint} does not exist")
        try:
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError, EOFError) as error:
            first = (
                str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            )
            raise InputError(
                f"checkpoint {checkpoint} does not fit task {task.name}'s model: {first}"
            ) from error
    return model.eval(), data


def _accuracy(model: nn.Module, x, y) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def _write(out: Path, name: str, payload: dict, fig: Figure) -> list[Path]:
    paths = [out / f"{name}.json", out / f"{name}.png"]
    paths[0].write_text(json.dumps(json_safe(payload), indent=2, allow_nan=False))
    fig.savefig(paths[1], dpi=110)
    return paths


def analyze_noise_stability(model, data, samples: int, relative: float, out: Path, seed: int):
    """Noise injected at every probed layer but the last; medians of r_{i->j}; cushions,
    contraction and stable ranks."""
    x = data.x_test[:samples]
    names = probed_layers(model, x)
    generator = torch.Generator().manual_seed(seed)
    attenuation = {
        at: noise_stability(model, x, at, relative, generator).median() for at in names[:-1]
    }
    rows = [s.row() for s in layer_statistics(model, x)]
    fig = Figure(figsize=(12, 4), layout="tight")
    axes = fig.subplots(1, 3)
    for at, medians in attenuation.items():
        axes[0].plot(
            [names.index(j) for j in medians],
            list(medians.values()),
            marker="o",
            label=f"noise at {at}",
        )
    axes[0].set(yscale="log", xlabel="layer", ylabel="median ||x^j' - x^j|| / ||x^j||")
    axes[0].set(xticks=list(range(len(names))), xticklabels=names)
    axes[0].set_title(f"injected noise {relative:g} x ||x^i||")
    axes[0].legend(fontsize=7)
    positions = range(len(rows))
    axes[1].bar(positions, [r["cushion median"] for r in rows], label="median")
    axes[1].plot(positions, [r["cushion min"] for r in rows], "k_", markersize=20, label="min")
    axes[1].set(xticks=list(positions), xticklabels=names, ylabel="layer cushion")
    axes[1].legend(fontsize=7)
    axes[2].bar(positions, [r["stable rank"] for r in rows])
    axes[2].set(xticks=list(positions), xticklabels=names, ylabel="stable rank")
    payload = {
        "relative_noise": relative,
        "samples": len(x),
        "layers": names,
        "attenuation": attenuation,
        "layer_statistics": rows,
    }
    return _write(out, "noise-stability", payload, fig), attenuation


def analyze_compression(model, data, samples: int, tolerance: float, out: Path, seed: int):
    """Smallest Matrix-Project and SVD sizes that keep train accuracy within ``tolerance``."""
    x, y = data.x_train[:samples], data.y_train[:samples]
    weights = [m.weight for m in model.modules() if isinstance(m, PROBED)]
    largest = max(w.numel() for w in weights)
    widest = max(min(w.shape[0], w[0].numel()) for w in weights)
    grids = {
        "svd": [2**i for i in range(int(math.log2(widest)) + 2)],
        "project": [2**i for i in range(4, int(math.log2(largest)) + 2)],
    }
    results = {
        method: smallest_compression(
            model, lambda m: _accuracy(m, x, y), method, sizes, tolerance, seed
        )
        for method, sizes in grids.items()
    }
    fig = Figure(figsize=(6, 4), layout="tight")
    ax = fig.subplots()
    for method, result in results.items():
        ax.plot(
            [c for _, c, _ in result.curve],
            [v for _, _, v in result.curve],
            marker="o",
            label=method,
        )
    baseline = results["svd"].baseline
    ax.axhline(baseline, color="k", linewidth=0.8, label="uncompressed")
    ax.axhline(baseline - tolerance, color="k", linestyle=":", linewidth=0.8, label="tolerance")
    ax.set(xscale="log", xlabel="effective parameters", ylabel="train accuracy")
    ax.legend(fontsize=7)
    payload = {"tolerance": tolerance, "samples": len(x)}
    for method, r in results.items():
        payload[method] = {
            "size": r.size,
            "effective_parameters": r.effective_parameters,
            "parameters": r.parameters,
            "baseline": r.baseline,
            "curve": r.curve,
        }
    return _write(out, "compress", payload, fig), results


def analyze_jacobian(model, data, samples: int, out: Path):
    """Singular values of the input-output Jacobian on held-out inputs, in float64."""
    model = model.double()
    spectrum = jacobian_spectrum(model, data.x_test[:samples].double())
    fig = Figure(figsize=(6, 4), layout="tight")
    ax = fig.subplots()
    values = spectrum.values.clamp_min(1e-300).log10().flatten().numpy()
    ax.hist(values, bins=40)
    ax.set(xlabel="log10 singular value", ylabel="count", title=spectrum.summary())
    ax.title.set_fontsize(7)
    payload = {
        "samples": spectrum.values.shape[0],
        "log_spread": spectrum.log_spread(),
        "condition_median": spectrum.condition(),
        "mean_square": spectrum.mean_square(),
        "median_singular_value": float(np.median(spectrum.values.numpy())),
        "singular_values": spectrum.values.tolist(),
    }
    return _write(out, "jacobian", payload, fig), spectrum


def summary_lines(probe: str, result) -> list[str]:
    """What the CLI prints for a probe's result."""
    if probe == "noise-stability":
        return [
            f"noise at {at}: median r at the output {list(medians.values())[-1]:.3g}"
            for at, medians in result.items()
        ]
    if probe == "compress":
        return [r.summary() for r in result.values()]
    return [
        result.summary(),
        f"median singular value {statistics.median(result.values.flatten().tolist()):.3g}",
    ]
