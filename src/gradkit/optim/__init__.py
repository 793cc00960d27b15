"""torch.optim-compatible optimizers from the ICML 2018 notes."""

from gradkit.optim._base import NonFiniteGradientError
from gradkit.optim.batch_size import BatchSizeController, ProgressiveSampler, batch_statistics
from gradkit.optim.end_to_end import EndToEndGD, balanced_regressor, product_weight
from gradkit.optim.full_matrix import FullMatrixAdaGrad
from gradkit.optim.ggt import GGT
from gradkit.optim.lbfgs_memory import LBFGSMemory
from gradkit.optim.line_search import armijo_backtracking
from gradkit.optim.pbqn import ProgressiveBatchLBFGS
from gradkit.optim.per_sample import PerSampleGradientError, per_sample_gradients
from gradkit.optim.perturbed import PerturbedGD, paper_constants
from gradkit.optim.registry import OPTIMIZERS, OptimizerSpec, build_optimizer, optimizer_spec
from gradkit.optim.schedules import Schedule, ScheduleLR
from gradkit.optim.shampoo import Shampoo
from gradkit.optim.sign import SignSGD, Signum
from gradkit.optim.svag import MSVAG, SVAG

__all__ = [
    "GGT",
    "MSVAG",
    "OPTIMIZERS",
    "SVAG",
    "BatchSizeController",
    "EndToEndGD",
    "FullMatrixAdaGrad",
    "LBFGSMemory",
    "NonFiniteGradientError",
    "OptimizerSpec",
    "PerSampleGradientError",
    "PerturbedGD",
    "ProgressiveBatchLBFGS",
    "ProgressiveSampler",
    "Schedule",
    "ScheduleLR",
    "Shampoo",
    "SignSGD",
    "Signum",
    "armijo_backtracking",
    "balanced_regressor",
    "batch_statistics",
    "build_optimizer",
    "optimizer_spec",
    "paper_constants",
    "per_sample_gradients",
    "product_weight",
]
