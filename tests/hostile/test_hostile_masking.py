"""A device that echoes the credentials it is sent: no secret reaches any output, in any encoding,
whole or cut by a preview (conformlab.secrets.mask, conformlab.masking).

The echoing device is a real emulator behind a proxy that puts the request's credential (the EVSE's
Basic password and Authorization header, the WCC Lite `apiKey`) at the top of every JSON object it
answers: whole, base64'd, URL-encoded, JSON-escaped, and once cut in half by schemathesis's payload
preview (the answer is shown up to character 512). The suites run against it in a subprocess, with
checks that fail on those answers (the schema checks and the fuzzing, whose failure text schemathesis
writes after conformlab's report hook), and every output is searched for every encoding of every
secret and for any 8 characters of one.
"""

from __future__ import annotations

import base64
import html
import http.client
import json
import logging
import os
import random
import re
import string
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, quote_plus
from xml.etree import ElementTree

import pytest
import requests

from conformlab import masking, secrets
from conformlab.auth import BasicAuth
from conformlab.emulators import start_emulator

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))  # the own tests' helper modules (pytest puts only tests/hostile there)
from leaks import encodings, secret_pieces_in  # noqa: E402
PREVIEW = 512  # schemathesis shows a response payload up to this many characters, then " // Output truncated..."
# Secrets with characters every encoding changes; no 8 characters of them read like a word.
EVSE_PASSWORD = 'Pw7"q<3&Zk/9+x Y%'
WCC_API_KEY = "Ak9\u00e9Wq7/+Zp3&m<Q"
HOP_BY_HOP = {"connection", "content-length", "transfer-encoding", "keep-alive", "date", "server"}


# -- the echoing device -------------------------------------------------------------------------------


def credential_of(headers) -> str | None:
    """The secret a request carries: the Basic password or the apiKey."""
    if headers.get("apiKey"):
        return headers["apiKey"]
    scheme, _, token = (headers.get("Authorization") or "").partition(" ")
    if scheme == "Basic":
        return base64.b64decode(token).decode("latin-1").partition(":")[2]
    return None


