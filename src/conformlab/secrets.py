"""The one place that knows the run's secrets, and masks them wherever text leaves the process.

Passwords, tokens, API keys, session tokens and password hashes are registered as soon as the
harness holds them (targets' auth values, credentials a test sets, tokens a device hands out). Reports,
transcripts, logs and test ids pass through `mask()`; `conformlab.masking` applies it last, to
everything the terminal, the HTML and JUnit reports and the logs receive.

`mask()` recognises a secret in every form output gives it (its encodings: Basic base64, URL-encoded,
JSON-, repr-, HTML- and XML-escaped, up to three escapes deep) and a secret that a preview cut in half:
any piece of at least 8 characters of one of its forms, wherever it stands, and a piece of at least 4
characters next to a cut marker ("...", "…", schemathesis's "// Output truncated...", "[truncated").
Ordinary words stay readable: a secret shorter than 8 characters is masked only whole (or as a cut
piece next to a marker), and a piece made only of word characters (letters, at most one capital,
"-", "_", ".", ...: "conformlab-" of a made-up "conformlab-wrong-..." password) counts only next to a
marker; a piece with a digit, a symbol or mixed case (any 8 characters of a token, a hash, base64) is
masked anywhere.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import threading
from pathlib import Path
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

MASK = "***"
# Keys whose string values in a device's JSON answer are secrets (a leaked Wi-Fi password, a token pair;
# WisDM's TLS `clientKey`, `bsToken`, a SIM's `pinCode`) ...
SECRET_KEY = re.compile(r"password|token|secret|.key$|hash|pin_?code", re.IGNORECASE)
# ... except pagination cursors, which are no credential (WisDM's `nextToken`, `clientToken`).
NOT_SECRET_KEY = re.compile(r"next_?token|client_?token", re.IGNORECASE)
# A bare `key` is a secret in a Wi-Fi object (WisDM's LAN Wi-Fi key), not elsewhere (a log file's object key).
WIFI_FIELDS = frozenset({"ssid", "encryption"})
# A pre-signed URL's secret is its signature (or a credential) in the query; the rest names a gateway, a
# day, an algorithm (masking those would mangle every date and serial number in a report).
PRESIGNED_URL = re.compile(r"download_?url|presigned", re.IGNORECASE)
SIGNATURE_PARAMETER = re.compile(r"sig|credential|token|key", re.IGNORECASE)
_MIN_LENGTH = 3  # shorter values would mask ordinary words; no device takes such a secret
PIECE = 8  # a piece of a secret this long is recognised anywhere
CUT_PIECE = 4  # a piece this long is recognised next to a cut marker
# What previews put where they cut: pytest's saferepr and assertion truncation ("..."), schemathesis's
# payload preview (" // Output truncated..."), its line and text shortening ("..." and " ...").
CUT_MARKER = re.compile(r"\s?(?://\s?Output truncated\.\.\.|\.\.\.|\u2026|[\[(]truncated)", re.IGNORECASE)
# A window of only word characters could be part of an ordinary word or name (see the module doc).
_WORD_LIKE = re.compile(r"[a-z_\-. /:,'\"]*[A-Z]?[a-z_\-. /:,'\"]*|[A-Z_\-. /:,'\"]*")
# The piece scan samples the text every _STEP characters with _GRAM characters: every piece of
# PIECE characters contains a sample (_STEP + _GRAM - 1 <= PIECE), which is then extended both ways.
_GRAM, _STEP = 5, 4


def _escapes(text: str) -> list[str]:
    """The escaped forms output gives a text: pytest's repr (of the str and of its bytes), JSON with
    and without ensure_ascii, HTML (html.escape and Jinja's markupsafe), XML text and attributes."""
    return [
        repr(text)[1:-1],
        repr(text.encode("utf-8", "surrogatepass"))[2:-1],
        json.dumps(text)[1:-1],
        json.dumps(text, ensure_ascii=False)[1:-1],
        html.escape(text),
        html.escape(text).replace("&quot;", "&#34;").replace("&#x27;", "&#39;"),
        html.escape(text, quote=False),
        html.escape(text, quote=False).replace('"', "&quot;").replace("\n", "&#10;"),
    ]


def encoded_forms(secret: str) -> set[str]:
    """Every form a secret takes in output: raw, base64 (standard, without padding, URL-safe; of
    UTF-8 and Latin-1), URL-encoded (quote with and without safe "/", quote_plus), each escaped up to
    three times."""
    forms = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}
    # base64 of its UTF-8 bytes, and of its Latin-1 bytes (requests encodes Basic credentials so)
    encoded = {secret.encode("utf-8", "surrogatepass")}
    if all(ord(c) < 256 for c in secret):
        encoded.add(secret.encode("latin-1"))
    for raw in encoded:
        b64 = base64.b64encode(raw).decode()
        forms |= {b64, b64.rstrip("="), base64.urlsafe_b64encode(raw).decode()}
    layer = set(forms)
    for _ in range(3):
        layer = {escaped for form in layer for escaped in _escapes(form)} - forms
        forms |= layer
    return {form for form in forms if len(form) >= _MIN_LENGTH}


def _distinctive(piece: str) -> bool:
    """True if a piece of a secret has an 8-character window that is not word-like."""
    return any(not _WORD_LIKE.fullmatch(piece[i:i + PIECE]) for i in range(len(piece) - PIECE + 1))


