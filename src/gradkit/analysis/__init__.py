"""Measurements on any nn.Module."""

from gradkit.analysis.jacobian import JacobianSpectrum, jacobian_spectrum
from gradkit.analysis.noise import NoiseToSignal, gradient_noise_to_signal
from gradkit.analysis.spectrum import GradientWindow, WindowSpectrum, window_spectrum
from gradkit.analysis.stability import (
    LayerStatistics,
    NoiseStability,
    layer_statistics,
    noise_stability,
    probed_layers,
    stable_rank,
)

__all__ = [
    "GradientWindow",
    "JacobianSpectrum",
    "LayerStatistics",
    "NoiseStability",
    "NoiseToSignal",
    "WindowSpectrum",
    "gradient_noise_to_signal",
    "jacobian_spectrum",
    "layer_statistics",
    "noise_stability",
    "probed_layers",
    "stable_rank",
    "window_spectrum",
]
