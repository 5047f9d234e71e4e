"""The requirement catalogue and the checks agree: every documented requirement is verified by some
check, and the catalogue quotes a document for each."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conformlab.profiles import PROFILES
from conformlab.requirements import all_requirements
from conformlab.targets import load_targets

ROOT = Path(__file__).resolve().parents[1]


def shared_check_requirements(profile) -> set[str]:
    """The requirement IDs the shared checks (suites/common) carry for the device: its access
    matrix's cases and its load scenarios' aspects, from its profile."""
    from suites.common import access
    from suites.common.test_load import heap_aspects, rate_aspects

    ids = set()
    for target in load_targets(ROOT / "targets.toml"):  # roles may come from a target's credentials (WisDM's keys)
        if target.device == profile.name and profile.access:
            ids |= {rid for check in access.cases(profile, target.auth).values() for rids in check.values() for rid in rids}
    for aspect in rate_aspects(profile) + heap_aspects(profile):
        ids.update(rid for mark in aspect.marks for rid in mark.args)
    return ids


@pytest.mark.parametrize("device", sorted(PROFILES))
def test_every_requirement_has_a_check(device):
    suite = ROOT / "suites" / PROFILES[device].suite
    used = set(re.findall(r'"([A-Z][A-Z0-9]*-[A-Z0-9-]+)"', "\n".join(p.read_text() for p in suite.glob("test_*.py"))))
    used |= shared_check_requirements(PROFILES[device])
    documented = {rid for rid, req in all_requirements().items() if req.device == device}
    assert documented, f"{device} has no requirements.yaml"
    assert documented <= used, f"requirements no check verifies: {sorted(documented - used)}"


def test_every_requirement_names_its_source():
    for rid, req in all_requirements().items():
        assert req.text and req.section, rid
        known = {"conformlab", "NOTES.md"} | {p.document for p in PROFILES.values()}
        assert req.source in known, f"{rid}: unknown source {req.source}"


CONFLICTS = {"EVSE-CFG-SCHED-TZ-POSIX", "EVSE-DAV-NOAUTH", "WCC-DEVICES-KEY"}  # NOTES.md: the pages disagree


def test_each_side_of_a_conflict_quotes_its_source_and_a_check_records_it():
    """A CONFLICT entry shows both sentences: each reading's text is a quote of its document or of
    NOTES.md (whitespace collapsed), and a check of the requirement says which one the device follows."""
    from vendor_docs import DOCS

    flat = {path.name: " ".join(path.read_text(encoding="utf-8").split()) for path in DOCS.iterdir()}
    conflicting = {rid: req for rid, req in all_requirements().items() if req.conflict}
    assert set(conflicting) == CONFLICTS
    checks = [p.read_text() for p in (ROOT / "suites").glob("*/test_*.py")]
    for rid, req in conflicting.items():
        for reading in req.conflict:
            assert reading.text in flat[reading.source], f"{rid} {reading.name}: not a quote of {reading.source}"
        assert any(f'"{rid}"' in text and ".follows(" in text for text in checks), (
            f"{rid}: no check records which reading the device follows")
