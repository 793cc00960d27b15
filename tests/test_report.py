"""The report renderer and the claim runner's error handling."""

from __future__ import annotations

import json
import math
import threading
import time

from matplotlib.figure import Figure

from gradkit.claims import RunContext
from gradkit.claims.reproduce import run_claim
from gradkit.report import ReportEntry, json_safe, write_report

META = {"version": "x", "torch": "y", "scale": "quick", "seeds": [0], "elapsed_seconds": 1.0}


def test_json_safe_replaces_non_finite_numbers_by_null():
    assert json_safe({"a": [math.inf, math.nan, 1.0], 2: -math.inf}) == {
        "a": [None, None, 1.0],
        "2": None,
    }


def test_report_files_escape_text_and_embed_figures(tmp_path):
    fig = Figure()
    fig.subplots().plot([0, 1], [1, 0])
    entries = [
        ReportEntry(
            "a-claim",
            "x < y & <b>",
            "src",
            "crit",
            "holds",
            "fine",
            1.5,
            {"v": math.inf},
            [{"k": "<i>"}],
            fig,
        ),
        ReportEntry("b-claim", "s", "src", "crit", "error", "ValueError: boom", 0.1),
    ]
    paths = write_report(entries, tmp_path / "out", META)
    page = paths["html"].read_text()
    assert "x &lt; y &amp; &lt;b&gt;" in page and "&lt;i&gt;" in page
    assert page.count("data:image/png;base64,") == 1
    data = json.loads(paths["json"].read_text())
    assert data["claims"][0]["numbers"] == {"v": None}
    assert data["claims"][1]["figure"] is None
    assert "| a-claim | holds |" in paths["markdown"].read_text()


def test_a_failing_claim_becomes_an_error_entry(monkeypatch):
    from gradkit import claims

    def boom(ctx):
        raise RuntimeError("exploded")

    claim = claims.CLAIMS["msvag-vs-adam"]
    monkeypatch.setitem(claims.CLAIMS, claim.id, type(claim)(claim.id, "s", "src", "c", boom))
    entry = run_claim(claim.id, RunContext("quick", [0]))
    assert entry.verdict == "error" and "exploded" in entry.summary


def test_an_interrupted_reproduce_writes_the_claims_finished_so_far(monkeypatch, tmp_path):
    import pytest

    from gradkit import claims
    from gradkit.claims import ClaimResult, Verdict
    from gradkit.claims import reproduce as reproduce_module

    first_done = threading.Event()

    def done(ctx):
        first_done.set()
        return ClaimResult(Verdict.HOLDS, "fine", {"x": 1})

    def interrupted(ctx):  # claims run concurrently: interrupt once the first has finished
        first_done.wait(10)
        time.sleep(0.2)
        raise KeyboardInterrupt

    first, second = list(claims.CLAIMS)[:2]
    for claim_id, run in ((first, done), (second, interrupted)):
        claim = claims.CLAIMS[claim_id]
        monkeypatch.setitem(claims.CLAIMS, claim_id, type(claim)(claim_id, "s", "src", "c", run))
    with pytest.raises(KeyboardInterrupt):
        reproduce_module.reproduce([first, second], "smoke", 1, tmp_path)
    data = json.loads((tmp_path / "results.json").read_text())
    assert [c["id"] for c in data["claims"]] == [first]
    assert data["interrupted"] == "after 1 of 2 claims"
    assert "Interrupted after 1 of 2 claims" in (tmp_path / "report.md").read_text()


def test_the_report_shows_each_claims_setting_and_number_next_to_the_papers(tmp_path):
    entry = ReportEntry(
        "a-claim", "s", "src", "crit", "holds", "fine", 1.0,
        {"setting": "ours: 15 epochs (quick scale); the paper: 90 epochs."},
        reported="270x to 600x (abstract)",
    )  # fmt: skip
    paths = write_report([entry], tmp_path, META | {"scale": "smoke"})
    markdown, page = paths["markdown"].read_text(), paths["html"].read_text()
    assert "*Setting (ours vs the paper's):* ours: 15 epochs" in markdown
    assert "*The paper reports:* 270x to 600x (abstract)" in markdown
    assert "Smoke scale" in markdown and "Setting (ours vs the paper" in page
    assert "The paper reports:</b> 270x to 600x" in page


def test_every_reported_number_names_where_it_comes_from():
    from gradkit.claims.reproduce import CLAIMS

    for claim in CLAIMS.values():
        if claim.reported:
            assert any(tag in claim.reported for tag in ("abstract", "code", "confirmed")), claim.id


def test_reproduce_runs_two_claims_at_once_and_reports_them_in_order(monkeypatch, tmp_path):
    from gradkit import claims
    from gradkit.claims import ClaimResult, Verdict
    from gradkit.claims import reproduce as reproduce_module

    second_started = threading.Event()

    def first(ctx):  # finishes only if the second claim runs meanwhile
        verdict = Verdict.HOLDS if second_started.wait(10) else Verdict.INCONCLUSIVE
        return ClaimResult(verdict, "", {})

    def second(ctx):
        second_started.set()
        return ClaimResult(Verdict.DOES_NOT_HOLD, "", {})

    ids = list(claims.CLAIMS)[:2]
    for claim_id, run in zip(ids, (first, second), strict=True):
        claim = claims.CLAIMS[claim_id]
        monkeypatch.setitem(claims.CLAIMS, claim_id, type(claim)(claim_id, "s", "src", "c", run))
    entries = reproduce_module.reproduce(ids, "smoke", 1, tmp_path)
    assert [(e.id, e.verdict) for e in entries] == [(ids[0], "holds"), (ids[1], "does not hold")]


