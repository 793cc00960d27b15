"""What a cached run depends on besides its parameters: the source it can execute, and, for a run
that measures wall-clock time, the machine it ran on.

A run kind's source is the import closure of the module that defines it: that module, every
``gradkit`` module it imports (at the top or inside a function, absolutely or relatively), the
modules those import, and so on, with the ``__init__.py`` of every package on the way (importing
``gradkit.a.b`` executes ``gradkit/a/__init__.py``). The closure is read from the source with
:mod:`ast`, so editing any file a run can execute changes its fingerprint, and editing a file it
cannot reach (a claim, the report) does not.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import os
import platform
import sys
from pathlib import Path

import gradkit
from gradkit.checks import InputError

PACKAGE = "gradkit"


def package_root() -> Path:
    """The directory of the installed ``gradkit`` package."""
    return Path(gradkit.__file__).parent


def _module_file(module: str, root: Path) -> Path | None:
    """The file of ``gradkit`` module ``module`` under ``root`` (None for a name that is not a
    module, such as a function imported with ``from gradkit.x import name``)."""
    package, *parts = module.split(".")
    if package != PACKAGE:
        return None
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(path: Path, module: str) -> set[str]:
    """Every ``gradkit`` module name ``path`` (module ``module``) imports anywhere in its body,
    with the packages above each."""
    is_package = path.name == "__init__.py"
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    modules = set()
    for name in names:
        parts = name.split(".")
        if parts[0] == PACKAGE:
            modules.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return modules


def import_closure(module: str, root: Path | None = None) -> list[Path]:
    """The files of ``module`` and of every ``gradkit`` module it reaches by imports, sorted.
    ``module`` may live outside ``gradkit`` (a test's run kinds): then its own file starts the
    walk."""
    root = package_root() if root is None else root
    if module.split(".")[0] == PACKAGE:
        start = _module_file(module, root)
    else:
        start = Path(sys.modules[module].__file__)
    if start is None:
        raise InputError(f"no source file for module {module!r} under {root}")
    parts = module.split(".")
    pending = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    seen: dict[str, Path] = {}
    while pending:
        name = pending.pop()
        path = start if name == module else _module_file(name, root)
        if name in seen or path is None:
            continue
        seen[name] = path
        pending.extend(_imported_modules(path, name) - seen.keys())
    return sorted(set(seen.values()))


@functools.cache
def code_fingerprint(module: str, root: Path | None = None) -> str:
    """A hash of gradkit's version and of every file in ``module``'s import closure (paths
    relative to the package, and contents)."""
    root = package_root() if root is None else root
    digest = hashlib.sha256(gradkit.__version__.encode())
    for path in import_closure(module, root):
        name = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
        digest.update(str(name).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@functools.cache
def machine_identity() -> str:
    """This machine as far as a timing depends on it: host name, processor model, usable
    cores, Python and torch versions (a timing run is never reused from another machine)."""
    import torch

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    facts = [platform.node(), platform.machine(), cpu, str(cores), sys.version, torch.__version__]
    return hashlib.sha256("\n".join(facts).encode()).hexdigest()[:16]
