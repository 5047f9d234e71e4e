"""The emulators' /__emulator__/ controls, for the harness's own tests (JSON in and out, no auth)."""

from __future__ import annotations

import requests


def control(emu, name: str, payload=None, method: str = "POST"):
    response = requests.request(method, f"{emu.url}/__emulator__/{name}", json=payload, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def counters(emu) -> dict:
    return control(emu, "counters", method="GET")