class _Index:
    """What mask() looks up, built as secrets are registered (mask() only reads it)."""

    def __init__(self):
        self.forms: set[str] = set()
        self.whole: re.Pattern | None = None  # forms found only whole: short or without a distinctive window
        self.whole_forms: set[str] = set()
        self.grams: dict[str, list[tuple[str, int]]] = {}  # sample -> (form, offset), forms of PIECE+ chars
        self.prefixes: set[str] = set()  # pieces of CUT_PIECE+ chars a form starts with (cut after them)
        self.suffixes: set[str] = set()  # ... ends with (cut before them)
        self.longest = 0

    def add(self, form: str) -> None:
        if form in self.forms:
            return
        self.forms.add(form)
        self.longest = max(self.longest, len(form))
        for length in range(CUT_PIECE, len(form)):
            self.prefixes.add(form[:length])
            self.suffixes.add(form[-length:])
        if len(form) >= PIECE and _distinctive(form):
            for offset in range(len(form) - _GRAM + 1):
                self.grams.setdefault(form[offset:offset + _GRAM], []).append((form, offset))
        else:
            self.whole_forms.add(form)

    def compile(self) -> None:
        if self.whole_forms:
            ordered = sorted(self.whole_forms, key=len, reverse=True)  # a secret that contains another: whole
            self.whole = re.compile("|".join(re.escape(f) for f in ordered))


_lock = threading.Lock()
_secrets: set[str] = set()
_index = _Index()


def register(*values: str) -> None:
    with _lock:
        for value in values:
            if isinstance(value, str) and len(value) >= _MIN_LENGTH and value not in _secrets:
                _secrets.add(value)
                for form in encoded_forms(value):
                    _index.add(form)
        _index.compile()


def register_fields(value) -> None:
    """Register every string under a secret-looking key of a JSON value (at any depth), so that an
    answer that carries one, by design or by a firmware bug, is masked wherever it is shown."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str):
                register(*_secrets_in(str(key), item, value))
            else:
                register_fields(item)
    elif isinstance(value, list):
        for item in value:
            register_fields(item)


def _secrets_in(key: str, item: str, siblings: dict) -> list[str]:
    """The secrets a field of an answer holds."""
    if NOT_SECRET_KEY.fullmatch(key):
        return []
    if key.lower() == "key":
        return [item] if WIFI_FIELDS & set(siblings) else []
    if PRESIGNED_URL.search(key):
        query = urlsplit(item).query
        signed = [value for name, value in parse_qsl(query) if SIGNATURE_PARAMETER.search(name)]
        return signed or [query]
    return [item] if SECRET_KEY.search(key) else []


def mask(text):
    """Return text (str or bytes) with every registered secret, in any of its forms, whole or cut by a
    preview, replaced by ***."""
    if text is None or not _secrets:
        return text
    if isinstance(text, bytes):
        return mask(text.decode("utf-8", "replace")).encode()
    merged: list[list[int]] = []
    for start, stop in sorted(_spans(text, _index)):
        if merged and start <= merged[-1][1]:  # overlapping or adjacent: one mask
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    if not merged:
        return text
    out, end = [], 0
    for start, stop in merged:
        out += [text[end:start], MASK]
        end = stop
    out.append(text[end:])
    return "".join(out)


def mask_value(value):
    """A JSON value with every string masked, keys too (a results file, an answer kept as data)."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, list):
        return [mask_value(item) for item in value]
    if isinstance(value, dict):
        return {mask(str(key)): mask_value(item) for key, item in value.items()}
    return value


def _spans(text: str, index: _Index) -> list[tuple[int, int]]:
    """(start, stop) of every secret form or piece of one in text (they may overlap)."""
    spans = []
    if index.whole is not None:
        spans.extend(match.span() for match in index.whole.finditer(text))
    grams, n = index.grams, len(text)
    for q in [q for q in range(0, n - _GRAM + 1, _STEP) if text[q:q + _GRAM] in grams]:
        for form, offset in grams[text[q:q + _GRAM]]:
            start, at = q, offset
            while start > 0 and at > 0 and text[start - 1] == form[at - 1]:
                start, at = start - 1, at - 1
            stop, to = q + _GRAM, offset + _GRAM
            while stop < n and to < len(form) and text[stop] == form[to]:
                stop, to = stop + 1, to + 1
            if stop - start >= PIECE and _distinctive(text[start:stop]):
                spans.append((start, stop))
    for marker in CUT_MARKER.finditer(text):
        before, after = marker.start(), marker.end()
        for length in range(min(index.longest, before), CUT_PIECE - 1, -1):
            if text[before - length:before] in index.prefixes:
                spans.append((before - length, before))
                break
        for length in range(min(index.longest, n - after), CUT_PIECE - 1, -1):
            if text[after:after + length] in index.suffixes:
                spans.append((after, after + length))
                break
    return spans


def write_private(name: str, text: str) -> Path:
    """Write `text` to ~/.conformlab/<name> (`name` may hold a folder), readable only by the user,
    on disk before returning: a new file (mode 600, fsynced) renamed over the old one, so a run
    killed at any moment leaves the old file or the new one, never half of one. For what a run must
    hand over or keep (credentials it could not put back, re-keyed tokens, the write journal);
    never a report: the caller names the path."""
    path = Path.home() / ".conformlab" / name
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fresh = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # a leftover file keeps its mode otherwise
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(text.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(fresh, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)
    return path
