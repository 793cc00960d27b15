"""Offline datasets, small models, named tasks and the one training loop."""

from gradkit.tasks.datasets import Dataset, breast_cancer, digits, mnist1d
from gradkit.tasks.models import MLP, CNN1d, CNN2d, SequenceGRU, VanillaCNN
from gradkit.tasks.registry import TASKS, Task, get_task, quadratic_task
from gradkit.tasks.synthetic import (
    NoisyQuadratic,
    correlated_logistic,
    lp_regression,
    quadratic_hessian,
    quadratic_noise,
)
from gradkit.tasks.training import TrainResult, evaluate, fit, make_loss, seeded_model, train

__all__ = [
    "MLP",
    "TASKS",
    "CNN1d",
    "CNN2d",
    "Dataset",
    "NoisyQuadratic",
    "SequenceGRU",
    "Task",
    "TrainResult",
    "VanillaCNN",
    "breast_cancer",
    "correlated_logistic",
    "digits",
    "evaluate",
    "fit",
    "get_task",
    "lp_regression",
    "make_loss",
    "mnist1d",
    "quadratic_hessian",
    "quadratic_noise",
    "quadratic_task",
    "seeded_model",
    "train",
]
