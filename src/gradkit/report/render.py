"""Writes claim results as files: results.json, one PNG per claim, report.md, report.html."""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

VERDICT_COLORS = {"holds": "#1a7f37", "does not hold": "#cf222e", "inconclusive": "#9a6700"}


@dataclass
class ReportEntry:
    """One claim as the report shows it: what was claimed, the criterion, and the outcome."""

    id: str
    statement: str
    source: str
    criterion: str
    verdict: str  # "holds", "does not hold", "inconclusive" or "error"
    summary: str
    seconds: float
    numbers: dict[str, Any] = field(default_factory=dict)
    table: list[dict[str, Any]] = field(default_factory=list)
    figure: Figure | None = None
    reported: str = ""  # the paper's number for what the claim measures, if it reports one
    notes: str = ""  # the notes' sentence the criterion reads

    @property
    def figure_name(self) -> str:
        return f"{self.id}.png"


def json_safe(value: Any) -> Any:
    """Replace non-finite floats by null so the JSON is standard and every reader parses it;
    the record that holds them says why (``diverged``, or a target never reached)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_report(records: list[ReportEntry], out: Path, meta: dict[str, Any]) -> dict[str, Path]:
    """Write every file into ``out`` (created if needed); return their paths by kind."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.png"):  # figures of an earlier run in the same directory
        stale.unlink()
    figures = {}
    for record in records:
        if record.figure is not None:
            path = out / record.figure_name
            record.figure.savefig(path, dpi=110)
            figures[record.id] = path
    payload = {
        **meta,
        "claims": [
            {
                "id": r.id,
                "statement": r.statement,
                "source": r.source,
                "notes": r.notes,
                "criterion": r.criterion,
                "verdict": r.verdict,
                "summary": r.summary,
                "numbers": r.numbers,
                "table": r.table,
                "figure": r.figure_name if r.id in figures else None,
                "seconds": round(r.seconds, 2),
            }
            for r in records
        ],
    }
    paths = {
        "json": out / "results.json",
        "markdown": out / "report.md",
        "html": out / "report.html",
    }
    paths["json"].write_text(json.dumps(json_safe(payload), indent=2, allow_nan=False))
    paths["markdown"].write_text(markdown(records, meta, figures))
    paths["html"].write_text(html_page(records, meta, figures))
    return paths


def write_search_audit(rows: list[dict[str, Any]], out: Path) -> Path:
    """``search-audit.md`` (and ``.json``): per searched (claim, problem, method), the rate the
    search chose beside the full grid's best at the full budget, each with its mean tuning
    score."""
    (out / "search-audit.json").write_text(json.dumps(json_safe(rows), indent=2))
    agree = sum(row["agrees"] for row in rows)
    shown = [
        {**row, **{k: f"{row[k]:.4g}" for k in ("chosen_score", "best_score")}} for row in rows
    ]
    path = out / "search-audit.md"
    path.write_text(
        "# Search audit\n\nEvery rate each search saw, run at the full budget on every tuning "
        f"seed: the search's choice agrees with the grid's best in {agree} of {len(rows)} "
        "searches.\n\n" + _table_md(shown)
    )
    return path


def run_notes(meta: dict[str, Any]) -> str:
    """Sentences on how the run went: smoke scale, interruption, cached runs."""
    notes = []
    if meta.get("scale") == "smoke":
        notes.append("Smoke scale: every claim runs end to end, the verdicts mean nothing.")
    if meta.get("interrupted"):
        notes.append(f"Interrupted {meta['interrupted']}: a partial report.")
    if "machine_backprop_epoch_seconds" in meta:
        notes.append(
            "Machine speed: one epoch of backpropagation of the residual MLP (width 512, 8 "
            f"blocks) at one thread took {meta['machine_backprop_epoch_seconds']:.3f} s."
        )
    if "runs_executed" in meta:
        notes.append(
            f"Runs: {meta['runs_executed']} executed, {meta['runs_from_cache']} from the cache."
        )
    return "".join(" " + n for n in notes)


