"""Measurements on any nn.Module."""

from gradkit.analysis.noise import NoiseToSignal, gradient_noise_to_signal

__all__ = ["NoiseToSignal", "gradient_noise_to_signal"]
