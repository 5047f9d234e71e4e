"""The document, annotated, and the document's coverage: a section at the end of the HTML report.

Per device of the run, its vendor document (bundled in conformlab/documents, with the device's part
of NOTES.md below it) as readable text, every checked requirement's sentence marked with its worst
verdict across the device's targets and followed by a badge per target linking to the requirement's
row (`#req-<target>-<rid>`, plugin/html_report.py) with its checks and evidence. Requirement texts are
often composites (quoted fragments, paraphrases, NOTES.md parts): every fragment of at least
MIN_FRAGMENT characters that occurs in the text is marked; a requirement with none (or too few to be
more than a paraphrase) is listed below the document. Then every operation of the device's schema
with the checks that sent requests to it (the "endpoints" property, plugin/outcomes.py), leaving out
the access matrix, which sends to all of them.

Registered beside HtmlReport (plugin/options.py) as "conformlab-annotated"; HtmlReport appends
`section()` at the end of its summary. Every text added here passes through `secrets.mask`.
"""

from __future__ import annotations

import html
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from conformlab import secrets
from conformlab.plugin.html_report import COLOURS
from conformlab.plugin.summary import Reporting, check_names, properties
from conformlab.profiles import PROFILES
from conformlab.requirements import Requirement, all_requirements
from conformlab.schema import device_schema
from conformlab.verdicts import VERDICTS

DOCUMENTS = Path(__file__).resolve().parents[1] / "documents"  # exact copies of ../shared/docs (README.md there)
NOTES = "NOTES.md"
MIN_FRAGMENT = 12  # shorter pieces of a requirement's text ("400", "JSON null") would mark chance places
MIN_QUOTED = 0.25  # the share of a requirement's text its pieces must make up to be marked
ACCESS_MATRIX = "suites/common/test_access.py"  # sends to every operation: no coverage of its own
COVERAGE_CHECK_NAMES = 3  # check names per endpoint and target
CLUSTER_GAP = 200  # a requirement's marks closer than this share one set of badges (after the last)
# Table debris of the text copies ("~" after headings, "|" between cells) and quoting that differs
# between a document and a requirement's text: left out on both sides when comparing.
_IGNORED = str.maketrans({"|": None, "~": None, "`": None, '"': None, "\u201c": None, "\u201d": None,
                          "\u201e": None, "\u2018": "'", "\u2019": "'"})
_SEPARATOR = "\x00"  # between the parts of a device's text: no fragment spans two parts


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


@dataclass(frozen=True)
class Part:
    """One text shown for a device: its document, or its section of NOTES.md."""

    name: str
    text: str


@dataclass(frozen=True)
class Mark:
    part: int  # index into the device's parts
    start: int  # offsets in that part's text (stop exclusive)
    stop: int


@cache
def device_parts(device: str) -> tuple[Part, Part]:
    """The device's document and its section of NOTES.md (the "## <title> (<document>)" heading up to
    the next one), as bundled."""
    document = PROFILES[device].document
    notes = (DOCUMENTS / NOTES).read_text(encoding="utf-8")
    found = re.search(rf"^## [^\n]*\({re.escape(document)}\)\n.*?(?=^## |\Z)", notes, re.MULTILINE | re.DOTALL)
    return (Part(document, (DOCUMENTS / document).read_text(encoding="utf-8")),
            Part(NOTES, found.group(0).rstrip() + "\n" if found else ""))


class Locator:
    """Finds the pieces of requirement texts in a device's parts: compared with whitespace collapsed and
    debris left out (_IGNORED), case-sensitive, whole words."""

    def __init__(self, parts: tuple[Part, ...]):
        self.parts = parts
        flat: list[str] = []
        self.origin: list[tuple[int, int]] = []  # per flat character: (part, offset in the part's text)
        for index, part in enumerate(parts):
            if index:
                flat.append(_SEPARATOR)
                self.origin.append((index, 0))
            for offset, char in enumerate(part.text):
                kept = char.translate(_IGNORED)
                if not kept:
                    continue
                if kept.isspace():
                    if not flat or flat[-1] in (" ", _SEPARATOR):
                        continue
                    kept = " "
                flat.append(kept)
                self.origin.append((index, offset))
        self.flat = "".join(flat)

    def marks(self, text: str) -> list[Mark]:
        """Where the pieces of `text` stand in the parts, in text order; empty: none quoted verbatim."""
        wanted = " ".join(text.translate(_IGNORED).split())
        found = list(_pieces(wanted, self.flat))
        if sum(len(piece) for piece, _ in found) < MIN_QUOTED * len(wanted):
            return []  # a paraphrase: the few words it shares with the text stand in chance places
        # A piece found in several places: the one closest to the longest piece (the most telling one)
        # keeps a composite requirement's marks together.
        anchor = max(found, key=lambda piece: len(piece[0]))[1][0]
        marks = []
        for piece, places in found:
            at = min(places, key=lambda place: (abs(place - anchor), place))
            (part, start), (_, last) = self.origin[at], self.origin[at + len(piece) - 1]
            marks.append(Mark(part, start, last + 1))
        return sorted(set(marks), key=lambda m: (m.part, m.start, m.stop))


