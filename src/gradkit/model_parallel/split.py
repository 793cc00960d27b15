"""Cutting an ``nn.Sequential`` into K consecutive stages, by the user's split points or balanced
by a cost per layer (parameter count by default, or measured time:
:func:`gradkit.model_parallel.layer_times`)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from torch import nn

from gradkit.checks import InputError


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def balanced_split_points(
    model: nn.Sequential, stages: int, costs: Sequence[float] | None = None
) -> list[int]:
    """Split points (indices where stages 2..K begin) that minimise the largest stage's cost, the
    sum of its layers' ``costs`` (one per layer; default each layer's parameter count), since
    the slowest stage sets a pipeline's pace; among those cuts, the one with the smallest sum of
    squared stage costs (the most even). Every stage begins at a layer with parameters, so every
    stage keeps at least one. Exact, by dynamic programming over the allowed cuts."""
    if not isinstance(stages, int) or stages < 1:
        raise InputError(f"stages must be a positive integer, got {stages!r}")
    if stages > len(model):
        raise InputError(f"{stages} stages need {stages} layers; the model has {len(model)}")
    with_params = [i for i, layer in enumerate(model) if _count(layer)]
    if stages > len(with_params):
        raise InputError(
            f"cannot cut {len(with_params)} layers with parameters into {stages} stages"
        )
    costs = [_count(layer) for layer in model] if costs is None else list(costs)
    if len(costs) != len(model):
        raise InputError(f"give one cost per layer: {len(model)} layers, {len(costs)} costs")
    if not all(isinstance(c, int | float) and math.isfinite(c) and c >= 0 for c in costs):
        raise InputError(f"layer costs must be finite numbers >= 0, got {costs}")
    bounds = [0, *with_params[1:], len(model)]  # where a stage may begin, and the end
    prefix = [0.0, *itertools.accumulate(float(c) for c in costs)]

    def stage_cost(a: int, b: int) -> float:
        return prefix[bounds[b]] - prefix[bounds[a]]

    def best_cuts(score, combine, allowed=lambda cost: True):
        """best[k][j]: the best score of k stages covering bounds[0]..bounds[j]."""
        best = [[math.inf] * len(bounds) for _ in range(stages + 1)]
        came_from = [[0] * len(bounds) for _ in range(stages + 1)]
        best[0][0] = 0.0
        for k in range(1, stages + 1):
            for j in range(k, len(bounds)):
                for i in range(k - 1, j):
                    cost = stage_cost(i, j)
                    if best[k - 1][i] < math.inf and allowed(cost):
                        value = combine(best[k - 1][i], score(cost))
                        if value < best[k][j]:
                            best[k][j], came_from[k][j] = value, i
        cuts, j = [], len(bounds) - 1
        for k in range(stages, 0, -1):
            j = came_from[k][j]
            cuts.append(bounds[j])
        return best[stages][-1], sorted(cuts)[1:]

    slowest, _ = best_cuts(lambda cost: cost, max)
    tolerance = 1e-12 * max(slowest, 1.0)
    _, points = best_cuts(lambda cost: cost**2, float.__add__, lambda c: c <= slowest + tolerance)
    return points


def split_sequential(
    model: nn.Module,
    stages: int | None = None,
    split_points: Sequence[int] | None = None,
    costs: Sequence[float] | None = None,
) -> list[nn.Sequential]:
    """The stages of ``model``, an ``nn.Sequential``: cut before each of ``split_points``
    (strictly increasing indices in 1..len(model) - 1), or into ``stages`` stages balanced by
    ``costs`` (one per layer; default parameter counts; :func:`balanced_split_points`). The
    stages share the model's modules (no copies). Every stage must hold parameters."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(
            f"the model must be an nn.Sequential (a chain of layers, each feeding the next), "
            f"got {type(model).__name__}"
        )
    layers = len(model)
    if (stages is None) == (split_points is None):
        raise InputError("give either stages (K) or split_points, not both and not neither")
    if split_points is None:
        split_points = balanced_split_points(model, stages, costs)
    points = list(split_points)
    bounds = [0, *points, layers]
    if not all(isinstance(p, int) for p in points) or any(
        a >= b for a, b in itertools.pairwise(bounds)
    ):
        raise InputError(
            f"split points must be strictly increasing integers in 1..{layers - 1}, got {points}"
        )
    layers_list = list(model)
    parts = [nn.Sequential(*layers_list[a:b]) for a, b in itertools.pairwise(bounds)]
    for k, (part, (a, b)) in enumerate(zip(parts, itertools.pairwise(bounds), strict=True)):
        if not _count(part):
            raise InputError(
                f"stage {k} (layers {a}..{b - 1}) has no parameters: it would never be updated; "
                "move the split points"
            )
    return parts
