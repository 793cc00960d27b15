"""Model parallelism: decoupled parallel backpropagation (DDG, Huo et al., ICML 2018), a model
cut into stages trained with delayed gradients, in one process (:class:`DDG`) or one stage per
rank (:class:`DistributedDDG`); and the local-loss baseline it is measured against
(:class:`LocalLosses`)."""

from gradkit.model_parallel.costs import (
    BALANCES,
    StageCost,
    balanced_by,
    layer_times,
    measure_stage_costs,
)
from gradkit.model_parallel.ddg import DDG
from gradkit.model_parallel.distributed import DistributedDDG, StageFailedError
from gradkit.model_parallel.local import LocalLosses, default_heads
from gradkit.model_parallel.split import balanced_split_points, split_sequential
from gradkit.model_parallel.stage import VARIANTS, DelayedStage

__all__ = [
    "BALANCES",
    "DDG",
    "VARIANTS",
    "DelayedStage",
    "DistributedDDG",
    "LocalLosses",
    "StageCost",
    "StageFailedError",
    "balanced_by",
    "balanced_split_points",
    "default_heads",
    "layer_times",
    "measure_stage_costs",
    "split_sequential",
]
