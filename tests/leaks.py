"""What a leaked MC252 session secret looks like in a report or an output, whatever its value: the
emulator's session tokens are 32 hex characters, the login hashes 40."""

from __future__ import annotations

import re

SESSION_SECRET = re.compile(r'Bearer [0-9a-f]{32}\b|"token": ?"[0-9a-f]{32}"|"password": ?"[0-9a-f]{40}"')


def session_secrets_in(text: str) -> list[str]:
    return SESSION_SECRET.findall(text)
