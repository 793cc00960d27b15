"""Gradient compressors and error-feedback memory: pure tensors, no communication."""

from gradkit.compress.compressors import QSGD, Compressor, Sign, TopK
from gradkit.compress.dgc import DGC, WARMUP_DENSITIES, sampled_threshold
from gradkit.compress.error_feedback import ErrorFeedback
from gradkit.compress.generators import DeviceGenerators
from gradkit.compress.payload import Payload
from gradkit.compress.signs import majority_vote, pack_signs, unpack_signs

__all__ = [
    "DGC",
    "QSGD",
    "WARMUP_DENSITIES",
    "Compressor",
    "DeviceGenerators",
    "ErrorFeedback",
    "Payload",
    "Sign",
    "TopK",
    "majority_vote",
    "pack_signs",
    "sampled_threshold",
    "unpack_signs",
]
