"""Measurements on any nn.Module."""

from gradkit.analysis.noise import NoiseToSignal, gradient_noise_to_signal
from gradkit.analysis.spectrum import GradientWindow, WindowSpectrum, window_spectrum

__all__ = [
    "GradientWindow",
    "NoiseToSignal",
    "WindowSpectrum",
    "gradient_noise_to_signal",
    "window_spectrum",
]
