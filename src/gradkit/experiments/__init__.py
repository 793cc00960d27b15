"""The one experiment protocol every claim uses.

- :mod:`~gradkit.experiments.runs`: a run as data (function + JSON parameters) and its record;
- :mod:`~gradkit.experiments.cache` and :mod:`~gradkit.experiments.executor`: finished runs on
  disk keyed by their full configuration and the code, missing runs on every core;
- :mod:`~gradkit.experiments.search`: learning-rate search (>= 3 points per decade, each method
  in its own units, widening at the edges, successive halving);
- :mod:`~gradkit.experiments.stats`: seed-paired intervals and the decisions built on them;
- :mod:`~gradkit.experiments.compare`: a tuned comparison of optimizers on a training task.
"""

from gradkit.experiments.cache import RunCache, default_cache_dir
from gradkit.experiments.compare import (
    TUNING_SEEDS,
    Budget,
    Method,
    MethodOutcome,
    Metric,
    compare_on_problems,
    deep_cnn,
    deep_linear,
    full_batch,
    logistic_work,
    paired,
    runs_at,
    simulated,
    training,
    tuned_runs,
)
from gradkit.experiments.executor import Executor, RunFailedError
from gradkit.experiments.runs import RunRecord, RunSpec
from gradkit.experiments.search import LrRange, SearchResult, halving_budgets, search_lr
from gradkit.experiments.stats import Decision, PairedInterval, paired_interval

__all__ = [
    "TUNING_SEEDS",
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
    "RunRecord",
    "RunSpec",
    "SearchResult",
    "compare_on_problems",
    "deep_cnn",
    "deep_linear",
    "default_cache_dir",
    "full_batch",
    "halving_budgets",
    "logistic_work",
    "paired",
    "paired_interval",
    "runs_at",
    "search_lr",
    "simulated",
    "training",
    "tuned_runs",
]
