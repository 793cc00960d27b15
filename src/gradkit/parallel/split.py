"""Cutting an ``nn.Sequential`` into K consecutive stages, by the user's split points or balanced
by parameter count."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from torch import nn


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def balanced_split_points(model: nn.Sequential, stages: int) -> list[int]:
    """Split points (indices where stages 2..K begin) that give each stage about 1/K of the
    parameters: stage k ends where the running parameter count comes closest to k/K of the
    total, every stage keeping at least one layer with parameters."""
    counts = [_count(layer) for layer in model]
    with_params = [i for i, c in enumerate(counts) if c]
    if stages > len(with_params):
        raise ValueError(
            f"cannot cut {len(with_params)} layers with parameters into {stages} stages"
        )
    total, points = sum(counts), []
    cumulative = list(itertools.accumulate(counts))
    for k in range(1, stages):
        # stage k begins at a layer with parameters, after the previous start, leaving enough
        # parameter layers for the stages after it
        low = with_params.index(points[-1]) + 1 if points else 1
        candidates = with_params[low : len(with_params) - (stages - 1 - k)]
        target = k * total / stages
        points.append(min(candidates, key=lambda i: abs(cumulative[i - 1] - target)))
    return points


def split_sequential(
    model: nn.Module, stages: int | None = None, split_points: Sequence[int] | None = None
) -> list[nn.Sequential]:
    """The stages of ``model``, an ``nn.Sequential``: cut before each of ``split_points``
    (strictly increasing indices in 1..len(model) - 1), or into ``stages`` stages balanced by
    parameter count (:func:`balanced_split_points`). The stages share the model's modules (no
    copies). Every stage must hold parameters."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(
            f"the model must be an nn.Sequential (a chain of layers, each feeding the next), "
            f"got {type(model).__name__}"
        )
    layers = len(model)
    if (stages is None) == (split_points is None):
        raise ValueError("give either stages (K) or split_points, not both and not neither")
    if split_points is None:
        if not isinstance(stages, int) or stages < 1:
            raise ValueError(f"stages must be a positive integer, got {stages!r}")
        if stages > layers:
            raise ValueError(f"{stages} stages need {stages} layers; the model has {layers}")
        split_points = balanced_split_points(model, stages)
    points = list(split_points)
    bounds = [0, *points, layers]
    if not all(isinstance(p, int) for p in points) or any(
        a >= b for a, b in itertools.pairwise(bounds)
    ):
        raise ValueError(
            f"split points must be strictly increasing integers in 1..{layers - 1}, got {points}"
        )
    layers_list = list(model)
    parts = [nn.Sequential(*layers_list[a:b]) for a, b in itertools.pairwise(bounds)]
    for k, (part, (a, b)) in enumerate(zip(parts, itertools.pairwise(bounds), strict=True)):
        if not _count(part):
            raise ValueError(
                f"stage {k} (layers {a}..{b - 1}) has no parameters: it would never be updated; "
                "move the split points"
            )
    return parts
