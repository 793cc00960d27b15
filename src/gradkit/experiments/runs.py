"""A run is data: the kind of run (a registered function) and its parameters, and a JSON record
of what it produced. Being data, a run can be cached on disk, sent to another process and
compared.

A run kind is a function of JSON parameters returning a :class:`RunRecord`, registered with
:func:`run_kind` under its own name; a spec refers to the function object itself, so renaming a
kind fails where it is imported, not when a run is executed.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from gradkit.checks import InputError
from gradkit.experiments.fingerprint import code_fingerprint, machine_identity

CURVE_POINTS = 200
"""How many points a run records along a long curve (runs of different lengths align)."""


@dataclass(frozen=True)
class RunKind:
    """A registered run function; ``timed`` kinds measure wall-clock time, so their records are
    cached per machine (:func:`~gradkit.experiments.fingerprint.machine_identity`)."""

    function: Callable[..., RunRecord]
    timed: bool = False

    @property
    def name(self) -> str:
        return self.function.__name__


_KINDS: dict[str, RunKind] = {}


def run_kind(function: Callable | None = None, *, timed: bool = False):
    """Register ``function`` as a run kind named by its own name (``@run_kind`` or
    ``@run_kind(timed=True)``); the function is returned unchanged. Two kinds may not share a
    name."""

    def register(f: Callable) -> Callable:
        known = _KINDS.get(f.__name__)
        if known is not None and _origin(known.function) != _origin(f):
            raise InputError(
                f"run kind {f.__name__!r} is defined twice: in {known.function.__module__} and "
                f"in {f.__module__}"
            )
        _KINDS[f.__name__] = RunKind(f, timed)
        return f

    return register if function is None else register(function)


def _origin(function: Callable) -> tuple[str, str]:
    return function.__module__, function.__qualname__


def registered_kind(function: Callable) -> RunKind:
    """The registration of ``function``; a function that is not a run kind is refused."""
    kind = _KINDS.get(getattr(function, "__name__", ""))
    if kind is None or _origin(kind.function) != _origin(function):
        raise TypeError(f"{function!r} is not a run kind (register it with @run_kind)")
    return kind


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
            raise InputError(f"run parameters must be finite, got {value!r}")
        return value
    raise TypeError(f"run parameters must be JSON values, got {type(value).__name__}: {value!r}")


@dataclass(frozen=True)
class RunSpec:
    """The run kind ``kind`` called with ``params`` (JSON values) returns a :class:`RunRecord`.
    Two specs with equal kind and parameters are the same run."""

    kind: RunKind
    params: tuple[tuple[str, Any], ...]

    @classmethod
    def of(cls, function: Callable[..., RunRecord], **params: Any) -> RunSpec:
        """The run of the registered kind ``function`` with ``params``."""
        canonical = _canonical(params)
        return cls(registered_kind(function), tuple((k, _freeze(v)) for k, v in canonical.items()))

    @property
    def kwargs(self) -> dict[str, Any]:
        return {k: _thaw(v) for k, v in self.params}

    def key(self) -> str:
        """The cache key: the kind, the parameters, the fingerprint of the source the kind can
        execute and, for a timed kind, the machine."""
        identity = {
            "kind": self.kind.name,
            "params": self.kwargs,
            "code": code_fingerprint(self.kind.function.__module__),
        }
        if self.kind.timed:
            identity["machine"] = machine_identity()
        text = json.dumps(identity, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def describe(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"{self.kind.name}({args})"

    def execute(self) -> RunRecord:
        record = self.kind.function(**self.kwargs)
        if not isinstance(record, RunRecord):
            raise TypeError(f"{self.kind.name} returned {type(record).__name__}, not a RunRecord")
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
