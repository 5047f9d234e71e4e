"""The HTML report as its reader meets it (conformlab.report_check): one real run of the suites with
every bundled target of targets.toml, a few cheap checks each (the report still has all of them and
their verdict table), opened in headless Chromium: it renders without console or page errors, fetches
nothing beyond the file, shows the verdict summary without scrolling; and the file carries no local
path, user or host name and no file:// link (a report to mail to a vendor).

Without Chromium or Playwright the browser tests are skipped, with the reason; where CI is set
(.ci/run sets it and installs Debian's chromium) they fail instead.
"""

from __future__ import annotations

import base64
import getpass
import html
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conformlab.report_check import VERDICT_HEADING, check_report
from conformlab.targets import load_targets

ROOT = Path(__file__).resolve().parents[1]
# One cheap check per device (the WattWächter's paced one included), and one NOT VERIFIED skip on
# wisdm-emulator-tls (not destructive), whose text pytest gives with the absolute path of its file.
CHECKS = ("time_set or health_check or timestamps_are_epoch or error_answers_carry or version_answers"
          " or password_reset_answers")
VIEWPORT = (1366, 768)
RENDER_BOUND = 30.0  # seconds; a 5.5 MB report of a full run renders in about 3-4 s here
DATA_BLOB = re.compile(r'data-jsonblob="([^"]*)"')
TEXT_DATA_URI = re.compile(r"data:text/[\w.+-]+[^,]*;base64,([A-Za-z0-9+/=]*)")
BASE64_PAYLOAD = re.compile(r"(;base64,)[A-Za-z0-9+/=]+")  # grepped decoded, not as random letters


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    """`pytest` as the README runs it (every `emulator = true` target), on one xdist worker (cheap;
    pytest-xdist's worker line, with the Python executable's path, still heads every log). --html is
    given without --self-contained-html: the report is one file to mail all the same."""
    folder = tmp_path_factory.mktemp("browser")
    report = folder / "report.html"
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "1", "-k", CHECKS,
                             f"--html={report}", f"--junitxml={folder / 'report.xml'}"],  # self-contained unasked
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and report.is_file(), result.stdout[-3000:] + result.stderr[-2000:]
    text = report.read_text(encoding="utf-8")
    data = json.loads(html.unescape(DATA_BLOB.search(text).group(1)))
    return {"path": report, "folder": folder, "html": text, "data": data}


def browser_missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "Playwright is not installed (pip install -e .)"
    if not shutil.which("chromium"):
        return "Chromium is not installed (Debian: apt-get install chromium)"
    return None


def need_browser() -> None:
    reason = browser_missing()
    if reason and os.environ.get("CI"):
        pytest.fail(f"CI is set and the report's browser check cannot run: {reason}")
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def checked(run):
    need_browser()
    return check_report(run["path"], viewport=VIEWPORT, timeout=120)


def test_every_bundled_target_is_in_the_verdict_summary(run):
    targets = [t.name for t in load_targets(ROOT / "targets.toml")]
    assert len(targets) >= 10
    start = run["html"].index(f"<h2>{VERDICT_HEADING}</h2>")
    summary = run["html"][start:run["html"].index("</table>", start)]
    assert re.findall(r"<tr><td[^>]*><b>([^<]+)</b></td>", summary) == targets


def test_the_report_renders_without_errors_and_fetches_nothing(checked, run):
    assert checked.console_errors == [] and checked.page_errors == [], checked.problems()
    assert checked.requests == []
    assert checked.render_seconds is not None and checked.render_seconds < RENDER_BOUND, checked.summary()
    assert checked.rows == sum(len(reports) for reports in run["data"]["tests"].values()) > 10


def test_the_verdict_summary_is_seen_without_scrolling(checked):
    assert checked.summary_visible, checked.problems()
    # ... all of it: every target's row is in the first screen
    assert checked.summary_bottom <= VIEWPORT[1], checked.summary()
    assert checked.problems() == []


def test_the_report_names_no_local_path_user_or_host(run):
    """Grepped in the page and in its embedded data (logs, environment, the text of its extras)."""
    text = run["html"]
    data = json.dumps(run["data"])
    extras = "\n".join(base64.b64decode(m).decode("utf-8", "replace") for m in TEXT_DATA_URI.findall(data))
    everything = "\n".join([BASE64_PAYLOAD.sub(r"\1", text), BASE64_PAYLOAD.sub(r"\1", html.unescape(data)), extras])
    assert "file://" not in everything.lower()
    user = getpass.getuser()
    places = {str(ROOT), str(Path.home()), str(run["folder"]), f"pytest-of-{user}", sys.prefix}
    for place in places:
        found = re.search(r"(?<![\w.-])" + re.escape(place) + r"(?![\w.-])", everything)
        assert not found, f"{place!r} in the report: ...{everything[max(0, found.start() - 150):found.end() + 50]}"
    host = socket.gethostname()
    assert not re.search(rf"(?<![\w.-]){re.escape(host)}(?![\w-])", everything), f"host name {host!r} in the report"
    # the user's name as a bare word, unless it is a word of the vendor documents shown (WisDM: "root password")
    documents = " ".join(p.read_text(encoding="utf-8") for p in (ROOT / "src/conformlab/documents").glob("*"))
    if not re.search(rf"\b{re.escape(user)}\b", documents):
        assert not re.search(rf"\b{re.escape(user)}\b", everything), f"user name {user!r} in the report"
    # what was there before: the skip names its file, now relative to the project
    skips = [r["log"] for reports in run["data"]["tests"].values() for r in reports if r["result"] == "Skipped"]
    assert skips and all("suites/wisdm/test_gateway_ops.py" in log for log in skips), skips


def test_check_report_command(checked, run):
    result = subprocess.run([sys.executable, "-m", "conformlab", "check-report", str(run["path"])],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.fullmatch(r"\d+ KB, rendered in \d+\.\d s \(\d+ result rows\), no console error, verdict summary "
                        r"visible at y=\d+ of 768 \(whole table in view\)\n", result.stdout), result.stdout


def test_the_check_sees_what_a_mailed_report_must_not_do(tmp_path):
    """The same check on a page that does it all: logs an error, throws, fetches, links a stylesheet
    beside it, and puts the verdict summary two screens down."""
    need_browser()
    page = tmp_path / "bad.html"
    page.write_text('<html><head><link rel="stylesheet" href="assets/style.css"></head><body>'
                    '<table id="results-table"><tbody class="results-table-row"><tr><td>1</td></tr></tbody></table>'
                    f'<div style="height:2000px"></div><h2>{VERDICT_HEADING}</h2><table><tr><td>t</td></tr></table>'
                    '<script>console.error("logged"); fetch("http://127.0.0.1:9/x").catch(() => {});'
                    ' throw new Error("thrown")</script></body></html>')
    found = check_report(page, viewport=VIEWPORT, timeout=60)
    assert "logged" in found.console_errors and any("thrown" in e for e in found.page_errors)
    assert set(found.requests) == {(tmp_path / "assets/style.css").as_uri(), "http://127.0.0.1:9/x"}
    assert found.summary_top > 2000 and not found.summary_visible
    assert "verdict summary below the first screen" in found.problems()[-1]
