"""torch.optim-compatible optimizers from the ICML 2018 notes."""

from gradkit.optim._base import NonFiniteGradientError
from gradkit.optim.full_matrix import FullMatrixAdaGrad
from gradkit.optim.ggt import GGT
from gradkit.optim.registry import OPTIMIZERS, OptimizerSpec, build_optimizer
from gradkit.optim.shampoo import Shampoo
from gradkit.optim.sign import SignSGD, Signum
from gradkit.optim.svag import MSVAG, SVAG

__all__ = [
    "GGT",
    "MSVAG",
    "OPTIMIZERS",
    "SVAG",
    "FullMatrixAdaGrad",
    "NonFiniteGradientError",
    "OptimizerSpec",
    "Shampoo",
    "SignSGD",
    "Signum",
    "build_optimizer",
]
