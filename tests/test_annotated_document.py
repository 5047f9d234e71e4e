"""The document, annotated, and its coverage (plugin/annotated.py): one real run of two EVSE emulator
targets (one with a fault) read from the HTML report; the fragment finder and the marking on the real
bundled documents; the bundled documents equal ../shared/docs."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from vendor_docs import SHARED_DOCS

from conformlab.plugin import annotated
from conformlab.profiles import PROFILES
from conformlab.requirements import all_requirements
from conformlab.schema import device_schema
from conformlab.verdicts import FAIL, PASS, VERDICTS

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "myhome"  # a word of the EVSE document (the example SSID): shown masked there too
TARGETS = f"""
[targets.evse-clean]
device = "esp32-evse"
emulator = true
destructive = true

[targets.evse-faulty]
device = "esp32-evse"
emulator = true
destructive = true
faults = ["wifi_password_returned"]
[targets.evse-faulty.auth]
username = "admin"
password = "{PASSWORD}"
"""
# A few quick checks: the Wi-Fi password (FAIL on evse-faulty), the clock (PASS), one answer shape (a
# requirement the document words otherwise), and the access matrix on /config/modbus, which no other
# selected check touches.
CHECKS = "wifi_password or time_set or (documented_shape and board) or (test_access and modbus)"
# Marked requirements per device, measured on the bundled documents: 44/45, 24/24, 12/12, 25/26, 45/46.
MARKED_FLOOR = 0.9
HOST = re.compile(r"https?://([^/:\s<\"']+)")
MARK = re.compile(r'<mark class="cl-v(\d)" title="([^"]*)">(.*?)</mark>', re.DOTALL)


@pytest.fixture(scope="module")
def section(tmp_path_factory) -> dict:
    """The report of one run, and its annotated-documents section."""
    folder = tmp_path_factory.mktemp("annotated")
    (folder / "targets.toml").write_text(TARGETS)
    report = folder / "report.html"
    result = subprocess.run([sys.executable, "-m", "pytest", "suites", f"--targets-file={folder / 'targets.toml'}",
                             "--target=evse-clean", "--target=evse-faulty", "-p", "no:cacheprovider", "-k", CHECKS,
                             f"--html={report}", f"--junitxml={folder / 'report.xml'}"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and report.is_file(), result.stdout[-3000:] + result.stderr[-2000:]
    text = report.read_text()
    start = text.index("<style>.cl-doc")
    end = text.index("</details>", start) + len("</details>")
    return {"html": text, "section": text[start:end], "stdout": result.stdout}


def marks_of(section: str) -> list[tuple[str, set[str], str]]:
    """(verdict word, requirement ids, marked text) of every mark."""
    return [(VERDICTS[int(index)], set(ids.split()), html.unescape(text)) for index, ids, text in MARK.findall(section)]


def badges_after(section: str, rid: str) -> dict[str, str]:
    """The badges of a requirement in the text: target -> (verdict word, link)."""
    group = re.search(rf'<span class="cl-r">{re.escape(rid)} (.*?)</span>', section)
    assert group, f"no badges of {rid}"
    return {target: (word, link) for link, target, word in re.findall(r'href="#([^"]+)">([^:<]+): ([A-Z ]+)</a>', group.group(1))}


def test_the_document_is_shown_with_its_notes(section):
    text = html.unescape(re.sub(r"<[^>]+>", "", section["section"]))
    assert "The firmware exposes a JSON REST API served by the same HTTP server" in text
    assert "Real firmware answers errors with short `text/html` bodies" in text, "the device's part of NOTES.md below it"
    assert "## WattWächter" not in text, "only the device's own part of NOTES.md"
    assert section["section"].count("<details") == 1, "one section per device, not per target"


def test_a_failing_requirement_is_marked_fail_and_links_to_its_row(section):
    marks = [m for m in marks_of(section["section"]) if "EVSE-CFG-WIFI-PASSWORD" in m[1]]
    assert marks and all(word == FAIL for word, _, _ in marks), marks
    assert " ".join(marks[0][2].split()) == "For POST, add a password field. The GET response never returns the password."
    badges = badges_after(section["section"], "EVSE-CFG-WIFI-PASSWORD")
    assert badges["evse-faulty"][0] == FAIL and badges["evse-clean"][0] == PASS
    for _, link in badges.values():
        assert f'<tr id="{link}">' in section["html"], f"the badge links to no requirement row: #{link}"


def test_a_passing_requirement_is_marked_pass(section):
    marks = [m for m in marks_of(section["section"]) if m[1] == {"EVSE-TIME"}]
    assert marks and all(word == PASS for word, _, _ in marks)
    assert "Unix epoch seconds" in marks[0][2]
    assert {word for word, _ in badges_after(section["section"], "EVSE-TIME").values()} == {PASS}


def test_a_requirement_not_quoted_verbatim_is_listed_below_the_document(section):
    text = section["section"]
    assert not any("EVSE-ANSWER-SHAPES" in ids for _, ids, _ in marks_of(text))
    listed = text[text.index("<h4>Checked, but not quoted verbatim in the document"):text.index("<h3>The document's coverage")]
    assert "The answer bodies of the read endpoints as the document shows them" in listed
    assert set(badges_after(listed, "EVSE-ANSWER-SHAPES")) == {"evse-clean", "evse-faulty"}


def test_coverage_counts_the_schema_and_leaves_out_the_access_matrix(section):
    part = section["section"][section["section"].index("<h3>The document's coverage</h3>"):]
    operations = [op.key for op in device_schema("esp32-evse").operations]
    count = re.search(r"(\d+) of (\d+) documented endpoints exercised beyond the access matrix", part)
    rows = dict(re.findall(r"<tr><td><code>([^<]+)</code></td>(.*?)</tr>", part))
    idle = re.findall(r"<code>([^<]+)</code>", part[part.index("Exercised by no check"):])
    assert int(count.group(2)) == len(operations) and int(count.group(1)) == len(rows) > 0
    # every operation once, in the schema's order: the exercised ones in the table, the others listed
    assert list(rows) == [key for key in operations if key in rows] and idle == [key for key in operations if key not in rows]
    assert "GET /config/modbus" in idle and "POST /config/modbus" in idle, "exercised by the access matrix only"
    access = set(re.findall(r"^def (test_\w+)", (ROOT / annotated.ACCESS_MATRIX).read_text(), re.MULTILINE))
    assert any(f"{name}[" in section["html"] for name in access), "the access matrix ran on /config/modbus"
    assert not any(name in part for name in access), "access-matrix checks are no coverage"
    cells = rows["GET /time"]
    assert cells.count("1: test_time_set_and_read_back[") == 2, "one check per target exercised GET /time"


def test_nothing_local_and_no_secret_in_the_section(section):
    text = section["section"]
    assert PASSWORD not in section["html"]
    assert '"ssid": "***"' in html.unescape(text), "the document's text is masked too"
    assert all(link.startswith("#") for link in re.findall(r'href="([^"]*)"', text)), "links stay inside the report"
    assert "file:" not in text and str(ROOT) not in text and "/tmp/" not in text
    assert not re.search(r"\b(?:src|style)=", text), "no resources, no repeated inline styles: one <style> block"
    document = "".join(part.text for part in annotated.device_parts("esp32-evse"))
    assert set(HOST.findall(text)) <= set(HOST.findall(document)), "no address but the document's own examples"


def test_every_requirement_is_marked_or_listed_on_the_bundled_documents():
    for device in PROFILES:
        found = annotated.locator(device)
        requirements = annotated.device_requirements(device)
        marked = 0
        for req in requirements:
            marks = found.marks(req.text)
            marked += bool(marks)
            wanted = annotated.Locator((annotated.Part("", req.text),)).flat
            for mark in marks:
                part = found.parts[mark.part].text
                assert 0 <= mark.start < mark.stop <= len(part)
                shown = annotated.Locator((annotated.Part("", part[mark.start:mark.stop]),)).flat
                assert len(shown) >= annotated.MIN_FRAGMENT and shown in wanted, (req.id, shown)
        assert requirements and marked >= MARKED_FLOOR * len(requirements), f"{device}: {marked} of {len(requirements)} marked"


def test_overlapping_marks_keep_the_text_and_every_badge():
    """Every requirement of the EVSE document marked at once (several share a sentence): the text comes
    back whole, the tags balance, each requirement has its badges and the shared stretch names both."""
    found = annotated.locator("esp32-evse")
    verdicts = {req.id: {"evse-a": VERDICTS[n % len(VERDICTS)], "evse-b": PASS}
                for n, req in enumerate(annotated.device_requirements("esp32-evse"))}
    marks = {rid: found.marks(all_requirements()[rid].text) for rid in verdicts}
    document = found.parts[0].text
    out = annotated.annotated_text(document, {rid: [m for m in ms if m.part == 0] for rid, ms in marks.items()}, verdicts)
    assert html.unescape(re.sub(r'<span class="cl-r">.*?</span>|<[^>]+>', "", out)) == document
    parser = Balanced()
    parser.feed(out)
    parser.close()
    shared = [ids for _, ids, text in marks_of(out) if {"EVSE-CONV-PARTIAL", "EVSE-CONV-400-NOFIELD"} <= ids]
    assert shared, "the two requirements quoting 'Partial config writes' share a mark"
    for rid, ms in marks.items():
        if any(m.part == 0 for m in ms):
            assert set(badges_after(out, rid)) == {"evse-a", "evse-b"}


class Balanced(HTMLParser):
    def __init__(self):
        super().__init__()
        self.open: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open.pop() == tag, f"</{tag}> closes nothing open"

    def close(self):
        super().close()
        assert not self.open


def test_the_bundled_documents_equal_the_shared_ones():
    names = {PROFILES[device].document for device in PROFILES} | {annotated.NOTES}
    assert {p.name for p in annotated.DOCUMENTS.iterdir()} == names | {"README.md"}
    if not SHARED_DOCS.exists():
        pytest.skip(f"vendor documents not found at {SHARED_DOCS}")
    for name in sorted(names):
        assert (annotated.DOCUMENTS / name).read_bytes() == (SHARED_DOCS / name).read_bytes(), f"{name} differs from {SHARED_DOCS}"
