"""Simulated data-parallel runs of a distributed algorithm on a training task
(:func:`simulate_run`), and their specs (:func:`simulated`)."""

from __future__ import annotations

from typing import Any

from gradkit.experiments.compare import Method, SpecFactory
from gradkit.experiments.kinds.training import VALIDATION_FRACTION
from gradkit.experiments.runs import RunRecord, RunSpec, run_kind
from gradkit.sim import Cluster, ComputeModel, NetworkModel, simulate
from gradkit.tasks.distributed import task_problem, with_suboptimality


@run_kind
def simulate_run(
    algorithm: str,
    task: str,
    workers: int,
    seed: int,
    lr: float,
    epochs: float,
    validation: bool = False,
    batch_size: int | None = None,
    evals_per_epoch: int = 2,
    slowdown: dict | None = None,
    jitter: float = 0.0,
    transfer_cost: float | None = None,
    sampling: str = "shards",
    suboptimality: bool = False,
    hyper: dict | None = None,
) -> RunRecord:
    """Simulate ``algorithm`` on ``workers`` workers training ``task`` (see
    :func:`gradkit.sim.simulate`).

    ``slowdown`` maps a worker (as a string or int) to its compute slowdown; ``transfer_cost``
    makes moving one model over a link cost that many gradient computations (the bandwidth is
    set from the model's size); ``sampling="whole"`` lets every worker draw from the whole
    training set; ``suboptimality`` adds the metric f(x) - f* of a convex task (see
    :func:`~gradkit.tasks.distributed.with_suboptimality`). Metrics: the final evaluation's
    (``train_loss``, ``test_accuracy``, ``consensus``, ...), ``duration`` (simulated time),
    ``total_bytes``, ``mean_staleness``, ``worker_steps``, ``parameters`` and the summed worker
    counters (``counter:NAME``). Curves: each metric against epochs, and ``NAME@time`` against
    simulated time.
    """
    held_out = VALIDATION_FRACTION if validation else None
    problem = task_problem(task, seed, batch_size, held_out, sampling)
    if suboptimality:
        problem = with_suboptimality(problem)
    compute = ComputeModel(
        jitter=jitter, slowdown={int(k): float(v) for k, v in (slowdown or {}).items()}
    )
    network = NetworkModel()
    if transfer_cost is not None:
        flat = problem.engine(0).flat
        network = NetworkModel(bandwidth=flat.numel() * flat.element_size() / transfer_cost)
    trace = simulate(
        algorithm,
        problem,
        Cluster(workers, compute, network),
        epochs=epochs,
        seed=seed,
        evals_per_epoch=evals_per_epoch,
        lr=lr,
        **(hyper or {}),
    )
    final = trace.evals[-1]
    names = [k for k in final if k not in ("time", "epoch")]
    metrics = {k: float(final[k]) for k in names}
    metrics.update(
        duration=float(trace.duration),
        total_bytes=float(trace.total_bytes),
        mean_staleness=float(trace.mean_staleness()),
        worker_steps=float(len(trace.steps)),
        parameters=float(trace.settings["parameters"]),
    )
    for counter in {name for c in trace.counters for name in c}:
        metrics[f"counter:{counter}"] = float(trace.counter(counter))
    curves = {k: [[float(e["epoch"]), float(e[k])] for e in trace.evals] for k in names}
    curves |= {f"{k}@time": [[float(e["time"]), float(e[k])] for e in trace.evals] for k in names}
    return RunRecord(metrics, curves, trace.diverged, trace.wall_seconds)


def simulated(
    task: str, workers: int, evals_per_epoch: int = 2, hold_out: bool = True, **cluster: Any
) -> SpecFactory:
    """Simulated data-parallel runs of a method's algorithm (``Method.optimizer``) on
    ``workers`` workers training ``task``; ``cluster`` adds the kind's options (``slowdown``,
    ``jitter``, ``transfer_cost``, ``batch_size``, ``sampling``, ``suboptimality``). Tuning
    runs hold out a validation split, unless ``hold_out`` is False (for a task whose instance is
    drawn from the seed, the tuning seed's instance is already a separate one). A tuning run
    is scored on its final evaluation alone, so it evaluates only at its start and end
    (``evals_per_epoch=0``): evaluations read the model and change nothing in the run."""

    def make(method: Method, lr: float, epochs: int, seed: int, tuning: bool) -> RunSpec:
        return RunSpec.of(
            simulate_run,
            algorithm=method.runs,
            task=task,
            workers=workers,
            seed=seed,
            lr=lr,
            epochs=epochs,
            validation=tuning and hold_out,
            evals_per_epoch=0 if tuning else evals_per_epoch,
            hyper=dict(method.hyper),
            **cluster,
        )

    return make