def test_reproduce_runs_a_timed_claim_alone_after_the_others(monkeypatch, tmp_path):
    from gradkit import claims
    from gradkit.claims import ClaimResult, Verdict
    from gradkit.claims import reproduce as reproduce_module

    running, overlapped = set(), []

    def make(name):
        def run(ctx):
            overlapped.append((name, set(running)))
            running.add(name)
            time.sleep(0.3)
            running.discard(name)
            return ClaimResult(Verdict.HOLDS, "", {})

        return run

    ids = list(claims.CLAIMS)[:3]
    for i, claim_id in enumerate(ids):
        claim = claims.CLAIMS[claim_id]
        timed = i == 0
        replaced = type(claim)(claim_id, "s", "src", "c", make(claim_id), timed=timed)
        monkeypatch.setitem(claims.CLAIMS, claim_id, replaced)
    entries = reproduce_module.reproduce(ids, "smoke", 1, tmp_path)
    assert [e.id for e in entries] == ids  # reported in the order asked
    assert overlapped[-1] == (ids[0], set())  # the timed claim last, with nothing else running


def test_reproduce_prints_a_line_per_finished_claim_when_not_on_a_terminal(monkeypatch, tmp_path):
    """In a CI log or under nohup there is no live display: each claim reports as it ends,
    before the final table."""
    import io

    from rich.console import Console

    from gradkit import claims
    from gradkit.claims import ClaimResult, Verdict
    from gradkit.claims import reproduce as reproduce_module

    ids = list(claims.CLAIMS)[:2]
    for claim_id in ids:
        claim = claims.CLAIMS[claim_id]
        run = lambda ctx: ClaimResult(Verdict.HOLDS, "", {})  # noqa: E731
        monkeypatch.setitem(claims.CLAIMS, claim_id, type(claim)(claim_id, "s", "src", "c", run))
    out = io.StringIO()
    reproduce_module.reproduce(ids, "smoke", 1, tmp_path, Console(file=out, width=120))
    text = out.getvalue()
    lines = [line for line in text.splitlines() if line.startswith("[")]
    assert sorted(line.split()[1] for line in lines) == sorted(f"{c}:" for c in ids)
    assert {line.split()[0] for line in lines} == {"[1/2]", "[2/2]"}
    assert text.index(lines[-1]) < text.index("gradkit reproduce (smoke scale")


def test_reproduce_runs_the_evaluation_seeds_asked_for(monkeypatch, tmp_path):
    """--first-seed N: claims see seeds N.. (fresh seeds replicate a verdict); the report says
    which; a first seed whose range reaches the tuning seeds is refused before any work."""
    from gradkit import claims
    from gradkit.claims import ClaimResult, Verdict
    from gradkit.claims import reproduce as reproduce_module
    from gradkit.cli import main

    seen = []

    def run(ctx):
        seen.append(list(ctx.seeds))
        return ClaimResult(Verdict.HOLDS, "", {})

    claim_id = next(iter(claims.CLAIMS))
    claim = claims.CLAIMS[claim_id]
    monkeypatch.setitem(claims.CLAIMS, claim_id, type(claim)(claim_id, "s", "src", "c", run))
    reproduce_module.reproduce([claim_id], "smoke", 3, tmp_path / "a", first_seed=7)
    assert seen == [[7, 8, 9]]
    assert json.loads((tmp_path / "a" / "results.json").read_text())["seeds"] == [7, 8, 9]
    out = tmp_path / "refused"
    argv = ["reproduce", "--claims", claim_id, "--first-seed", "999", "--out", str(out)]
    assert main(argv) == 2 and not out.exists()


def test_reproduce_audits_the_searches_when_asked(monkeypatch, tmp_path):
    from experiment_helpers import toy_run
    from gradkit import claims
    from gradkit.claims import ClaimResult, Verdict
    from gradkit.claims import reproduce as reproduce_module
    from gradkit.experiments import LrRange, Method, Metric, RunSpec

    def toy(method, lr, budget, seed, tuning):
        return RunSpec.of(toy_run, lr=lr, budget=budget, seed=seed, favour_large=3.0)

    def run(ctx):
        ctx.compare({"toy": toy}, [Method("m", "M", LrRange(1e-4, 1.0))], 9, Metric("loss"))
        return ClaimResult(Verdict.HOLDS, "", {})

    claim_id = next(iter(claims.CLAIMS))
    claim = claims.CLAIMS[claim_id]
    monkeypatch.setitem(claims.CLAIMS, claim_id, type(claim)(claim_id, "s", "src", "c", run))
    reproduce_module.reproduce([claim_id], "quick", 1, tmp_path, audit=True)
    (row,) = json.loads((tmp_path / "search-audit.json").read_text())
    assert (row["claim"], row["problem"], row["method"]) == (claim_id, "toy", "m")
    assert row["agrees"] and row["chosen"] == row["best"] == 0.0215
    assert (
        "agrees with the grid's best in 1 of 1 searches"
        in (tmp_path / "search-audit.md").read_text()
    )


def test_the_report_states_the_machines_speed_beside_its_times():
    from gradkit.report.render import run_notes

    notes = run_notes({"scale": "quick", "machine_backprop_epoch_seconds": 0.96})
    assert "residual MLP (width 512, 8 blocks) at one thread took 0.960 s" in notes
