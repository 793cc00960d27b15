"""Small models for the offline tasks. Only the residual MLP uses batch norm (the Shampoo claim
needs nets without it; DDG's claim follows the paper's ResNets)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class MLP(nn.Sequential):
    """Fully connected ReLU network: in -> hidden[0] -> ... -> out; inputs are flattened."""

    def __init__(self, in_features: int, hidden: Sequence[int], out_features: int) -> None:
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, out_features))
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """x + W2 relu(BN(W1 x)): a fully connected residual block of constant width, with batch
    norm like a ResNet's."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.inner, self.outer = nn.Linear(width, width), nn.Linear(width, width)
        self.norm = nn.BatchNorm1d(width)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.outer(torch.relu(self.norm(self.inner(x))))


class ResidualMLP(nn.Sequential):
    """in -> width (ReLU) -> ``blocks`` residual blocks -> out, inputs flattened: a deep
    ``nn.Sequential`` that model parallelism (DDG) can cut between any two blocks (the only
    model here with batch norm, like the paper's ResNets)."""

    def __init__(self, in_features: int, width: int, blocks: int, out_features: int) -> None:
        residual = [ResidualBlock(width) for _ in range(blocks)]
        super().__init__(nn.Flatten(), nn.Linear(in_features, width), nn.ReLU(), *residual,
                         nn.Linear(width, out_features))  # fmt: skip


class CNN1d(nn.Sequential):
    """1-D CNN for length-40 signals such as mnist1d: three strided convolutions, then linear;
    with ``batch_norm``, a BatchNorm1d after each convolution (before its ReLU)."""

    def __init__(
        self, length: int = 40, channels: int = 32, num_classes: int = 10, batch_norm: bool = False
    ) -> None:
        out_length = length
        for _ in range(3):
            out_length = (out_length - 1) // 2 + 1
        convolutions = [
            nn.Conv1d(1, channels, 5, stride=2, padding=2),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1),
        ]
        super().__init__(
            nn.Unflatten(1, (1, length)),
            *_activated(convolutions, nn.BatchNorm1d if batch_norm else None),
            nn.Flatten(),
            nn.Linear(channels * out_length, num_classes),
        )


class CNN2d(nn.Sequential):
    """2-D CNN for 1x8x8 digit images: two convolutions (the second strided), then linear;
    with ``batch_norm``, a BatchNorm2d after each convolution (before its ReLU)."""

    def __init__(self, channels: int = 16, num_classes: int = 10, batch_norm: bool = False) -> None:
        convolutions = [
            nn.Conv2d(1, channels, 3, padding=1),
            nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1),
        ]
        super().__init__(
            *_activated(convolutions, nn.BatchNorm2d if batch_norm else None),
            nn.Flatten(),
            nn.Linear(2 * channels * 4 * 4, num_classes),
        )


def _activated(convolutions: list[nn.Module], norm) -> list[nn.Module]:
    """Each convolution followed by ``norm(channels)`` (if given) and a ReLU. The
    normalisation layers draw nothing from the random state, so with and without them the
    convolutions are initialised alike."""
    layers: list[nn.Module] = []
    for conv in convolutions:
        layers += [conv, *([norm(conv.out_channels)] if norm else []), nn.ReLU()]
    return layers


class SequenceGRU(nn.Module):
    """Reads a (batch, length) signal as a sequence of ``length / chunk`` steps of ``chunk``
    consecutive values with a GRU, and classifies from the last hidden state."""

    def __init__(self, hidden: int = 64, num_classes: int = 10, chunk: int = 4) -> None:
        super().__init__()
        self.chunk = chunk
        self.gru = nn.GRU(chunk, hidden, batch_first=True)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        _, last = self.gru(x.reshape(len(x), -1, self.chunk))
        return self.head(last[-1])


class VanillaCNN(nn.Module):
    """A vanilla deep CNN (Xiao et al. 2018): ``stem`` (3x3 convolution from ``in_channels`` to
    ``channels``, tanh), ``body`` (``depth`` blocks of 3x3 convolution ``channels`` ->
    ``channels`` and tanh), ``readout`` (flatten, linear). Circular padding everywhere (what
    the mean-field theory assumes), no normalisation, no residual connections."""

    def __init__(
        self,
        depth: int,
        channels: int = 8,
        in_channels: int = 1,
        size: int = 8,
        num_classes: int = 10,
    ) -> None:
        super().__init__()

        def block(c_in: int) -> nn.Sequential:
            conv = nn.Conv2d(c_in, channels, 3, padding=1, padding_mode="circular")
            return nn.Sequential(conv, nn.Tanh())

        self.stem = block(in_channels)
        self.body = nn.Sequential(*(block(channels) for _ in range(depth)))
        self.readout = nn.Sequential(nn.Flatten(), nn.Linear(channels * size * size, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.readout(self.body(self.stem(x)))
