"""Masking as the last step before any output: what the terminal, the HTML and JUnit reports and the
logs receive passes through `secrets.mask`, after every plugin has written its text.

Why each place is needed (checked on pytest 9.1, schemathesis 4.32, hypothesis 6.170, pytest-html 4.2):
- reports: pytest-html's `pytest_runtest_makereport` wrapper is outside conformlab's and adds extras
  (hypothesis's statistics); schemathesis's `pytest_exception_interact` replaces a failed report's
  `longrepr` with its own failure text after the report was made and logged (pytest-html reads the
  report only at teardown; the terminal summary at the end). So every report is masked again first
  thing in `pytest_runtest_logreport` (before the terminal, JUnit, pytest-html and xdist's transport
  see it) and after `pytest_exception_interact`.
- terminal: the terminal writer's stream masks every line, whatever plugin writes it (summaries,
  warnings, live logs, xdist workers' reports). Installed before pytest's terminal reporter exists.
- logs: every log record is masked when it is made (its message, exception and stack text), so every
  handler (pytest's capture, `--log-file`, live logs, any plugin's) receives masked text.
- files: the written HTML report (its JSON data decoded, including the base64 text extras of a
  self-contained report), JUnit XML and results JSON are masked once more after the session, for text
  that no hook reached.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import html
import json
import logging
import os
import re
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from conformlab import secrets

_DEPTH = 12  # a failure text's structure (chain, traceback, entry, arguments) is a few levels deep


def mask_report(report) -> None:
    """Mask every text a test or collection report carries: the longrepr of any kind (a string, a
    skip's tuple, pytest's exception representations, in place), sections, properties, extras,
    xfail reasons and what plugins store on it. The node id is left alone: masked where it is made (conformlab.plugin.collection),
    it must stay the item's on every xdist worker."""
    for name, value in list(vars(report).items()):
        if name not in ("nodeid", "keywords"):
            setattr(report, name, _masked(value, 0))


def _masked(value, depth: int):
    if isinstance(value, str):
        return secrets.mask(value)
    if depth > _DEPTH:
        return value
    if type(value) is list:
        return [_masked(item, depth + 1) for item in value]
    if type(value) is tuple:
        return tuple(_masked(item, depth + 1) for item in value)
    if type(value) is dict:
        return {key: _masked(item, depth + 1) for key, item in value.items()}
    if hasattr(value, "toterminal") and hasattr(value, "__dict__"):  # pytest's failure representations
        for name, item in list(vars(value).items()):
            setattr(value, name, _masked(item, depth + 1))
    return value


class MaskedStream:
    """A text stream that masks what it passes on. A line is held until it ends or is flushed, so a
    secret written in two pieces of one line is masked whole; pytest flushes its progress output."""

    def __init__(self, stream):
        self.stream = stream
        self.pending = ""

    def write(self, text: str) -> int:
        self.pending += text
        end = self.pending.rfind("\n") + 1
        if end:
            self.stream.write(secrets.mask(self.pending[:end]))
            self.pending = self.pending[end:]
        return len(text)

    def flush(self) -> None:
        if self.pending:
            self.stream.write(secrets.mask(self.pending))
            self.pending = ""
        self.stream.flush()

    def __getattr__(self, name):  # isatty, encoding, fileno, ...: the stream's own
        return getattr(self.stream, name)


