"""Finished runs on disk, one JSON file per run, named by the run's key.

Writes go to a temporary file renamed into place, so an interrupted write never leaves a
half-written record, and a run finished before an interruption is reused when the work resumes.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from gradkit.experiments.runs import RunRecord, RunSpec


def default_cache_dir() -> Path:
    """``$GRADKIT_CACHE`` if set, else ``~/.cache/gradkit/runs``."""
    env = os.environ.get("GRADKIT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "gradkit" / "runs"


class RunCache:
    """Records of finished runs under ``directory`` (created on first write)."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def _path(self, spec: RunSpec) -> Path:
        key = spec.key()
        return self.directory / key[:2] / f"{key}.json"

    def get(self, spec: RunSpec) -> RunRecord | None:
        path = self._path(spec)
        try:
            data = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return RunRecord.from_json(data["record"])

    def put(self, spec: RunSpec, record: RunRecord) -> None:
        path = self._path(spec)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"run": spec.describe(), "record": record.to_json()}
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
            json.dump(payload, f)
        os.replace(f.name, path)
