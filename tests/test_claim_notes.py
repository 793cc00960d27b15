"""Every claim reads a sentence of the notes, quoted verbatim."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gradkit.claims import CLAIMS

NOTES = Path(__file__).resolve().parents[1] / "docs" / "ICML2018-notes.md"


def normalised(text: str) -> str:
    """Typographic quotes as plain ones, runs of whitespace as one space."""
    text = text.replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"')
    return re.sub(r"\s+", " ", text).strip()


@pytest.mark.parametrize("claim", CLAIMS.values(), ids=lambda c: c.id)
def test_the_claim_quotes_the_notes_verbatim(claim):
    assert claim.notes, f"{claim.id} quotes no sentence of the notes"
    assert normalised(claim.notes) in normalised(NOTES.read_text(encoding="utf-8"))
