"""The requirement catalogue and the checks agree: every documented requirement is verified by some
check, and the catalogue quotes a document for each."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conformlab.profiles import PROFILES
from conformlab.requirements import all_requirements

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("device", sorted(PROFILES))
def test_every_requirement_has_a_check(device):
    suite = ROOT / "suites" / PROFILES[device].suite
    used = set(re.findall(r'"([A-Z][A-Z0-9]*-[A-Z0-9-]+)"', "\n".join(p.read_text() for p in suite.glob("test_*.py"))))
    documented = {rid for rid, req in all_requirements().items() if req.device == device}
    assert documented, f"{device} has no requirements.yaml"
    assert documented <= used, f"requirements no check verifies: {sorted(documented - used)}"


def test_every_requirement_names_its_source():
    for rid, req in all_requirements().items():
        assert req.text and req.section, rid
        known = {"conformlab", "NOTES.md"} | {p.document for p in PROFILES.values()}
        assert req.source in known, f"{rid}: unknown source {req.source}"
