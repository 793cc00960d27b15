"""Deep Gradient Compression (Lin et al., ICLR 2018): a stateful sparsifier for one tensor."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from gradkit.checks import InputError
from gradkit.compress.compressors import sparse_payload, sparse_to_dense
from gradkit.compress.generators import DeviceGenerators
from gradkit.compress.payload import Payload
from gradkit.compress.signs import check_finite

WARMUP_DENSITIES = (0.25, 0.063, 0.015, 0.004)
"""The authors' warm-up: density per stage before the final density (75% ... 99.6% sparsity)."""


def sampled_threshold(
    magnitude: Tensor, density: float, sample_ratio: float, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """(mask, threshold) selecting about ``density`` of the entries of ``magnitude`` (>= 0).

    The threshold is the k-th largest of a strided sample of ``sample_ratio`` of the entries
    (random start), as in the authors' code; if the selected count is outside [0.8, 1.3] times
    the target, it is refined with an exact top-k over the selected entries (too many) or over
    all entries (too few).
    """
    n = magnitude.numel()
    target = max(1, math.ceil(density * n))
    stride = max(1, round(1 / sample_ratio))
    start = (
        int(torch.randint(stride, (), generator=generator, device=magnitude.device))
        if stride > 1
        else 0
    )
    sample = magnitude[start::stride]
    if sample.numel() == 0:  # fewer entries than the stride: exact
        threshold = magnitude.topk(target, sorted=False).values.min()
        return magnitude >= threshold, threshold
    k = max(1, math.ceil(density * sample.numel()))
    threshold = sample.topk(k, sorted=False).values.min()
    mask = magnitude >= threshold
    count = int(torch.count_nonzero(mask))
    if count > 1.3 * target:
        threshold = magnitude[mask].topk(target, sorted=False).values.min()
        mask = magnitude >= threshold
    elif count < 0.8 * target:
        threshold = magnitude.topk(target, sorted=False).values.min()
        mask = magnitude >= threshold
    return mask, threshold


class DGC:
    r"""DGC for one tensor: the local gradient, momentum-corrected and accumulated, is sent
    only where it is large; the rest stays in the accumulator.

    .. math::
        g \leftarrow \mathrm{clip}(g, c / \sqrt{N}) \quad (\text{local clipping, optional})

        u \leftarrow m u + g, \qquad v \leftarrow v + u \quad (\text{momentum correction; without
        it } v \leftarrow v + g)

        \text{mask} = |v| \ge \text{thr}, \quad \text{send } v[\text{mask}], \quad
        v \leftarrow v \odot \neg\text{mask}, \quad u \leftarrow u \odot \neg\text{mask}
        \ (\text{momentum factor masking})

    The receiver averages the workers' sparse tensors and applies plain SGD (momentum was
    applied locally). The density follows ``warmup`` (one density per stage of
    ``warmup_steps`` calls) and then ``density``. The threshold is sampled
    (:func:`sampled_threshold`) or exact (``sampled=False``). Every component can be switched
    off for ablations; with density 1, no clipping, no masking and no warm-up, the sent tensor
    is the heavy-ball buffer u, i.e. momentum SGD. Wire size as :class:`TopK`.
    """

    def __init__(
        self,
        density: float = 0.001,
        *,
        momentum: float = 0.9,
        momentum_correction: bool = True,
        factor_masking: bool = True,
        clip_norm: float | None = None,
        world_size: int = 1,
        warmup: tuple[float, ...] = WARMUP_DENSITIES,
        warmup_steps: int = 0,
        sampled: bool = True,
        sample_ratio: float = 0.01,
        seed: int = 0,
    ):
        if not (isinstance(density, int | float) and 0 < density <= 1):
            raise InputError(f"density must be in (0, 1], got {density!r}")
        if not 0 <= momentum < 1:
            raise InputError(f"momentum must be in [0, 1), got {momentum!r}")
        if clip_norm is not None and not clip_norm > 0:
            raise InputError(f"clip_norm must be positive or None, got {clip_norm!r}")
        if not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise InputError(f"warmup_steps must be an integer >= 0, got {warmup_steps!r}")
        if not 0 < sample_ratio <= 1:
            raise InputError(f"sample_ratio must be in (0, 1], got {sample_ratio!r}")
        if any(not 0 < d <= 1 for d in warmup):
            raise InputError(f"warmup densities must be in (0, 1], got {warmup!r}")
        self.density, self.momentum = density, momentum
        self.momentum_correction, self.factor_masking = momentum_correction, factor_masking
        self.clip_norm, self.world_size = clip_norm, world_size
        self.warmup, self.warmup_steps = tuple(warmup), warmup_steps
        self.sampled, self.sample_ratio = sampled, sample_ratio
        self.generators = DeviceGenerators(seed)
        self.steps = 0
        self.u: Tensor | None = None
        self.v: Tensor | None = None

    def current_density(self) -> float:
        stage = self.steps // self.warmup_steps if self.warmup_steps else len(self.warmup)
        return self.warmup[stage] if stage < len(self.warmup) else self.density

    def compress(self, g: Tensor) -> Payload:
        check_finite(g, "gradient")
        flat = g.detach().reshape(-1).float()
        if self.v is None:
            self.u, self.v = torch.zeros_like(flat), torch.zeros_like(flat)
        elif self.v.numel() != flat.numel():
            raise InputError(f"gradient of {flat.numel()} entries; this DGC holds {self.v.numel()}")
        if self.clip_norm is not None:
            limit = self.clip_norm / math.sqrt(self.world_size)
            norm = float(torch.linalg.vector_norm(flat))
            if norm > limit:
                flat = flat * (limit / norm)
        if self.momentum_correction:
            self.u.mul_(self.momentum).add_(flat)
            self.v.add_(self.u)
        else:
            self.v.add_(flat)
        density = self.current_density()
        magnitude = self.v.abs()
        if density >= 1:
            mask = torch.ones_like(magnitude, dtype=torch.bool)
        elif self.sampled:
            generator = self.generators.on(magnitude.device)
            mask, _ = sampled_threshold(magnitude, density, self.sample_ratio, generator)
        else:
            top = magnitude.topk(max(1, math.ceil(density * magnitude.numel())), sorted=False)
            mask = torch.zeros_like(magnitude, dtype=torch.bool)
            mask[top.indices] = True
        indices = mask.nonzero().view(-1)
        payload = sparse_payload(self.v[indices].to(g.dtype), indices, g)
        self.v[indices] = 0
        if self.factor_masking and self.momentum_correction:
            self.u[indices] = 0
        self.steps += 1
        return payload

    def decompress(self, payload: Payload) -> Tensor:
        return sparse_to_dense([payload])

    def decompress_sum(self, payloads: list[Payload]) -> Tensor:
        return sparse_to_dense(payloads)

    def state_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "u": self.u,
            "v": self.v,
            **self.generators.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = state["steps"]
        self.u = None if state["u"] is None else state["u"].clone()
        self.v = None if state["v"] is None else state["v"].clone()
        self.generators.load_state_dict(state)
