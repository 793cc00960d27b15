"""The kinds of run claims declare: functions of JSON parameters returning a
:class:`~gradkit.experiments.RunRecord`, registered with
:func:`~gradkit.experiments.runs.run_kind`.

Where a kind lives: one module per family of runs, holding its run function(s) and, beside
them, the spec builder the claims call (a :data:`~gradkit.experiments.compare.SpecFactory`, or
a helper that runs every seed). A claim that needs a kind with no builder names the function
itself in :meth:`~gradkit.experiments.RunSpec.of`.
"""

from gradkit.experiments.kinds.async_delays import delayed
from gradkit.experiments.kinds.convex import full_batch
from gradkit.experiments.kinds.deep_cnn import deep_cnn, init_spectra
from gradkit.experiments.kinds.deep_linear import deep_linear
from gradkit.experiments.kinds.delay_tolerant import proximal
from gradkit.experiments.kinds.logistic_work import logistic_work
from gradkit.experiments.kinds.noise_stability import stability_epochs, stability_outcomes
from gradkit.experiments.kinds.pipeline_speed import ddg_speed_run
from gradkit.experiments.kinds.quadratic import noisy_quadratic
from gradkit.experiments.kinds.quantization import quantization_error_run
from gradkit.experiments.kinds.saddle import saddle_escape_run
from gradkit.experiments.kinds.simulated import simulated
from gradkit.experiments.kinds.spectra import spectra_of, window_spectra_spec
from gradkit.experiments.kinds.training import training

__all__ = [
    "ddg_speed_run",
    "deep_cnn",
    "deep_linear",
    "delayed",
    "full_batch",
    "init_spectra",
    "logistic_work",
    "noisy_quadratic",
    "proximal",
    "quantization_error_run",
    "saddle_escape_run",
    "simulated",
    "spectra_of",
    "stability_epochs",
    "stability_outcomes",
    "training",
    "window_spectra_spec",
]
