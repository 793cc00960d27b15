"""torch.optim-compatible optimizers from the ICML 2018 notes."""

from gradkit.optim._base import NonFiniteGradientError
from gradkit.optim.registry import OPTIMIZERS, OptimizerSpec, build_optimizer
from gradkit.optim.sign import SignSGD, Signum
from gradkit.optim.svag import MSVAG, SVAG

__all__ = [
    "MSVAG",
    "OPTIMIZERS",
    "SVAG",
    "NonFiniteGradientError",
    "OptimizerSpec",
    "SignSGD",
    "Signum",
    "build_optimizer",
]