def echoing(answer: dict, headers) -> bytes:
    """`answer` with the request's credential first: cut at the preview boundary, then whole and
    encoded (json.dumps escapes it once more). Pass an empty answer for one the checks must fail."""
    secret = credential_of(headers)
    if not secret:
        return json.dumps(answer).encode()
    escaped = json.dumps(secret)[1:-1]
    head = '{"note": "'
    cut = head + "x" * (PREVIEW - len(head) - len(escaped) // 2) + escaped  # straddles the preview's end
    echo = {"authorization": headers.get("Authorization"), "apiKey": headers.get("apiKey"), "whole": secret,
            "base64": base64.b64encode(secret.encode()).decode(), "url": quote(secret, safe=""),
            "url_plus": quote_plus(secret), "json": json.dumps(secret)}
    rest = json.dumps(answer)[1:-1]
    return (cut + '", "echo": ' + json.dumps(echo) + (", " + rest if rest else "") + "}").encode()


class EchoingProxy(ThreadingHTTPServer):
    """A real emulator behind a proxy that echoes every credential it is sent into the answer: every
    JSON object it answers is only the echo (the checks fail on it), but the device's identity
    (`identity`, a path) keeps its answer and gets the echo on top."""

    daemon_threads = True

    def __init__(self, device: str, auth: dict, identity: str):
        self.emulator = start_emulator(device, auth=auth)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def __getattr__(self, name):
                if name.startswith("do_"):  # every method, also those a fuzzer makes up
                    return self.forward
                raise AttributeError(name)

            def log_message(self, *args):
                pass

            def forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                origin = proxy.emulator.url.split("//", 1)[1]
                connection = http.client.HTTPConnection(origin, timeout=10)
                try:
                    connection.request(self.command, self.path, body=body,
                                       headers={k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")})
                    answer = connection.getresponse()
                    content = answer.read()
                finally:
                    connection.close()
                if "json" in (answer.getheader("Content-Type") or ""):
                    try:
                        parsed = json.loads(content)
                    except ValueError:
                        parsed = None
                    if isinstance(parsed, dict):
                        content = echoing(parsed if self.path == identity else {}, self.headers)
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.emulator.stop()


# A plugin for the subprocess: a library that logs what the device answered (with an exception, as a
# failing call does), so that the log file and the captured logs carry the echoed secrets.
LOGGING_PLUGIN = '''
import logging, os, urllib.request

def pytest_runtest_setup(item):
    request = urllib.request.Request(os.environ["ECHO_URL"], headers={"Authorization": os.environ["ECHO_AUTH"]})
    with urllib.request.urlopen(request, timeout=5) as answer:
        text = answer.read().decode()
    log = logging.getLogger("device.echo")
    log.warning("the device answered %s", text)
    try:
        raise ValueError(text)
    except ValueError:
        log.exception("and failed with it")
'''


def run_suites(tmp_path: Path, targets: str, *args: str) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    """Run the suites against `targets` with every output a run has: terminal (verbose, live logs),
    HTML, JUnit and a DEBUG log file; returns the result and each output's text."""
    (tmp_path / "targets.toml").write_text(targets)
    (tmp_path / "echo_logging.py").write_text(LOGGING_PLUGIN)
    (tmp_path / "home").mkdir()
    echo = tmp_path / "echo_origin"  # the EVSE proxy the logging plugin asks, and the credential it sends
    env = {**os.environ, "HOME": str(tmp_path / "home"), "PYTHONPATH": str(tmp_path),
           "ECHO_URL": echo.read_text() + "/api/v1/info",
           "ECHO_AUTH": "Basic " + base64.b64encode(f"admin:{EVSE_PASSWORD}".encode("latin-1")).decode()}
    files = {name: tmp_path / name for name in ("r.html", "r.xml", "r.log")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "suites", f"--targets-file={tmp_path / 'targets.toml'}", "-p", "no:cacheprovider",
         "-p", "echo_logging", "-rA", "-vv", f"--html={files['r.html']}", f"--junitxml={files['r.xml']}",
         f"--log-file={files['r.log']}", "--log-file-level=DEBUG", "--log-cli-level=WARNING", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    outputs = {"stdout": result.stdout, "stderr": result.stderr}
    outputs.update({name: path.read_text() if path.exists() else "" for name, path in files.items()})
    return result, outputs


@pytest.fixture
def evse_echo(tmp_path):
    proxy = EchoingProxy("esp32-evse", {"username": "admin", "password": EVSE_PASSWORD}, identity="/api/v1/info")
    (tmp_path / "echo_origin").write_text(proxy.url)
    try:
        yield proxy
    finally:
        proxy.close()


def evse_target(name: str, url: str) -> str:
    return (f'[targets.{name}]\ndevice = "esp32-evse"\nbase_url = "{url}"\ntimeout = 5\n'
            f"[targets.{name}.auth]\nusername = \"admin\"\npassword = '{EVSE_PASSWORD}'\n")


def assert_no_leak(outputs: dict[str, str], *secret_values: str) -> None:
    for name, text in outputs.items():
        leaked = secret_pieces_in(text, *secret_values)
        assert not leaked, f"{name} shows {leaked[:5]}: {text[text.find(leaked[0]) - 300:text.find(leaked[0]) + 100]!r}"


def test_no_echoed_secret_reaches_any_output(tmp_path, evse_echo):
    started = time.monotonic()
    result, outputs = run_suites(tmp_path, evse_target("echo", evse_echo.url), "--target=echo",
                                 "-k", "generated and (/state-valid or /config/evse-valid) and not POST and not wifi or read_answer "
                                       "and (/info] or /state]) and not wifi or unknown_endpoint and no-such-endpoint-GET "
                                       "or wrong_credentials and /info-wrong-password")
    # The echoed credential made checks fail, and the failure texts are there to be searched.
    assert result.returncode == 1, result.stdout[-3000:]
    stdout = outputs["stdout"]
    # schemathesis's preview of the answer, cut in the middle of the echoed password; its piece masked
    assert f"x{secrets.MASK} // Output truncated..." in stdout, "schemathesis's failure text is missing"
    assert "the device answered" in outputs["r.log"] and "and failed with it" in outputs["r.log"], outputs["r.log"][:2000]
    assert "Traceback" in outputs["r.log"] and "the device answered" in stdout  # live log
    for name in ("stdout", "r.html", "r.xml", "r.log"):
        assert secrets.MASK in outputs[name], f"{name}: nothing was masked, so nothing was shown"
    assert_no_leak(outputs, EVSE_PASSWORD, f"admin:{EVSE_PASSWORD}")
    # Ordinary words stay readable, also with the made-up "conformlab-wrong-..." password registered.
    for name in ("stdout", "r.html", "r.xml"):
        assert "conformlab-no-such-endpoint" in outputs[name] and "wrong_credentials[echo-GET /info-wrong-password]" in outputs[name]
    assert time.monotonic() - started < 60


def test_no_echoed_secret_reaches_any_output_from_xdist_workers(tmp_path, evse_echo):
    wcc = EchoingProxy("wcc-lite", {"api_key": WCC_API_KEY}, identity="/api/version")
    try:
        targets = evse_target("echo-evse", evse_echo.url) + (
            f'[targets.echo-wcc]\ndevice = "wcc-lite"\nbase_url = "{wcc.url}"\ntimeout = 5\n'
            f'[targets.echo-wcc.auth]\napi_key = "{json.dumps(WCC_API_KEY)[1:-1]}"\n')
        result, outputs = run_suites(tmp_path, targets, "--target=echo-evse", "--target=echo-wcc",
                                     "-k", "generated and /state-valid and not POST and not wifi or answer_matches and version")
    finally:
        wcc.close()
    assert result.returncode == 1, result.stdout[-3000:]
    assert "[gw0]" in outputs["stdout"] or "gw0" in outputs["stdout"], "the run did not use xdist workers"
    assert "Output truncated" in outputs["stdout"]
    for name in ("stdout", "r.html", "r.xml"):
        assert secrets.MASK in outputs[name], f"{name}: nothing was masked"
    assert_no_leak(outputs, EVSE_PASSWORD, f"admin:{EVSE_PASSWORD}", WCC_API_KEY)


# -- mask() -----------------------------------------------------------------------------------------

UNIT_SECRET = 'Uq4"e<8&Jx/2+Rv Ke\u00fc'
secrets.register(UNIT_SECRET, "wd-9f3k")


@pytest.mark.parametrize("form", sorted(set().union(*encodings(UNIT_SECRET).values())))
def test_every_encoding_is_masked_whole(form):
    masked = secrets.mask(f"before {form} after")
    assert masked == f"before {secrets.MASK} after"


@pytest.mark.parametrize("encode", [
    lambda s: s,
    lambda s: base64.b64encode(s.encode()).decode(),
    lambda s: quote(s, safe=""),
    lambda s: quote_plus(s),
    lambda s: json.dumps(s)[1:-1],
    lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
    lambda s: repr(s)[1:-1],
], ids=["raw", "base64", "quote", "quote_plus", "json", "json-unicode", "repr"])
def test_a_cut_secret_is_masked(encode):
    form = encode(UNIT_SECRET)
    middle = len(form) // 2
    # any 8 characters anywhere; a shorter piece next to each cut marker previews use
    for text in (f"x {form[2:10]} y", f"x {form[-9:]}", f"{form[:middle]}...", f"{form[:5]}... tail", f"'{form[:6]}...{form[-5:]}'",
                 f"{form[:4]} // Output truncated...", f"{form[:7]}\u2026", f"{form[:5]} [truncated 200 bytes]"):
        masked = secrets.mask(text)
        assert not secret_pieces_in(masked, UNIT_SECRET), (text, masked)
        assert form[:4] not in masked and form[-4:] not in masked and secrets.MASK in masked, (text, masked)


def test_a_basic_header_is_masked_as_requests_sends_it():
    header = requests.Request("GET", "http://127.0.0.1/", auth=BasicAuth("admin", "p\u00e4ss-7Q:x")).prepare().headers["Authorization"]
    assert secrets.mask(f"< {header}") == f"< Basic {secrets.MASK}"  # base64 of Latin-1 bytes, not UTF-8


def test_ordinary_words_are_left_alone():
    secrets.register("conformlab-wrong-7a1c9e")  # a made-up wrong password, registered like a real one
    text = "conformlab-emulator x-conformlab-reading /conformlab-no-such-endpoint... wd-9f word... ...wd-9"
    assert secrets.mask(text) == text
    assert secrets.mask("conformlab-wrong-7a1c9e and wd-9f3k") == f"{secrets.MASK} and {secrets.MASK}"
    assert secrets.mask("wd-9f...") == f"{secrets.MASK}..."  # a short secret's cut piece, next to a marker


def test_mask_is_fast_on_a_large_text():
    rnd = random.Random(10)
    many = ["".join(rnd.choice(string.ascii_letters + string.digits + "-_.") for _ in range(rnd.randint(12, 40)))
            for _ in range(50)]
    secrets.register(*many)
    words = (ROOT / "README.md").read_text()
    text = (words * (1_000_000 // len(words) + 1))[:1_000_000]
    cuts = sorted(rnd.sample(range(len(text)), 100))
    parts, last = [], 0
    for n, at in enumerate(cuts):
        secret = many[n % 50]
        parts += [text[last:at], secret if n % 2 else secret[:len(secret) // 2] + "..."]
        last = at
    big = "".join(parts + [text[last:]])
    started = time.process_time()  # CPU time: other tests on the same cores do not count
    masked = secrets.mask(big)
    took = time.process_time() - started
    assert took < 0.5, f"{took:.2f} s"
    assert not secret_pieces_in(masked, *many)
    assert masked.count(secrets.MASK) >= 100


# -- output-side masking ------------------------------------------------------------------------------


def test_report_longrepr_of_every_kind_is_masked_in_place():
    from _pytest.reports import TestReport

    try:
        raise AssertionError(f"the device answered {UNIT_SECRET!r}")
    except AssertionError:
        info = pytest.ExceptionInfo.from_current()
    report = TestReport("t.py::t", ("t.py", 1, "t"), {}, "failed", info.getrepr(), "call",
                        sections=[("device exchanges", f"< {UNIT_SECRET}")], user_properties=[("notice", UNIT_SECRET)])
    report.extras = [{"content": UNIT_SECRET, "format_type": "text"}]
    masking.mask_report(report)
    assert report.longrepr.reprcrash.message.endswith(f"'{secrets.MASK}'")  # still pytest's repr, masked
    assert not secret_pieces_in(str(report.longrepr) + repr(vars(report)), UNIT_SECRET)
    skip = TestReport("t.py::t", ("t.py", 1, "t"), {}, "skipped", ("t.py", 1, f"Skipped: {UNIT_SECRET}"), "call")
    masking.mask_report(skip)
    assert skip.longrepr == ("t.py", 1, f"Skipped: {secrets.MASK}")


def test_a_line_written_in_pieces_is_masked_whole(tmp_path):
    with open(tmp_path / "out", "w") as file:
        stream = masking.MaskedStream(file)
        stream.write("E   " + UNIT_SECRET[:7])
        stream.write(UNIT_SECRET[7:] + "\nnext")
        stream.flush()
    assert (tmp_path / "out").read_text() == f"E   {secrets.MASK}\nnext"


def test_log_records_are_masked_when_made(tmp_path):
    previous = logging.getLogRecordFactory()
    logging.setLogRecordFactory(masking._masking_record_factory(previous))
    try:
        record = logging.getLogger("t").makeRecord("t", logging.WARNING, "f", 1, "answer %s", (UNIT_SECRET,), None)
    finally:
        logging.setLogRecordFactory(previous)
    assert record.getMessage() == f"answer {secrets.MASK}"


def test_written_html_report_is_masked_through_its_data(tmp_path):
    """The last resort after pytest-html wrote its page: the JSON data (HTML-escaped in an attribute)
    decoded, a self-contained report's text extras (base64 data URIs) decoded, the page itself."""
    extra = "data:text/plain;charset=utf-8;base64," + base64.b64encode(f"evidence {UNIT_SECRET}".encode()).decode()
    data = {"tests": {"t": [{"log": html.escape(f"E   AssertionError: {UNIT_SECRET!r}"), "extras": [{"content": extra}]}]}}
    page = tmp_path / "r.html"
    page.write_text(f'<title>{html.escape(UNIT_SECRET)}</title>\n<div id="data-container" '
                    f'data-jsonblob="{html.escape(json.dumps(data))}"></div>\n')
    masking.mask_html_file(page)
    text = page.read_text()
    assert not secret_pieces_in(text, UNIT_SECRET), text
    blob = json.loads(html.unescape(re.search(r'data-jsonblob="([^"]*)"', text).group(1)))
    test = blob["tests"]["t"][0]
    assert test["log"] == html.escape(f"E   AssertionError: '{secrets.MASK}'")
    content = test["extras"][0]["content"]
    assert base64.b64decode(content.split("base64,")[1]).decode() == f"evidence {secrets.MASK}"


def test_written_junit_report_is_masked_element_by_element(tmp_path):
    report = tmp_path / "r.xml"
    report.write_text('<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">'
                      f'<testcase name="t"><failure message="{html.escape(repr(UNIT_SECRET))}">'
                      f"{html.escape(UNIT_SECRET, quote=False)}</failure></testcase></testsuite></testsuites>")
    masking.mask_xml_file(report)
    text = report.read_text()
    assert not secret_pieces_in(text, UNIT_SECRET), text
    failure = ElementTree.parse(report).getroot().find("testsuite/testcase/failure")
    assert failure.get("message") == f"'{secrets.MASK}'" and failure.text == secrets.MASK
