"""The kinds of run claims declare, as functions of JSON parameters returning a RunRecord."""

from __future__ import annotations

from gradkit.experiments.runs import RunRecord
from gradkit.tasks import get_task, train

VALIDATION_FRACTION = 0.2


def train_task(
    task: str,
    optimizer: str,
    lr: float,
    seed: int,
    epochs: int,
    validation: bool = False,
    evals_per_epoch: int = 1,
) -> RunRecord:
    """Train a registered task with a registered optimizer at ``lr`` from ``seed``.

    With ``validation`` the task's training set is split (``VALIDATION_FRACTION`` held out,
    split drawn from ``seed``) and the held-out part is what the record calls ``test_*``: the
    tuning runs never see the test set.
    """
    spec = get_task(task)
    data = spec.load(seed)
    if validation:
        data = data.validation_split(VALIDATION_FRACTION, seed)
    result = train(
        spec,
        optimizer,
        lr=lr,
        epochs=epochs,
        seed=seed,
        data=data,
        evals_per_epoch=evals_per_epoch,
    )
    final = result.evals[-1]
    metrics = {k: float(v) for k, v in final.items() if k not in ("epoch", "step")}
    curves = {name: [[float(e["epoch"]), float(e[name])] for e in result.evals] for name in metrics}
    return RunRecord(metrics, curves, result.diverged, result.seconds)
