"""Files for distributed runs (simulated or real): one trace JSON per run and a figure of the
judged model's metrics against epochs and against (simulated) time."""

from __future__ import annotations

import json
from pathlib import Path

from matplotlib.figure import Figure

from gradkit.distributed.trace import Trace
from gradkit.report.render import json_safe

PANELS = ("train_loss", "test_accuracy", "consensus")


def trace_figure(traces: dict[str, Trace], time_label: str = "simulated time") -> Figure:
    """Rows: train loss, test accuracy, consensus distance (those present); columns: against
    epochs and against time. One line per labelled trace."""
    metrics = [m for m in PANELS if any(t.evals and m in t.evals[0] for t in traces.values())]
    fig = Figure(figsize=(9, 2.8 * len(metrics)), layout="tight")
    axes = fig.subplots(len(metrics), 2, squeeze=False)
    for row, metric in enumerate(metrics):
        for column, against in enumerate(("epoch", "time")):
            ax = axes[row][column]
            for label, trace in traces.items():
                if trace.evals and metric in trace.evals[0]:
                    ax.plot(*trace.series(metric, against), marker="o", markersize=2, label=label)
            ax.set_xlabel("epoch" if against == "epoch" else time_label)
            ax.set_ylabel(metric.replace("_", " "))
            if metric != "test_accuracy":
                ax.set_yscale(
                    "symlog" if metric == "consensus" else "log",
                    **({"linthresh": 1e-6} if metric == "consensus" else {}),
                )
    axes[0][0].legend(fontsize=8)
    first = next(iter(traces.values()))
    kind = "real run" if first.settings.get("real") else "simulation"
    names = ", ".join(traces)
    fig.suptitle(f"{names} on {first.workers} workers ({kind}, seed {first.seed})")
    return fig


def write_trace_outputs(traces: dict[str, Trace], out: Path, time_label: str) -> list[Path]:
    """``<label>.json`` per trace and ``curves.png`` with all of them."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for label, trace in traces.items():
        path = out / f"{label}.json"
        path.write_text(json.dumps(json_safe(trace.to_dict()), allow_nan=False))
        paths.append(path)
    figure_path = out / "curves.png"
    trace_figure(traces, time_label).savefig(figure_path, dpi=110)
    return [*paths, figure_path]
