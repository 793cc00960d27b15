"""Named tasks as :class:`~gradkit.distributed.Problem` for the simulator and TorchComm."""

from __future__ import annotations

from gradkit.distributed.problem import Problem
from gradkit.tasks.registry import Task, get_task
from gradkit.tasks.training import evaluation_metrics, make_loss, seeded_model

DISTRIBUTED_BATCH_SIZE = 32
"""Default per-worker batch: small enough that 64 workers each hold whole batches of mnist1d."""


def task_problem(task: Task | str, seed: int = 0, batch_size: int | None = None) -> Problem:
    """``task``'s data, model (initialised from ``seed``) and metrics as a distributed problem.
    ``batch_size`` is per worker (default ``DISTRIBUTED_BATCH_SIZE``)."""
    task = get_task(task) if isinstance(task, str) else task
    data = task.load(seed)
    loss_fn = make_loss(task.loss)
    return Problem(
        build_model=lambda: seeded_model(lambda: task.build_model(data, seed), seed),
        inputs=data.x_train,
        targets=data.y_train,
        loss_fn=loss_fn,
        batch_size=DISTRIBUTED_BATCH_SIZE if batch_size is None else batch_size,
        evaluate=lambda model: evaluation_metrics(model, data, loss_fn),
    )
