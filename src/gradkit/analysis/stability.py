"""Noise stability of a network (Arora, Ge, Neyshabur & Zhang, ICML 2018), measured through
forward hooks on any nn.Module.

The probed layers are its Linear and Conv1d/2d/3d modules, A^i, in the order a forward pass runs
them; x^i is the output of A^i (a pre-activation) and u^i its input (phi(x^{i-1}) when only an
activation sits between them).

- Noise attenuation: add eta to x^i with ||eta|| = nu ||x^i|| (per sample, Gaussian direction),
  run the rest of the net unchanged, and record r_{i->j} = ||x^j_noisy - x^j|| / ||x^j|| at
  every later layer j.
- Layer cushion mu_i = ||A^i u^i|| / (||A^i||_F ||u^i||) per sample (A^i without its bias; for a
  convolution ||A||_F is the Frobenius norm of the whole convolution operator, padding
  included). About 1/sqrt(fan-in) for a random Gaussian layer; the theory uses its minimum over
  the data.
- Activation contraction c_i = ||x^i|| / ||u^{i+1}|| per sample (the smallest c with
  ||phi(x^i)|| >= ||x^i|| / c is its maximum).
- Interlayer cushion mu_{i,j} = ||J^{i,j} x^i|| / (||J^{i,j}||_F ||x^i||) per sample, J^{i,j} the
  Jacobian of x^j with respect to x^i (torch.func; small nets), and mu_{i->} = min_{j >= i}
  (mu_{i,i} = 1/sqrt(h^i), J being the identity).
- Stable rank ||A||_F^2 / ||A||_2^2 of each weight (a convolution's kernel as a matrix out x
  in*kernel, not the operator).
"""

from __future__ import annotations

import contextlib
import statistics
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from gradkit.checks import InputError

PROBED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _norms(x: Tensor) -> Tensor:
    return x.flatten(1).norm(dim=1)


@contextlib.contextmanager
def _evaluating(model: nn.Module):
    """eval() and no_grad for the probes, the model's mode restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _record(model: nn.Module, inputs: Tensor, replace: dict[str, object] | None = None):
    """One forward pass: ``{name: (input, output)}`` of every probed layer in the order they ran.
    ``replace[name](output) -> output`` substitutes a layer's output on the way."""
    seen: dict[str, tuple[Tensor, Tensor]] = {}
    handles = []

    def hook(name):
        def record(module, args, output):
            if replace and name in replace:
                output = replace[name](output)
            seen[name] = (args[0], output)
            return output

        return record

    for name, module in model.named_modules():
        if isinstance(module, PROBED):
            handles.append(module.register_forward_hook(hook(name)))
    try:
        model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    if not seen:
        raise InputError("the model has no Linear or Conv1d/2d/3d layer to probe")
    return seen


def probed_layers(model: nn.Module, inputs: Tensor) -> list[str]:
    """Names of the probed layers in the order a forward pass on ``inputs`` runs them."""
    with _evaluating(model):
        return list(_record(model, inputs))


@dataclass
class NoiseStability:
    """r_{i->j} per sample for every layer j after the one noise was injected at."""

    injected_at: str
    relative_noise: float
    attenuation: dict[str, list[float]] = field(default_factory=dict)

    def median(self) -> dict[str, float]:
        return {j: statistics.median(r) for j, r in self.attenuation.items()}

    def summary(self) -> str:
        path = ", ".join(f"{j} {r:.3g}" for j, r in self.median().items())
        return f"noise {self.relative_noise:g} x ||x|| at {self.injected_at}: median r at {path}"


def noise_stability(
    model: nn.Module,
    inputs: Tensor,
    at: str | int = 0,
    relative: float = 0.1,
    generator: torch.Generator | None = None,
) -> NoiseStability:
    """Inject Gaussian noise of norm ``relative`` x ||x^i|| into the output of layer ``at`` (a
    name from :func:`probed_layers` or its position) and measure r_{i->j} at every later layer.
    ``generator`` (CPU) draws the noise directions."""
    if not (isinstance(relative, int | float) and relative > 0):
        raise InputError(f"relative noise must be a positive number, got {relative!r}")
    with _evaluating(model):
        clean = _record(model, inputs)
        names = list(clean)
        if isinstance(at, int):
            if not 0 <= at < len(names):
                raise InputError(f"layer position {at} is out of range: the model has {len(names)}")
            at = names[at]
        if at not in clean:
            raise InputError(f"unknown layer {at!r}; the probed layers are {', '.join(names)}")

        def perturb(output: Tensor) -> Tensor:
            direction = torch.randn(output.shape, generator=generator, dtype=torch.float64)
            direction = direction.to(output.device, output.dtype)
            scale = relative * _norms(output) / _norms(direction)
            return output + direction * scale.view(-1, *[1] * (output.ndim - 1))

        noisy = _record(model, inputs, {at: perturb})
    result = NoiseStability(at, float(relative))
    for name in names[names.index(at) :]:
        x, x_noisy = clean[name][1], noisy[name][1]
        result.attenuation[name] = (_norms(x_noisy - x) / _norms(x)).tolist()
    return result


