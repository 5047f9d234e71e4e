"""pytest-html additions: the title, a requirement column, and on top of the report the security
findings, notices, unexpected passes and the per-requirement verdict table (from the controller's
Reporting, summary.py). Every text added here passes through `secrets.mask`.
"""

from __future__ import annotations

import html

from conformlab import secrets
from conformlab.plugin.summary import SUMMARY_NOTES, Reporting, check_names, properties
from conformlab.requirements import all_requirements
from conformlab.verdicts import ERROR, FAIL, FAILED, PASS, PROP_FAILED, UNEXPECTED_PASS, VERDICTS, WAIVED, Row

COLOURS = {PASS: "#1b7d3a", FAIL: "#b00020", UNEXPECTED_PASS: "#b00020", ERROR: "#6a1b9a", WAIVED: "#a66300",
           "PARTIAL": "#1f4e79", "NOT VERIFIED": "#666666", "NOT APPLICABLE": "#8a8a8a"}
HTML_CHECK_NAMES = 20  # check names per reason in the HTML report


class HtmlReport:
    """pytest-html additions: title, requirement column, requirement table and findings on top."""

    def __init__(self, reporting: Reporting, targets):
        self.reporting = reporting
        self.target_names = [t.name for t in targets]

    def pytest_html_report_title(self, report):
        report.title = secrets.mask(f"conformlab: {', '.join(self.target_names)}")

    def pytest_html_results_table_header(self, cells):
        cells.insert(2, '<th class="sortable" data-column-type="requirement">Requirement</th>')

    def pytest_html_results_table_row(self, report, cells):
        props = properties(report)
        known = all_requirements()
        ids = " ".join(props.get("requirement", [])).split()
        failed = set(props.get(PROP_FAILED, []))
        titles = " | ".join(known[r].text for r in ids if r in known)
        shown = " ".join(f"<b>{html.escape(r)}</b>" if r in failed else html.escape(r) for r in ids)
        badge = ""
        if props.get("security_finding"):
            badge = ' <span style="background:#b00020;color:#fff;padding:1px 4px;font-weight:bold">SECURITY FINDING</span>'
        cells.insert(2, f'<td class="col-requirement" title="{html.escape(secrets.mask(titles))}">{secrets.mask(shown)}{badge}</td>')

    def pytest_html_results_summary(self, prefix, summary, postfix, session):
        reporting = self.reporting
        esc = lambda text: html.escape(secrets.mask(str(text)))  # noqa: E731 -- every text added is masked
        if reporting.findings:
            items = "".join(f"<li><b>{esc(t)}</b>: {esc(text)} <small>({esc(n)})</small></li>"
                            for t, n, text in reporting.findings)
            prefix.append('<div style="border:3px solid #b00020;background:#fde7ea;padding:8px;margin:8px 0">'
                          f'<h2 style="color:#b00020;margin:0">Security findings ({len(reporting.findings)})</h2><ul>{items}</ul></div>')
        for kind, colour in (("notice", "#a66300"), ("pacing", "#1f4e79")):
            if reporting.notes.get(kind):
                items = "".join(f"<li><b>{esc(t)}</b>: {esc(text)}</li>" for t, _, text in reporting.notes[kind])
                prefix.append(f'<div style="border:2px solid {colour};padding:8px;margin:8px 0">'
                              f'<h3 style="color:{colour};margin:0">{SUMMARY_NOTES[kind].capitalize()}</h3><ul>{items}</ul></div>')
        if reporting.stale:
            items = "".join(f"<li>UNEXPECTED PASS {esc(s)}</li>" for s in reporting.stale)
            prefix.append('<div style="border:2px solid #b00020;padding:8px"><h3>Unexpected passes: remove the waivers</h3>'
                          f"<ul>{items}</ul></div>")
        rows = reporting.requirement_rows()
        if not rows:
            return
        known = all_requirements()
        counts = {word: sum(1 for r in rows if r.verdict.word == word) for word in VERDICTS}
        tally = ", ".join(f'<span style="color:{COLOURS[w]};font-weight:bold">{n} {w}</span>' for w, n in counts.items() if n)
        lines = []
        for row in rows:
            verdict, req = row.verdict, known.get(row.rid)
            checks = ", ".join(f"{n} {kind}" for kind, n in verdict.counts.items())
            waived = "<br><small>waived on this target</small>" if verdict.waived else ""
            source = esc(f"{req.source}, {req.section}" if req else "")
            lines.append(f'<tr><td>{esc(row.target)}</td><td><b>{esc(row.rid)}</b></td>'
                         f'<td style="color:{COLOURS[verdict.word]};font-weight:bold">{verdict.word}{waived}</td>'
                         f"<td>{esc(req.text if req else '')}<br><small>{source}</small></td><td>{esc(checks)}</td>"
                         f"<td>{self._details(row, esc)}</td></tr>")
        prefix.append(f"<h2>Requirements</h2><p>{tally} (requirement x target)</p>"
                      '<table style="border-collapse:collapse" border="1" cellpadding="3">'
                      "<tr><th>Target</th><th>Requirement</th><th>Verdict</th><th>Document</th><th>Checks</th>"
                      "<th>Details</th></tr>" + "".join(lines) + "</table>")

    @staticmethod
    def _details(row: Row, esc) -> str:
        if row.verdict.word == UNEXPECTED_PASS:
            return esc("is waived but every check of it passed; remove the waiver")
        items = []
        for reason in row.verdict.reasons:
            what = "failed" if reason.kind == FAILED else reason.kind
            names = esc(check_names(reason.checks, HTML_CHECK_NAMES)) if reason.checks else ""
            items.append(f"<li><b>{esc(what)}</b> ({len(reason.checks)}): {esc(reason.reason)}"
                         + (f"<br><small>{names}</small>" if names else "") + "</li>")
        return f'<ul style="margin:0;padding-left:16px">{"".join(items)}</ul>' if items else ""
