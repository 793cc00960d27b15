"""Model parallelism: decoupled parallel backpropagation (DDG, Huo et al., ICML 2018), a model
cut into stages trained with delayed gradients, in one process or one stage per rank."""

from gradkit.parallel.ddg import DDG
from gradkit.parallel.split import balanced_split_points, split_sequential
from gradkit.parallel.stage import VARIANTS, DelayedStage

__all__ = ["DDG", "VARIANTS", "DelayedStage", "balanced_split_points", "split_sequential"]
