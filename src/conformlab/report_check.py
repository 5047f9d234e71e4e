"""The HTML report as its reader sees it: opened in a real headless browser (Debian's Chromium, driven
by Playwright), with what a mailed report must not do reported.

`check_report(path)` gives the file's size, how long the page takes from navigation start until
pytest-html 4 has rendered its results table (it builds the table with JavaScript from data embedded
in the file), the console errors and uncaught page errors, every request the page tried that is not
the file itself or a data:/blob: URL (blocked: a mailed report must fetch nothing), and where the
verdict summary ("Verdict per target", plugin/html_report.py) stands in the first screen.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

# The machine's Chromium on a closed network: without the background-networking flags it tries to
# reach Google's hosts at every start. Playwright gives each launch a new empty profile directory.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CHROMIUM_NAMES = ("chromium", "chromium-browser")  # Debian's package "chromium": /usr/bin/chromium
VERDICT_HEADING = "Verdict per target"  # the report's first section (plugin/html_report.py, _verdicts_per_target)
RESULT_ROWS = "#results-table tbody.results-table-row"  # pytest-html 4: one per result, or its "No results" row
DEFAULT_TIMEOUT = 120.0  # seconds for the whole check: start, load, render
SHOWN = 20  # lines per kind of problem; the summary counts them all
# The verdict summary's top and bottom in page coordinates; null when the report has none shown.
_SUMMARY_BOX = """heading => {
    const h2 = [...document.querySelectorAll('h2')].find(e => e.textContent.trim() === heading);
    if (!h2 || !h2.checkVisibility()) return null;
    const table = h2.nextElementSibling && h2.nextElementSibling.tagName === 'TABLE' ? h2.nextElementSibling : h2;
    return [h2.getBoundingClientRect().top + window.scrollY, table.getBoundingClientRect().bottom + window.scrollY];
}"""
_RENDERED_AT = "() => new Promise(done => requestAnimationFrame(() => done(performance.now())))"


class BrowserUnavailable(Exception):
    """Playwright or Chromium is missing or does not start: one line saying what to install."""


@dataclass
class ReportCheck:
    path: Path
    size: int  # bytes
    viewport: tuple[int, int]
    render_seconds: float | None  # navigation start to the results table drawn; None: not within the time limit
    rows: int = 0  # result rows pytest-html rendered
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)  # uncaught exceptions
    requests: list[str] = field(default_factory=list)  # URLs the page tried beyond the file (blocked)
    summary_top: float | None = None  # y of the verdict summary's heading; None: no verdict summary shown
    summary_bottom: float | None = None  # y where its table ends

    @property
    def summary_visible(self) -> bool:
        """The verdict summary starts inside the first screen: seen without scrolling."""
        return self.summary_top is not None and self.summary_top < self.viewport[1]

    def problems(self) -> list[str]:
        """One line per thing a reader of the mailed report would trip over."""
        height = self.viewport[1]
        found = []
        for items, what in ((self.console_errors, "console error"), (self.page_errors, "page error"),
                            (self.requests, "request beyond the file (blocked)")):
            found += [f"{what}: {item}" for item in items[:SHOWN]]
            if len(items) > SHOWN:
                found.append(f"{what}: {len(items) - SHOWN} more")
        if self.render_seconds is None:
            found.append("the results table was not rendered within the time limit")
        if self.summary_top is None:
            found.append(f'no verdict summary ("{VERDICT_HEADING}") shown')
        elif not self.summary_visible:
            found.append(f"verdict summary below the first screen: at y={self.summary_top:.0f} of {height} "
                         f"(scroll {self.summary_top - height + 1:.0f} px to reach it)")
        return found

    def summary(self) -> str:
        """"5.5 MB, rendered in 2.3 s, no console error, verdict summary visible at y=412 of 768 ..."."""
        height = self.viewport[1]
        parts = [_size(self.size)]
        parts.append(f"rendered in {self.render_seconds:.1f} s ({self.rows} result row{'s' if self.rows != 1 else ''})"
                     if self.render_seconds is not None else "not rendered")
        if not self.console_errors and not self.page_errors:
            parts.append("no console error")
        for found, one, many in ((self.console_errors, "console error", "console errors"),
                                 (self.page_errors, "page error", "page errors"),
                                 (self.requests, "request beyond the file", "requests beyond the file")):
            if found:
                parts.append(f"{len(found)} {one if len(found) == 1 else many}")
        if self.summary_top is None:
            parts.append("no verdict summary")
        else:
            where = "visible" if self.summary_visible else "NOT visible"
            whole = ("whole table in view" if self.summary_bottom <= height
                     else f"its table runs on to y={self.summary_bottom:.0f}")
            parts.append(f"verdict summary {where} at y={self.summary_top:.0f} of {height} ({whole})")
        return ", ".join(parts)


def check_report(path: str | Path, *, viewport: tuple[int, int] = (1366, 768), timeout: float = DEFAULT_TIMEOUT,
                 screenshot: str | Path | None = None) -> ReportCheck:
    """Open a pytest-html report in headless Chromium and say what its reader meets (see the module
    doc). Bounded by `timeout` seconds in all; `screenshot` saves the first screen as PNG.
    Raises FileNotFoundError for a missing file, BrowserUnavailable when the browser is missing."""
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    sync_playwright, playwright_error, playwright_timeout = _playwright()
    executable = _chromium()
    url = path.as_uri()
    deadline = time.monotonic() + timeout

    def left_ms() -> float:
        return max(1.0, (deadline - time.monotonic()) * 1000)

    check = ReportCheck(path=path, size=path.stat().st_size, viewport=viewport, render_seconds=None)

    def seen(request) -> None:
        if not _local(request.url, url):
            check.requests.append(request.url)

    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS, timeout=left_ms())
            try:
                page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
                page.set_default_timeout(left_ms())  # every step below within the one time limit
                page.on("console", lambda message: check.console_errors.append(message.text)
                        if message.type == "error" else None)
                page.on("pageerror", lambda error: check.page_errors.append(str(error)))
                page.on("request", seen)
                page.route("**/*", lambda route: route.continue_() if _local(route.request.url, url) else route.abort())
                page.goto(url, wait_until="load", timeout=left_ms())
                try:
                    page.wait_for_selector(RESULT_ROWS, state="attached", timeout=left_ms())
                    check.render_seconds = page.evaluate(_RENDERED_AT) / 1000
                except playwright_timeout:
                    pass
                check.rows = page.locator(RESULT_ROWS).count()
                box = page.evaluate(_SUMMARY_BOX, VERDICT_HEADING)
                if box:
                    check.summary_top, check.summary_bottom = box
                if screenshot:
                    page.screenshot(path=str(screenshot))
            finally:
                browser.close()
    except playwright_timeout as exc:
        raise TimeoutError(f"{path.name}: not loaded within {timeout:g} s ({_first_line(exc)})") from None
    except playwright_error as exc:
        raise BrowserUnavailable(f"Chromium failed ({executable}): {_first_line(exc)}") from None
    return check


def _local(request_url: str, file_url: str) -> bool:
    """The report file itself (any query or fragment its script adds) or data it holds."""
    return request_url.split("#")[0].split("?")[0] == file_url or request_url.startswith(("data:", "blob:"))


def _playwright():
    try:
        from playwright.sync_api import Error, TimeoutError, sync_playwright
    except ImportError:
        raise BrowserUnavailable("Playwright is not installed: pip install playwright "
                                 "(a dependency of conformlab: pip install -e .)") from None
    return sync_playwright, Error, TimeoutError


def _chromium() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise BrowserUnavailable("Chromium not found (chromium on PATH): install Debian's package: "
                             "apt-get install chromium (Playwright's own browser download is not used)")


def _size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} KB" if size >= 1e3 else f"{size} bytes"


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
