"""Figures shared by claims: what a criterion compares, with the spread over seeds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure


def seeds_figure(
    values: Mapping[str, Mapping[str, Sequence[float]]],
    metrics: Mapping[str, str],
    labels: Mapping[str, str],
    methods: Sequence[str],
) -> Figure:
    """One panel per (metric, problem): a bar at each method's median over seeds and a dot per
    seed. ``values[metric][problem][method]`` lists the per-seed values (any non-finite value,
    a diverged run, is drawn at the panel's top edge as an 'x')."""
    problems = list(next(iter(values.values())))
    fig = Figure(figsize=(3.8 * len(problems), 3.0 * len(metrics)))
    axes = fig.subplots(len(metrics), len(problems), squeeze=False)
    for row, (metric, ylabel) in enumerate(metrics.items()):
        for col, problem in enumerate(problems):
            ax = axes[row][col]
            per_method = [np.asarray(values[metric][problem][m], dtype=float) for m in methods]
            finite = np.concatenate([v[np.isfinite(v)] for v in per_method] or [np.zeros(1)])
            top = finite.max() if finite.size else 1.0
            for i, seeds in enumerate(per_method):
                ok = np.isfinite(seeds)
                if ok.any():
                    ax.bar(i, np.median(seeds[ok]), color="#c6dbef", edgecolor="#4a7fb0")
                jitter = np.linspace(-0.15, 0.15, len(seeds)) if len(seeds) > 1 else [0.0]
                ax.scatter(np.add(i, jitter)[ok], seeds[ok], color="#08306b", s=14, zorder=3)
                ax.scatter(np.add(i, jitter)[~ok], np.full((~ok).sum(), top), marker="x", c="r")
            ax.set_xticks(range(len(methods)), [labels.get(m, m) for m in methods], fontsize=8)
            ax.set_title(problem, fontsize=9)
            ax.set_ylabel(ylabel)
    fig.tight_layout()
    return fig