def _pieces(wanted: str, flat: str):
    """The longest pieces of `wanted` (whole words, at least MIN_FRAGMENT characters) that occur in
    `flat`, left to right, each with the places where it occurs."""
    starts = [i for i in range(len(wanted)) if wanted[i] != " " and (i == 0 or wanted[i - 1] == " " or (
        _is_word(wanted[i]) and not _is_word(wanted[i - 1])))]
    ends = [j for j in range(1, len(wanted) + 1) if wanted[j - 1] != " " and (j == len(wanted) or wanted[j] == " " or (
        _is_word(wanted[j - 1]) and not _is_word(wanted[j])))]
    position = 0
    for start in starts:
        if start < position:
            continue
        candidates = [end for end in ends if end - start >= MIN_FRAGMENT]
        # A piece that occurs has all its beginnings occur: the longest one is found by halving.
        low, high = 0, len(candidates)
        while low < high:
            middle = (low + high) // 2
            if wanted[start:candidates[middle]] in flat:
                low = middle + 1
            else:
                high = middle
        for end in reversed(candidates[:low]):  # the longest that also stands as whole words there
            places = _places(flat, wanted[start:end])
            if places:
                yield wanted[start:end], places
                position = end
                break


def _places(flat: str, piece: str) -> list[int]:
    """Where `piece` occurs in `flat` not as a part of a longer word."""
    places, at = [], flat.find(piece)
    while at != -1:
        before = flat[at - 1] if at else " "
        after = flat[at + len(piece)] if at + len(piece) < len(flat) else " "
        if not (_is_word(piece[0]) and _is_word(before)) and not (_is_word(piece[-1]) and _is_word(after)):
            places.append(at)
        at = flat.find(piece, at + 1)
    return places


def locator(device: str) -> Locator:
    """The device's parts as shown (masked now: secrets are registered when a run starts) and where to
    find what in them."""
    return Locator(tuple(Part(p.name, secrets.mask(p.text)) for p in device_parts(device)))


def device_requirements(device: str) -> list[Requirement]:
    return [req for req in all_requirements().values() if req.device == device]


def is_access_matrix(nodeid: str) -> bool:
    return nodeid.split("::", 1)[0] == ACCESS_MATRIX


def endpoints_of(value: str) -> list[str]:
    """The "endpoints" property ("GET /a POST /b/{id}") as operation keys ("GET /a", "POST /b/{id}")."""
    words = value.split()
    return [f"{method} {path}" for method, path in zip(words[::2], words[1::2])]


class AnnotatedDocuments:
    """Collects which checks exercised which operation (on the controller, from the reports) and
    makes the section of the HTML report."""

    def __init__(self, reporting: Reporting, targets):
        self.reporting = reporting
        self.devices = {t.name: t.device for t in targets}
        self.exercised: dict[tuple[str, str], set[str]] = defaultdict(set)  # (target, operation key) -> node ids

    def pytest_runtest_logreport(self, report):
        if report.when != "call" or is_access_matrix(report.nodeid):
            return
        props = properties(report)
        target = str((props.get("target") or [""])[0])
        for value in props.get("endpoints", []):
            for key in endpoints_of(str(value)):
                self.exercised[(target, key)].add(report.nodeid)

    def section(self) -> str:
        """The HTML: per device of the run, collapsed, the annotated document and its coverage."""
        verdicts: dict[str, dict[str, str]] = defaultdict(dict)  # requirement -> target -> verdict word
        for row in self.reporting.requirement_rows():
            verdicts[row.rid][row.target] = row.verdict.word
        parts = [_STYLE, "<h2>The documents, annotated</h2>"]
        for device in sorted(set(self.devices.values())):
            targets = sorted(name for name, of in self.devices.items() if of == device)
            parts.append(self._device(device, targets, verdicts))
        return "".join(parts)

    def _device(self, device: str, targets: list[str], verdicts: dict[str, dict[str, str]]) -> str:
        found = locator(device)
        checked = [req for req in device_requirements(device) if verdicts.get(req.id)]
        marked: dict[str, list[Mark]] = {}
        unquoted = []
        for req in checked:
            marks = found.marks(secrets.mask(req.text))
            if marks:
                marked[req.id] = marks
            else:
                unquoted.append(req)
        text = []
        for index, part in enumerate(found.parts):
            if not part.text:
                continue
            if index:
                text.append(f'<p class="cl-src">{_esc(part.name)}: the project\'s notes on the document</p>')
            spans = {rid: [m for m in marks if m.part == index] for rid, marks in marked.items()}
            text.append(f'<pre class="cl-text">{annotated_text(part.text, spans, verdicts)}</pre>')
        if unquoted:
            items = "".join(f"<li>{_badges(req.id, verdicts)}<br>{_esc(req.text)} <small>({_esc(req.source)}, "
                            f"{_esc(req.section)})</small></li>"
                            for req in sorted(unquoted, key=lambda r: r.id))
            text.append(f"<h4>Checked, but not quoted verbatim in the document ({len(unquoted)})</h4><ul>{items}</ul>")
        coverage, count_line = self._coverage(device, targets)
        title = (f"{PROFILES[device].title} ({PROFILES[device].document}): {len(marked)} of {len(checked)} checked "
                 f"requirements marked in the text; {count_line}")
        return (f'<details class="cl-doc"><summary>{_esc(title)}</summary><h3>The document, annotated</h3>'
                + "".join(text) + f"<h3>The document's coverage</h3>{coverage}</details>")

    def _coverage(self, device: str, targets: list[str]) -> tuple[str, str]:
        """Every operation of the schema (in its order) with the checks that exercised it per target,
        those none did listed plainly; and the count line."""
        operations = [op.key for op in device_schema(device).operations]
        rows, idle = [], []
        for key in operations:
            cells = []
            for target in targets:
                checks = sorted(self.exercised.get((target, key), ()))
                cells.append(f"<td>{len(checks)}: {_esc(check_names(checks, COVERAGE_CHECK_NAMES))}</td>" if checks
                             else "<td>&ndash;</td>")
            if any(cell != "<td>&ndash;</td>" for cell in cells):
                rows.append(f"<tr><td><code>{_esc(key)}</code></td>{''.join(cells)}</tr>")
            else:
                idle.append(key)
        count_line = (f"{len(operations) - len(idle)} of {len(operations)} documented endpoints exercised "
                      "beyond the access matrix")
        head = "".join(f"<th>{_esc(t)}</th>" for t in targets)
        table = (f'<table class="cl-cov"><tr><th>Endpoint</th>{head}</tr>{"".join(rows)}</table>' if rows else "")
        none = (f"<p>Exercised by no check beyond the access matrix ({len(idle)}): "
                + ", ".join(f"<code>{_esc(key)}</code>" for key in idle) + "</p>") if idle else ""
        return f'<p class="cl-count">{_esc(count_line)}</p>{table}{none}', count_line


