"""A cached run is never stale: its key covers every file the run can execute (and nothing it
cannot), a timing run is never reused on another machine, and run kinds are registered."""

from __future__ import annotations

import shutil

import pytest

import experiment_helpers
from gradkit.experiments import RunCache, RunRecord, RunSpec, run_kind
from gradkit.experiments import fingerprint as fp
from gradkit.experiments.kinds.deep_cnn import deep_cnn_run
from gradkit.experiments.kinds.pipeline_speed import ddg_speed_run
from gradkit.experiments.kinds.training import train_task


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    """A copy of the installed gradkit sources that the fingerprint reads instead."""
    copy = tmp_path / "gradkit"
    shutil.copytree(fp.package_root(), copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(fp, "package_root", lambda: copy)
    fp.code_fingerprint.cache_clear()
    yield copy
    fp.code_fingerprint.cache_clear()


def edit(path) -> None:
    path.write_text(path.read_text() + "\n# edited\n")
    fp.code_fingerprint.cache_clear()


SPECS = {
    "train_task": RunSpec.of(
        train_task, task="digits-mlp", optimizer="sgd", lr=0.1, seed=0, epochs=1, pipeline=2
    ),
    "deep_cnn_run": RunSpec.of(deep_cnn_run, init="gaussian", depth=8, seed=0, lr=0.1, epochs=1),
    "ddg_speed_run": RunSpec.of(ddg_speed_run, rounds=1),
}


@pytest.mark.parametrize(
    ("edited", "kind"),
    [
        ("model_parallel/ddg.py", "train_task"),  # DDG runs inside the training kind
        ("init.py", "deep_cnn_run"),
        ("bench/pipeline.py", "ddg_speed_run"),
        ("experiments/kinds/training.py", "train_task"),
        ("optim/sign.py", "train_task"),
    ],
)
def test_editing_a_file_a_run_executes_misses_the_cache(package_copy, tmp_path, edited, kind):
    cache = RunCache(tmp_path / "runs")
    spec = SPECS[kind]
    cache.put(spec, RunRecord({"loss": 1.0}))
    assert cache.get(spec) is not None
    edit(package_copy / edited)
    assert cache.get(spec) is None


@pytest.mark.parametrize("edited", ["claims/signum_matches_adam.py", "report/render.py", "cli.py"])
def test_editing_a_file_no_run_executes_keeps_the_cache(package_copy, tmp_path, edited):
    cache = RunCache(tmp_path / "runs")
    for spec in SPECS.values():
        cache.put(spec, RunRecord({"loss": 1.0}))
    edit(package_copy / edited)
    assert all(cache.get(spec) is not None for spec in SPECS.values())


def test_the_closure_follows_relative_and_function_level_imports(tmp_path):
    root = tmp_path / "gradkit"
    (root / "a").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "a" / "__init__.py").write_text("")
    (root / "a" / "kind.py").write_text("def run():\n    from .helper import f\n")
    (root / "a" / "helper.py").write_text("from gradkit import far\n")
    (root / "far.py").write_text("")
    (root / "unrelated.py").write_text("")
    closure = {p.relative_to(root).as_posix() for p in fp.import_closure("gradkit.a.kind", root)}
    assert closure == {"__init__.py", "a/__init__.py", "a/kind.py", "a/helper.py", "far.py"}


def test_a_timing_run_is_keyed_by_the_machine_and_others_are_not(monkeypatch):
    timed, plain = SPECS["ddg_speed_run"], SPECS["deep_cnn_run"]
    before = timed.key(), plain.key()
    monkeypatch.setattr(fp, "machine_identity", lambda: "another machine")
    monkeypatch.setattr("gradkit.experiments.runs.machine_identity", lambda: "another machine")
    assert timed.key() != before[0]
    assert plain.key() == before[1]


def test_only_registered_run_kinds_make_specs():
    def not_a_kind(lr: float) -> RunRecord:
        return RunRecord({})

    with pytest.raises(TypeError, match="not a run kind"):
        RunSpec.of(not_a_kind, lr=0.1)


def test_two_run_kinds_cannot_share_a_name():
    def toy_run(lr: float) -> RunRecord:  # the name of experiment_helpers.toy_run
        return RunRecord({})

    with pytest.raises(ValueError, match="defined twice"):
        run_kind(toy_run)
    assert RunSpec.of(experiment_helpers.toy_run, lr=0.1, budget=1).kind.function.__module__ == (
        "experiment_helpers"
    )
