"""A run is data: the function that performs it and its parameters, and a JSON record of what it
produced. Being data, a run can be cached on disk, sent to another process and compared."""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gradkit

FINGERPRINTED = ("optim", "tasks", "sim", "distributed", "compress", "analysis", "experiments")
"""Packages whose source decides what a run computes; editing any of them invalidates the cache."""


@functools.cache
def code_fingerprint() -> str:
    """A hash of gradkit's version and of every source file a run can execute."""
    root = Path(gradkit.__file__).parent
    digest = hashlib.sha256(gradkit.__version__.encode())
    for package in FINGERPRINTED:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _canonical(value: Any) -> Any:
    """Parameters as JSON values with a stable form (tuples become lists, floats stay exact)."""
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"run parameters must be finite, got {value!r}")
        return value
    raise TypeError(f"run parameters must be JSON values, got {type(value).__name__}: {value!r}")


@dataclass(frozen=True)
class RunSpec:
    """``function`` ("package.module:name") called with ``params`` (JSON values) returns a
    :class:`RunRecord`. Two specs with equal function and parameters are the same run."""

    function: str
    params: tuple[tuple[str, Any], ...]

    @classmethod
    def of(cls, function: str, **params: Any) -> RunSpec:
        canonical = _canonical(params)
        return cls(function, tuple((k, _freeze(v)) for k, v in canonical.items()))

    @property
    def kwargs(self) -> dict[str, Any]:
        return {k: _thaw(v) for k, v in self.params}

    def key(self) -> str:
        """The cache key: the function, the parameters and the code fingerprint."""
        text = json.dumps(
            {"function": self.function, "params": self.kwargs, "code": code_fingerprint()},
            sort_keys=True,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def describe(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"{self.function.rsplit(':', 1)[-1]}({args})"

    def execute(self) -> RunRecord:
        module, _, name = self.function.partition(":")
        record = getattr(importlib.import_module(module), name)(**self.kwargs)
        if not isinstance(record, RunRecord):
            raise TypeError(f"{self.function} returned {type(record).__name__}, not a RunRecord")
        return record


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return ("__dict__", tuple((k, _freeze(v)) for k, v in value.items()))
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "__dict__":
        return {k: _thaw(v) for k, v in value[1]}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


@dataclass
class RunRecord:
    """What a run produced: final metrics, curves ``name -> [[x, value], ...]`` (x in epochs,
    steps or simulated time, as the run says), whether it diverged, and its wall time."""

    metrics: dict[str, float]
    curves: dict[str, list[list[float]]] = field(default_factory=dict)
    diverged: bool = False
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        return cls(**data)

    def metric(self, name: str) -> float:
        """The final value of ``name``; a diverged run's losses are inf and accuracies 0."""
        value = self.metrics.get(name, math.nan)
        if self.diverged or not math.isfinite(value):
            return 0.0 if "accuracy" in name else math.inf
        return value

    def curve(self, name: str) -> tuple[list[float], list[float]]:
        points = self.curves.get(name, [])
        return [p[0] for p in points], [p[1] for p in points]