def _masking_record_factory(make_record):
    """A log record factory that masks a record as it is made: every handler then gets masked text."""
    formatter = logging.Formatter()

    def make(*args, **kwargs):
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 -- logging reports arguments that do not fit by printing them
            message = f"{record.msg} (arguments not shown: they do not fit the message)"
        record.msg, record.args = secrets.mask(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = secrets.mask(formatter.formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = secrets.mask(record.stack_info)
        return record

    return make


def _report_path(option) -> Path | None:
    return Path(os.path.expandvars(option)).expanduser().resolve() if option else None


class OutputMasking:
    """The plugin ("conformlab-masking") that masks reports, the terminal, logs and report files."""

    def __init__(self, config):
        self.config = config
        self.controller = not hasattr(config, "workerinput")
        self.previous_factory = logging.getLogRecordFactory()
        self.record_factory = _masking_record_factory(self.previous_factory)
        logging.setLogRecordFactory(self.record_factory)
        self.stream = None
        if self.controller:
            # pytest's terminal reporter takes sys.stdout when it is configured, after conformlab.
            self.stream = sys.stdout = MaskedStream(sys.stdout)
            atexit.register(self.stream.flush)  # a last line written without a newline

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_logreport(self, report):
        mask_report(report)  # before any other plugin sees the report
        return (yield)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_collectreport(self, report):
        mask_report(report)
        return (yield)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_exception_interact(self, node, call, report):
        try:
            return (yield)
        finally:
            mask_report(report)  # schemathesis rewrote its longrepr

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session):
        try:
            return (yield)
        finally:
            if self.controller:  # after pytest-html and junitxml wrote their files
                option = self.config.option
                html_path = _report_path(getattr(option, "htmlpath", None))
                if html_path and html_path.is_file():
                    mask_html_file(html_path)
                xml_path = _report_path(getattr(option, "xmlpath", None))
                if xml_path and xml_path.is_file():
                    mask_xml_file(xml_path)
                json_path = getattr(self.config.pluginmanager.get_plugin("conformlab-results"), "path", None)
                if json_path and json_path.is_file():
                    mask_json_file(json_path)

    def pytest_unconfigure(self, config):
        if logging.getLogRecordFactory() is self.record_factory:
            logging.setLogRecordFactory(self.previous_factory)
        if self.stream is not None:
            self.stream.flush()
            if sys.stdout is self.stream:
                sys.stdout = self.stream.stream


def install(config) -> None:
    config.pluginmanager.register(OutputMasking(config), "conformlab-masking")


# -- report files -------------------------------------------------------------------------------

_DATA_BLOB = re.compile(r'(data-jsonblob=")([^"]*)(")')  # pytest-html 4's report data
_TEXT_DATA_URI = re.compile(r"(data:(?:text/[\w.+-]+|application/json)[^,]*;base64,)([A-Za-z0-9+/=]*)")


def mask_html_file(path: Path) -> None:
    """Mask a written pytest-html report: its JSON data decoded (logs, cells, base64 text extras),
    the rest of the page as it stands."""
    text = path.read_text(encoding="utf-8")
    parts, done = [], 0
    for match in _DATA_BLOB.finditer(text):
        parts.append(secrets.mask(text[done:match.start(2)]))
        try:
            data = json.loads(html.unescape(match.group(2)))
        except ValueError:
            parts.append(secrets.mask(match.group(2)))
        else:
            parts.append(html.escape(json.dumps(_masked_data(data))))
        done = match.end(2)
    parts.append(secrets.mask(text[done:]))
    masked = "".join(parts)
    if masked != text:
        path.write_text(masked, encoding="utf-8")


def _masked_data(value):
    if isinstance(value, str):  # an extra's content is a data URI of its own
        return _TEXT_DATA_URI.sub(_masked_data_uri, value) if value.startswith("data:") else secrets.mask(value)
    if isinstance(value, list):
        return [_masked_data(item) for item in value]
    if isinstance(value, dict):
        return {key: _masked_data(item) for key, item in value.items()}
    return value


def _masked_data_uri(match: re.Match) -> str:
    try:
        content = base64.b64decode(match.group(2), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return match.group(0)
    return match.group(1) + base64.b64encode(secrets.mask(content).encode()).decode()


def mask_xml_file(path: Path) -> None:
    """Mask a written JUnit XML report, element by element (text unescaped, so every escape is right)."""
    try:
        tree = ElementTree.parse(path)
    except ElementTree.ParseError:
        text = path.read_text(encoding="utf-8")
        if secrets.mask(text) != text:
            path.write_text(secrets.mask(text), encoding="utf-8")
        return
    changed = False
    for element in tree.iter():
        for name in ("text", "tail"):
            value = getattr(element, name)
            if value and secrets.mask(value) != value:
                setattr(element, name, secrets.mask(value))
                changed = True
        for key, value in list(element.attrib.items()):
            if secrets.mask(value) != value:
                element.set(key, secrets.mask(value))
                changed = True
    if changed:
        tree.write(path, encoding="utf-8", xml_declaration=True)


def mask_json_file(path: Path) -> None:
    """Mask a written results file (conformlab.plugin.results), string by string, keys too."""
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except ValueError:
        if secrets.mask(text) != text:
            path.write_text(secrets.mask(text), encoding="utf-8")
        return
    masked = secrets.mask_value(data)
    if masked != data:
        path.write_text(json.dumps(masked, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
