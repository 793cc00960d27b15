"""The one experiment protocol every claim uses.

- :mod:`~gradkit.experiments.runs`: a run as data (a registered run kind + JSON parameters) and
  its record;
- :mod:`~gradkit.experiments.kinds`: the run kinds, each beside the spec builder claims call;
- :mod:`~gradkit.experiments.cache` and :mod:`~gradkit.experiments.executor`: finished runs on
  disk keyed by their full configuration and the code, missing runs on every core;
- :mod:`~gradkit.experiments.search`: learning-rate search (>= 3 points per decade, each method
  in its own units, successive halving, the choice a local optimum at the full budget);
- :mod:`~gradkit.experiments.stats`: seed-paired intervals and the decisions built on them;
- :mod:`~gradkit.experiments.compare`: the protocol of a tuned comparison of methods.
"""

from gradkit.experiments.cache import RunCache, default_cache_dir
from gradkit.experiments.compare import (
    TUNING_SEEDS,
    BatchedRuns,
    Budget,
    Method,
    MethodOutcome,
    Metric,
    SearchAudit,
    SpecFactory,
    audit_searches,
    compare_on_problems,
    evaluation_seeds,
    paired,
    runs_at,
    runs_per_seed,
    tuned_runs,
)
from gradkit.experiments.executor import Executor, RunFailedError
from gradkit.experiments.kinds import (
    deep_cnn,
    deep_linear,
    delayed,
    full_batch,
    init_spectra,
    logistic_work,
    noisy_quadratic,
    proximal,
    simulated,
    stability_epochs,
    stability_outcomes,
    training,
)
from gradkit.experiments.runs import RunKind, RunRecord, RunSpec, run_kind
from gradkit.experiments.search import LrRange, SearchResult, halving_budgets, search_lr
from gradkit.experiments.stats import Decision, PairedInterval, paired_interval

__all__ = [
    "TUNING_SEEDS",
    "BatchedRuns",
    "Budget",
    "Decision",
    "Executor",
    "LrRange",
    "Method",
    "MethodOutcome",
    "Metric",
    "PairedInterval",
    "RunCache",
    "RunFailedError",
    "RunKind",
    "RunRecord",
    "RunSpec",
    "SearchAudit",
    "SearchResult",
    "SpecFactory",
    "audit_searches",
    "compare_on_problems",
    "deep_cnn",
    "deep_linear",
    "default_cache_dir",
    "delayed",
    "evaluation_seeds",
    "full_batch",
    "halving_budgets",
    "init_spectra",
    "logistic_work",
    "noisy_quadratic",
    "paired",
    "paired_interval",
    "proximal",
    "run_kind",
    "runs_at",
    "runs_per_seed",
    "search_lr",
    "simulated",
    "stability_epochs",
    "stability_outcomes",
    "training",
    "tuned_runs",
]
