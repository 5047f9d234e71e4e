"""What a leaked secret looks like in a report or an output.

`session_secrets_in`: an MC252 session secret, whatever its value (the emulator's session tokens are
32 hex characters, the login hashes 40). `secret_pieces_in`: a known secret in any encoding output
gives it, whole or any 8 characters of it (what a preview leaves of a cut one); the encodings are
listed here independently of `conformlab.secrets`, so its omissions show.
"""

from __future__ import annotations

import base64
import html
import json
import re
from urllib.parse import quote, quote_plus

SESSION_SECRET = re.compile(r'Bearer [0-9a-f]{32}\b|"token": ?"[0-9a-f]{32}"|"password": ?"[0-9a-f]{40}"')
PIECE = 8


def session_secrets_in(text: str) -> list[str]:
    return SESSION_SECRET.findall(text)


def _escaped(text: str) -> list[str]:
    """One escape of `text` as pytest (repr), JSON, HTML or XML writers give it."""
    return [repr(text)[1:-1], json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1],
            html.escape(text), html.escape(text, quote=False), text.replace('"', "&#34;").replace("'", "&#39;")]


def encodings(secret: str) -> dict[str, set[str]]:
    """{the secret raw, Basic base64 (of UTF-8 and Latin-1), URL-encoded: that and its forms JSON-,
    repr-, HTML-escaped up to twice}."""
    bases = {secret, base64.b64encode(secret.encode()).decode(), quote(secret, safe=""), quote_plus(secret)}
    if all(ord(c) < 256 for c in secret):
        bases.add(base64.b64encode(secret.encode("latin-1")).decode())
    found = {}
    for base in bases:
        forms = {base}
        for _ in range(2):
            forms |= {escaped for form in forms for escaped in _escaped(form)}
        found[base] = forms
    return found


def secret_pieces_in(text: str, *secrets: str) -> list[str]:
    """Every 8-character piece of any encoding of `secrets` that occurs in text (empty: no leak). A
    piece counts if it holds 3 characters of the encoded secret: "&amp;quo" of a twice-escaped quote
    is only escaping, found in any report."""
    found = []
    for secret in secrets:
        for base, forms in encodings(secret).items():
            triples = {base[i:i + 3] for i in range(len(base) - 2)}
            for form in forms:
                for start in range(max(len(form) - PIECE + 1, 1)):
                    piece = form[start:start + PIECE]
                    if piece in text and piece not in found and any(t in piece for t in triples):
                        found.append(piece)
    return found
