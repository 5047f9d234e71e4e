"""The vendor documents, for tests that check quotes against them: the copies bundled with the package
(src/conformlab/documents, so a fresh clone checks them too), which must equal ../shared/docs beside the
checkout where it exists (tests/test_annotated_document.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DOCS = Path(__file__).resolve().parents[2] / "shared" / "docs"
DOCS = Path(__file__).resolve().parents[1] / "src" / "conformlab" / "documents"


def assert_faults_quote_the_documents(faults: dict[str, str], document: str) -> None:
    """Each fault's sentence is a quote of the device document, or of NOTES.md when marked so."""
    if not DOCS.exists():
        pytest.skip(f"vendor documents not found at {DOCS}")
    flat = {name: " ".join(DOCS.joinpath(name).read_text().split()) for name in (document, "NOTES.md")}
    for fault, sentence in faults.items():
        source = "NOTES.md" if sentence.endswith(" (NOTES.md)") else document
        quote = sentence.removesuffix(" (NOTES.md)")
        assert quote in flat[source], f"{fault}: not a quote of {source}: {quote!r}"
