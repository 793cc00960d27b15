"""Named tasks trained by distributed algorithms, simulated or over torch.distributed."""

from __future__ import annotations

from collections.abc import Callable

from gradkit.distributed.problem import Problem
from gradkit.distributed.torch_comm import TorchComm
from gradkit.distributed.trace import Trace
from gradkit.sim import Cluster, simulate
from gradkit.tasks.registry import Task, get_task
from gradkit.tasks.training import evaluation_metrics, make_loss, seeded_model

DISTRIBUTED_BATCH_SIZE = 32
"""Default per-worker batch: small enough that 64 workers each hold whole batches of mnist1d."""
DEFAULT_LR = 0.1


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


def simulate_task(
    algorithm: str,
    task: Task | str,
    cluster: Cluster,
    *,
    epochs: float,
    lr: float = DEFAULT_LR,
    seed: int = 0,
    batch_size: int | None = None,
    evals_per_epoch: int = 2,
    on_progress: Callable[[int, int], None] | None = None,
    **hyper,
) -> Trace:
    """Simulate ``algorithm`` training ``task`` on ``cluster`` (see ``gradkit.sim.simulate``)."""
    return simulate(
        algorithm,
        task_problem(task, seed, batch_size),
        cluster,
        epochs=epochs,
        seed=seed,
        evals_per_epoch=evals_per_epoch,
        on_progress=on_progress,
        lr=lr,
        **hyper,
    )


def train_distributed(
    algorithm: str,
    task: Task | str,
    *,
    epochs: float,
    lr: float = DEFAULT_LR,
    seed: int = 0,
    batch_size: int | None = None,
    slowdown: float = 1.0,
    timeout: float = 20.0,
    on_progress: Callable[[int, int], None] | None = None,
    **hyper,
) -> Trace:
    """This rank's part of a real run of ``algorithm`` on ``task`` (torch.distributed must be
    initialised, e.g. by torchrun); every rank returns the same trace."""
    return TorchComm(
        algorithm,
        task_problem(task, seed, batch_size),
        epochs=epochs,
        seed=seed,
        slowdown=slowdown,
        timeout=timeout,
        on_progress=on_progress,
        lr=lr,
        **hyper,
    ).run()
