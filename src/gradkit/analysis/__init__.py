"""Measurements on any nn.Module."""

from gradkit.analysis.compression import (
    CompressionResult,
    compress,
    matrix_project,
    smallest_compression,
    svd_truncate,
)
from gradkit.analysis.jacobian import JacobianSpectrum, jacobian_spectra_along, jacobian_spectrum
from gradkit.analysis.noise import NoiseToSignal, gradient_noise_to_signal
from gradkit.analysis.spectrum import GradientWindow, WindowSpectrum, window_spectrum
from gradkit.analysis.stability import (
    LayerStatistics,
    NoiseStability,
    interlayer_cushions,
    layer_statistics,
    noise_stability,
    probed_layers,
    stable_rank,
)

__all__ = [
    "CompressionResult",
    "GradientWindow",
    "JacobianSpectrum",
    "LayerStatistics",
    "NoiseStability",
    "NoiseToSignal",
    "WindowSpectrum",
    "compress",
    "gradient_noise_to_signal",
    "interlayer_cushions",
    "jacobian_spectra_along",
    "jacobian_spectrum",
    "layer_statistics",
    "matrix_project",
    "noise_stability",
    "probed_layers",
    "smallest_compression",
    "stable_rank",
    "svd_truncate",
    "window_spectrum",
]
