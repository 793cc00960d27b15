"""Figures shared by claims: what a criterion compares, with the spread over seeds.

Every figure of gradkit lays itself out when saved (``layout="tight"``), never while it is
built: claims build theirs in concurrent threads, and matplotlib's text layout (mathtext
parsing) is not thread-safe; saving happens in one thread."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure


def seeds_figure(
    values: Mapping[str, Mapping[str, Sequence[float]]],
    metrics: Mapping[str, str],
    labels: Mapping[str, str],
    methods: Sequence[str] | None = None,
) -> Figure:
    """One panel per (metric, problem): a bar at each method's median over seeds and a dot per
    seed. ``values[metric][problem][method]`` lists the per-seed values (any non-finite value,
    a diverged run, is drawn at the panel's top edge as an 'x'); ``methods`` default to the
    labels' keys."""
    methods = list(labels) if methods is None else methods
    problems = list(next(iter(values.values())))
    fig = Figure(figsize=(3.8 * len(problems), 3.0 * len(metrics)), layout="tight")
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
    return fig


@dataclass(frozen=True)
class Panel:
    """One axes of :func:`curves_figure`: a curve of the runs of one problem."""

    problem: str
    curve: str
    xlabel: str
    ylabel: str
    log_y: bool = True
    title: str = ""
    log_x: bool = False
    methods: tuple[str, ...] = ()  # drawn here instead of the figure's methods


def curves_figure(
    outcomes, methods: Sequence[str], panels: Sequence[Panel], labels, rates=None
) -> Figure:
    """Each panel: each method's median curve over seeds, with a band from the smallest to the
    largest seed. ``outcomes[problem][method]`` has ``runs`` (RunRecords) and ``lr``; methods
    missing from a problem are skipped. ``rates[method]`` names what its searched value is
    (default "lr"; "" leaves it out of the legend)."""
    rates = rates or {}
    fig = Figure(figsize=(4.4 * min(len(panels), 3), 3.4 * -(-len(panels) // 3)), layout="tight")
    axes = fig.subplots(-(-len(panels) // 3), min(len(panels), 3), squeeze=False).ravel()
    for ax, panel in zip(axes, panels, strict=False):
        for name in panel.methods or methods:
            outcome = outcomes[panel.problem].get(name)
            if outcome is None:
                continue
            series = [run.curve(panel.curve) for run in outcome.runs]
            length = min(len(ys) for _, ys in series)
            if length == 0:
                continue
            x = np.asarray(series[0][0][:length])
            ys = np.array([s[1][:length] for s in series], dtype=float)
            if panel.log_y:
                ys = np.maximum(ys, 1e-16)
            rate = rates.get(name, "lr")
            label = f"{labels[name]} ({rate} {outcome.lr:.3g})" if rate else labels[name]
            line = ax.plot(x, np.median(ys, axis=0), label=label)
            ax.fill_between(x, ys.min(axis=0), ys.max(axis=0), alpha=0.2, color=line[0].get_color())
        if panel.log_y:
            ax.set_yscale("log")
        if panel.log_x:
            ax.set_xscale("log")
        ax.set_title(panel.title or panel.problem, fontsize=9)
        ax.set_xlabel(panel.xlabel)
        ax.set_ylabel(panel.ylabel)
        ax.legend(fontsize=7)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    return fig
