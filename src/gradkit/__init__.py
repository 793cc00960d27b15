"""gradkit: optimization and distributed-training methods from the ICML 2018 notes, as real
PyTorch software, with every claim of the notes reproducible by ``gradkit reproduce``."""

__version__ = "0.1.0"