def _operator_frobenius(layer: nn.Module, example: Tensor) -> float:
    """||A||_F of a layer's linear map (no bias) on inputs shaped like ``example``: the sum of
    squared entries of every row, i.e. of w^2 over the taps each output sees, which is the layer
    itself (w^2 as weight, no bias) applied to an input of ones."""
    if isinstance(layer, nn.Linear):
        return float(layer.weight.norm())
    ones = torch.ones_like(example[:1])
    return float(layer._conv_forward(ones, layer.weight.pow(2), None).sum().sqrt())


@dataclass
class LayerStatistics:
    """Per probed layer: the cushion and contraction per sample, and the stable rank."""

    name: str
    cushion: list[float]
    contraction: list[float] | None  # None for the last layer
    stable_rank: float

    def row(self) -> dict[str, float | str | None]:
        return {
            "layer": self.name,
            "cushion min": min(self.cushion),
            "cushion median": statistics.median(self.cushion),
            "contraction max": max(self.contraction) if self.contraction else None,
            "stable rank": self.stable_rank,
        }


def stable_rank(weight: Tensor) -> float:
    """||W||_F^2 / ||W||_2^2 of a weight as a matrix (out, everything else), in float64."""
    matrix = weight.detach().reshape(weight.shape[0], -1).double()
    return float(matrix.pow(2).sum() / torch.linalg.matrix_norm(matrix, ord=2) ** 2)


def layer_statistics(model: nn.Module, inputs: Tensor) -> list[LayerStatistics]:
    """Cushion, contraction and stable rank of every probed layer on ``inputs``."""
    with _evaluating(model):
        seen = _record(model, inputs)
        modules = dict(model.named_modules())
        names = list(seen)
        stats = []
        for i, name in enumerate(names):
            layer, (u, _) = modules[name], seen[name]
            weight_only = layer(u)
            if layer.bias is not None:
                weight_only = weight_only - layer.bias.view(1, -1, *[1] * (u.ndim - 2))
            cushion = _norms(weight_only) / (_operator_frobenius(layer, u) * _norms(u))
            contraction = None
            if i + 1 < len(names):
                following = seen[names[i + 1]][0]
                contraction = (_norms(seen[name][1]) / _norms(following)).tolist()
            rank = stable_rank(layer.weight)
            stats.append(LayerStatistics(name, cushion.tolist(), contraction, rank))
    return stats


def interlayer_cushions(model: nn.Module, inputs: Tensor) -> dict[str, dict[str, list[float]]]:
    """``cushions[i][j]``: mu_{i,j} per sample for every probed layer j at or after i. One
    Jacobian per (sample, i): use a few samples of a small net."""
    with _evaluating(model):
        names = list(_record(model, inputs[:1]))
    result: dict[str, dict[str, list[float]]] = {
        i: {j: [] for j in names[k:]} for k, i in enumerate(names)
    }
    for x in inputs:
        sample = x.unsqueeze(0)
        with _evaluating(model):
            clean = _record(model, sample)
        for k, at in enumerate(names):
            later = names[k:]

            def outputs(z: Tensor, at=at, later=later, sample=sample) -> tuple[Tensor, ...]:
                seen = _record(model, sample, {at: lambda _: z})
                return tuple(seen[j][1].flatten() for j in later)

            x_i = clean[at][1]
            was_training = model.training
            model.eval()
            try:
                jacobians = torch.func.jacrev(outputs)(x_i)
            finally:
                model.train(was_training)
            flat = x_i.flatten()
            for j, jac in zip(later, jacobians, strict=True):
                jac = jac.detach().reshape(jac.shape[0], -1)
                mu = (jac @ flat).norm() / (jac.norm() * flat.norm())
                result[at][j].append(float(mu))
    return result