def _table_md(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(row.get(k, "")) for k in head) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def markdown(records: list[ReportEntry], meta: dict[str, Any], figures: dict[str, Path]) -> str:
    parts = [
        "# gradkit reproduction report\n",
        f"Scale `{meta['scale']}`, seeds {meta['seeds']}, gradkit {meta['version']}, "
        f"torch {meta['torch']}, {meta['elapsed_seconds']:.0f} s.{run_notes(meta)}\n",
        _table_md(
            [{"claim": r.id, "verdict": r.verdict, "seconds": f"{r.seconds:.0f}"} for r in records]
        ),
    ]
    for r in records:
        parts += [
            f"## {r.id}: {r.verdict}\n",
            f"> {r.statement}\n",
            f"*Source:* {r.source}\n",
            *([f"*The notes:* “{r.notes}”\n"] if r.notes else []),
            f"*Criterion (fixed before running):* {r.criterion}\n",
            *(
                [f"*Setting (ours vs the paper's):* {r.numbers['setting']}\n"]
                if "setting" in r.numbers
                else []
            ),
            *([f"*The paper reports:* {r.reported}\n"] if r.reported else []),
            f"*Result:* {r.summary}\n",
        ]
        parts.append(_table_md(r.table))
        if r.id in figures:
            parts.append(f"![{r.id}]({figures[r.id].name})\n")
    return "\n".join(parts)


def _table_html(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(row.get(k, '')))}</td>" for k in rows[0]) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _badge(verdict: str) -> str:
    color = VERDICT_COLORS.get(verdict, "#57606a")
    return f'<span class="badge" style="background:{color}">{html.escape(verdict)}</span>'


def html_page(records: list[ReportEntry], meta: dict[str, Any], figures: dict[str, Path]) -> str:
    """One self-contained page: figures are embedded as base64 PNG."""
    overview = "".join(
        f'<tr><td><a href="#{r.id}">{r.id}</a></td><td>{_badge(r.verdict)}</td>'
        f"<td>{r.seconds:.0f} s</td></tr>"
        for r in records
    )
    sections = []
    for r in records:
        image = ""
        if r.id in figures:
            data = base64.b64encode(figures[r.id].read_bytes()).decode()
            image = f'<img alt="{r.id}" src="data:image/png;base64,{data}">'
        sections.append(
            f'<section id="{r.id}"><h2>{r.id} {_badge(r.verdict)}</h2>'
            f"<blockquote>{html.escape(r.statement)}</blockquote>"
            f"<p><b>Source:</b> {html.escape(r.source)}</p>"
            + (f"<p><b>The notes:</b> “{html.escape(r.notes)}”</p>" if r.notes else "")
            + f"<p><b>Criterion (fixed before running):</b> {html.escape(r.criterion)}</p>"
            + (
                f"<p><b>Setting (ours vs the paper's):</b> {html.escape(r.numbers['setting'])}</p>"
                if "setting" in r.numbers
                else ""
            )
            + (f"<p><b>The paper reports:</b> {html.escape(r.reported)}</p>" if r.reported else "")
            + f"<p><b>Result:</b> {html.escape(r.summary)}</p>"
            f"{_table_html(r.table)}{image}</section>"
        )
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
        "color:#24292f}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #d0d7de;"
        "padding:4px 8px;font-size:14px}.badge{color:#fff;border-radius:1em;padding:2px 10px;"
        "font-size:13px}img{max-width:100%}blockquote{color:#57606a;border-left:4px solid #d0d7de;"
        "margin:0;padding-left:1em}section{margin-top:2.5em}"
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>gradkit report</title>"
        f"<style>{style}</style></head><body><h1>gradkit reproduction report</h1>"
        f"<p>Scale <code>{meta['scale']}</code>, seeds {meta['seeds']}, gradkit {meta['version']}, "
        f"torch {meta['torch']}, {meta['elapsed_seconds']:.0f} s.{html.escape(run_notes(meta))}</p>"
        f"<table><thead><tr><th>claim</th><th>verdict</th><th>time</th></tr></thead>"
        f"<tbody>{overview}</tbody></table>{''.join(sections)}</body></html>"
    )
