"""Named tasks trained by distributed algorithms, simulated or over torch.distributed."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from gradkit.distributed.algorithms import default_lr
from gradkit.distributed.problem import Problem
from gradkit.distributed.torch_comm import TorchComm
from gradkit.distributed.trace import Trace
from gradkit.sim import Cluster, simulate
from gradkit.tasks.convex import lbfgs_optimum
from gradkit.tasks.registry import Task, get_task
from gradkit.tasks.training import evaluation_metrics, make_loss, seeded_model

DISTRIBUTED_BATCH_SIZE = 32
"""Default per-worker batch: small enough that 64 workers each hold whole batches of mnist1d."""


def task_problem(
    task: Task | str,
    seed: int = 0,
    batch_size: int | None = None,
    validation: float | None = None,
    sampling: str = "shards",
) -> Problem:
    """``task``'s data, model (initialised from ``seed``) and metrics as a distributed problem.
    ``batch_size`` is per worker (default ``DISTRIBUTED_BATCH_SIZE``). With ``validation`` that
    fraction of the training set is held out (split drawn from ``seed``) and evaluated as the
    ``test_*`` metrics, for tuning. ``sampling``: see :class:`~gradkit.distributed.Problem`."""
    task = get_task(task) if isinstance(task, str) else task
    data = task.load(seed)
    if validation is not None:
        data = data.validation_split(validation, seed)
    loss_fn = make_loss(task.loss)
    return Problem(
        build_model=lambda: seeded_model(lambda: task.build_model(data, seed), seed),
        inputs=data.x_train,
        targets=data.y_train,
        loss_fn=loss_fn,
        batch_size=DISTRIBUTED_BATCH_SIZE if batch_size is None else batch_size,
        evaluate=lambda model: evaluation_metrics(model, data, loss_fn),
        sampling=sampling,
    )


def with_suboptimality(problem: Problem) -> Problem:
    """``problem`` whose evaluations add ``suboptimality`` = f(x) - f*, f the mean training loss.

    Both terms are computed in float64 (the float32 model's parameters copied into a float64
    copy), so a gap far below float32's resolution of f is still measured; f* comes from
    full-batch L-BFGS in float64 from the initial model. Meant for convex problems, whose f* is
    the global optimum.
    """
    model = problem.build_model().double()
    inputs = problem.inputs.double()
    targets = problem.targets.double() if problem.targets.is_floating_point() else problem.targets

    def objective():
        return problem.loss_fn(model(inputs), targets)

    optimum = lbfgs_optimum(list(model.parameters()), objective)
    base = problem.evaluate

    def evaluate(judged: torch.nn.Module) -> dict[str, float]:
        with torch.no_grad():
            for mine, theirs in zip(model.parameters(), judged.parameters(), strict=True):
                mine.copy_(theirs)
            gap = float(objective()) - optimum
        return {**(base(judged) if base is not None else {}), "suboptimality": gap}

    return dataclasses.replace(problem, evaluate=evaluate)


def simulate_task(
    algorithm: str,
    task: Task | str,
    cluster: Cluster,
    *,
    epochs: float,
    lr: float | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    evals_per_epoch: int = 2,
    on_progress: Callable[[int, int], None] | None = None,
    **hyper,
) -> Trace:
    """Simulate ``algorithm`` training ``task`` on ``cluster`` (see ``gradkit.sim.simulate``);
    ``lr`` defaults to the algorithm's (:func:`~gradkit.distributed.algorithms.default_lr`)."""
    return simulate(
        algorithm,
        task_problem(task, seed, batch_size),
        cluster,
        epochs=epochs,
        seed=seed,
        evals_per_epoch=evals_per_epoch,
        on_progress=on_progress,
        lr=default_lr(algorithm) if lr is None else lr,
        **hyper,
    )


def train_distributed(
    algorithm: str,
    task: Task | str,
    *,
    epochs: float,
    lr: float | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    slowdown: float = 1.0,
    timeout: float = 20.0,
    evals_per_epoch: int = 2,
    on_progress: Callable[[int, int], None] | None = None,
    **hyper,
) -> Trace:
    """This rank's part of a real run of ``algorithm`` on ``task`` (torch.distributed must be
    initialised, e.g. by torchrun); every rank returns the same trace, evaluated
    ``evals_per_epoch`` times per epoch (see :class:`~gradkit.distributed.TorchComm`). ``lr``
    defaults to the algorithm's."""
    return TorchComm(
        algorithm,
        task_problem(task, seed, batch_size),
        epochs=epochs,
        seed=seed,
        slowdown=slowdown,
        timeout=timeout,
        evals_per_epoch=evals_per_epoch,
        on_progress=on_progress,
        lr=default_lr(algorithm) if lr is None else lr,
        **hyper,
    ).run()
