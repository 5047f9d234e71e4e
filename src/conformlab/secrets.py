"""The one place that knows the run's secrets, and masks them wherever text leaves the process.

Passwords, tokens, API keys, session tokens and password hashes are registered as soon as the
harness holds them (targets' auth values, credentials a test sets, tokens a device hands out). Reports,
transcripts, logs and test ids pass through `mask()`.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

MASK = "***"
# Keys whose string values in a device's JSON answer are secrets (a leaked Wi-Fi password, a token pair).
SECRET_KEY = re.compile(r"password|token|secret|api_?key|hash", re.IGNORECASE)
_MIN_LENGTH = 3  # shorter values would mask ordinary words; no device takes such a secret
_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern | None = None


def register(*values: str) -> None:
    global _pattern
    with _lock:
        for value in values:
            if isinstance(value, str) and len(value) >= _MIN_LENGTH:
                _secrets.add(value)
        # longest first, so a secret that contains another is masked whole
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None


def register_fields(value) -> None:
    """Register every string under a secret-looking key of a JSON value (at any depth), so that an
    answer that carries one, by design or by a firmware bug, is masked wherever it is shown."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str) and SECRET_KEY.search(str(key)):
                register(item)
            else:
                register_fields(item)
    elif isinstance(value, list):
        for item in value:
            register_fields(item)


def mask(text):
    """Return text (str or bytes) with every registered secret replaced by ***."""
    pattern = _pattern
    if pattern is None or text is None:
        return text
    if isinstance(text, bytes):
        return mask(text.decode("utf-8", "replace")).encode()
    return pattern.sub(MASK, text)


def write_private(name: str, text: str) -> Path:
    """Write `text` to ~/.conformlab/<name>, readable only by the user (for secrets a run must hand
    over, e.g. credentials it could not put back). Never into a report: the caller names the path."""
    folder = Path.home() / ".conformlab"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / name
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an older file keeps its mode otherwise
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    return path