def _esc(text) -> str:
    return html.escape(secrets.mask(str(text)))


def _worst(words) -> str:
    return min(words, key=VERDICTS.index)


def _badges(rid: str, verdicts: dict[str, dict[str, str]]) -> str:
    """A requirement's id and a badge per target with its verdict, linking to the requirement's row."""
    links = " ".join(f'<a class="cl-b cl-v{VERDICTS.index(word)}" href="#req-{_esc(target)}-{_esc(rid)}">'
                     f"{_esc(target)}: {word}</a>" for target, word in sorted(verdicts[rid].items()))
    return f'<span class="cl-r">{_esc(rid)} {links}</span>'


def annotated_text(text: str, spans: dict[str, list[Mark]], verdicts: dict[str, dict[str, str]]) -> str:
    """The text escaped, the marked stretches in <mark> coloured by the worst verdict of the requirements
    over them (overlapping marks are cut where any begins or ends: no nesting), a requirement's badges
    after the last mark of each cluster of its marks."""
    badges_at: dict[int, list[str]] = defaultdict(list)
    cuts = {0, len(text)}
    for rid, marks in spans.items():
        for index, mark in enumerate(marks):
            cuts.update((mark.start, mark.stop))
            following = marks[index + 1] if index + 1 < len(marks) else None
            if following is None or following.start - mark.stop > CLUSTER_GAP:
                badges_at[mark.stop].append(rid)
    out = []
    bounds = sorted(cuts)
    for start, stop in zip(bounds, bounds[1:]):
        over = sorted(rid for rid, marks in spans.items() if any(m.start <= start and stop <= m.stop for m in marks))
        piece = html.escape(text[start:stop], quote=False)  # masked already (locator); text, not an attribute
        if over:
            word = _worst(w for rid in over for w in verdicts[rid].values())
            out.append(f'<mark class="cl-v{VERDICTS.index(word)}" title="{html.escape(" ".join(over))}">{piece}</mark>')
        else:
            out.append(piece)
        out.extend(_badges(rid, verdicts) for rid in sorted(badges_at.get(stop, ())))
    return "".join(out)


# Once per report: the colours of the verdicts (html_report.COLOURS) as classes cl-v<index in VERDICTS>.
_STYLE = ("<style>"
          ".cl-doc{margin:6px 0;border:1px solid #ccc;padding:4px 8px}.cl-doc>summary{cursor:pointer;font-weight:bold}"
          ".cl-text{white-space:pre-wrap;font-size:12px;line-height:1.5;background:#fafafa;padding:8px}"
          ".cl-text mark{padding:0 1px}.cl-r{font-size:10px;white-space:nowrap}"
          ".cl-b{color:#fff;padding:0 3px;margin-left:2px;border-radius:2px;text-decoration:none}"
          ".cl-src{font-style:italic}.cl-cov{border-collapse:collapse}.cl-cov td,.cl-cov th{border:1px solid #ccc;padding:2px 4px}"
          + "".join(f".cl-b.cl-v{i}{{background:{COLOURS[w]}}}mark.cl-v{i}{{background:{COLOURS[w]}26;"
                    f"border-bottom:2px solid {COLOURS[w]};color:inherit}}" for i, w in enumerate(VERDICTS))
          + "</style>")
