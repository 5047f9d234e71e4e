"""A restart asked for with the rate budget spent is waited out in seconds, with few requests.

The WattWächter paces every request under its budget (25 per 10 s; the client's Pacer keeps 24).
When the request that restarts it spends the budget's last place, no request may go out for up to
a window: the restart wait must still see the device go down (1 s after the answer, for 2 s, on the
emulator) and not wait the whole `restart_within` (120 s for POST /ota/start), polling all along.
"""

from __future__ import annotations

import re
import time

import requests

from conformlab.client import DeviceClient
from conformlab.emulators import start_emulator
from conformlab.profiles import PROFILES
from conformlab.schema import device_schema

WW = PROFILES["wattwaechter"]


def _client(url: str) -> DeviceClient:
    client = DeviceClient(url, WW.prefix, rate_budget=WW.rate_budget, name="ww", probe_path=WW.probe_path,
                          restart_timeout=30.0)
    client.restarting = device_schema("wattwaechter").restarting  # as the device under test sets it
    return client


def _spend_budget_but_one(client: DeviceClient) -> None:
    """Fill the client's window up to one place: the next request (the restart) takes the last."""
    for _ in range(client.pacer.limit - 1):
        assert client.get("/system/alive").status_code == 200


def _restart_note(client: DeviceClient) -> str:
    notes = [ex.note for ex in client.transcript if ex.note and ex.note.startswith("after ")]
    assert len(notes) == 1, notes
    return notes[0]


def test_restart_with_the_budget_spent_is_seen_and_waited_out_in_seconds():
    with start_emulator("wattwaechter", boot_seconds=2.0) as emu:
        client = _client(emu.url)
        assert device_schema("wattwaechter").restarting("POST", "/ota/start").restart_within == 120
        _spend_budget_but_one(client)
        sent, start = client.sent, time.monotonic()
        answer = client.post("/ota/start")
        waited = time.monotonic() - start
        assert answer.status_code == 200 and answer.json()["update_available"] is True
        note = _restart_note(client)
        assert "the device restarted" in note, note
        down = float(re.search(r"down ([\d.]+) s after the answer", note).group(1))
        assert down < 3.0, f"the outage (1 s to 3 s after the answer) was not seen while it lasted: {note}"
        # Down at once; back after 3 s; then the first request the budget allows (the window of the
        # burst above) shows that it answers: far from restart_within (120 s).
        assert waited < WW.rate_budget.seconds + 5, f"waited {waited:.1f} s"
        assert client.sent - sent <= 3, f"{client.sent - sent} requests for one restart (the restart's own included)"
        counters = requests.get(emu.url + "/__emulator__/counters", timeout=5).json()
        assert counters["reboots"] == 0 and counters["otaStarts"] == 1 and counters["rateLimited"] == 0, counters
        assert emu.emulator.restarts == 1
        assert client.get("/system/info").status_code == 200  # within the budget: no 429


def test_restart_with_budget_to_spare_is_waited_out_as_before():
    with start_emulator("wattwaechter", boot_seconds=2.0) as emu:
        client = _client(emu.url)
        start = time.monotonic()
        assert client.post("/system/reboot").status_code == 200
        waited = time.monotonic() - start
        note = _restart_note(client)
        assert "the device restarted" in note, note
        assert 3.0 <= waited < 6.0, f"waited {waited:.1f} s"  # down 1 s after the answer, for 2 s
        assert emu.emulator.restarts == 1
        counters = requests.get(emu.url + "/__emulator__/counters", timeout=5).json()
        assert counters["reboots"] == 1 and counters["rateLimited"] == 0, counters


def test_no_restart_with_the_budget_spent_still_ends_at_restart_within():
    """A device that keeps answering: the wait ends after restart_within, as before, and costs no
    request while the budget has no room (none answered 429)."""
    with start_emulator("wattwaechter") as emu:
        client = _client(emu.url)
        _spend_budget_but_one(client)
        client.restarting = lambda method, path: _Within(3.0) if (method, path) == ("GET", "/system/alive") else None
        sent, start = client.sent, time.monotonic()
        assert client.get("/system/alive").status_code == 200  # "restarts": the device stays up
        waited = time.monotonic() - start
        assert "no restart seen" in _restart_note(client)
        assert 3.0 <= waited < 5.0, f"waited {waited:.1f} s"
        assert client.sent - sent == 1, "polls sent while the budget had no room"
        counters = requests.get(emu.url + "/__emulator__/counters", timeout=5).json()
        assert counters["rateLimited"] == 0 and emu.emulator.restarts == 0, counters


class _Within:
    def __init__(self, seconds: float):
        self.restart_within = seconds
