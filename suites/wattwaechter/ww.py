"""What the WattWächter checks share: harmless and refused requests, token helpers that never leak
a token, and the settings write policy.

Everything endpoint-related comes from schemas/wattwaechter.yaml (`x-conformlab.access` is the
document's Auth column, read by the access matrix in suites/common), so a new operation there gets
its auth and answer checks without touching the suites. Every request goes through the target's paced client: the device allows 25 requests per
10 s for all its clients together, so each check is written to spend as few as it can.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conformlab import secrets
from conformlab.auth import BearerAuth
from conformlab.checks import DeviceChecks, answer, send
from conformlab.dut import DeviceUnderTest
from conformlab.schema import Operation, device_schema
from conformlab.verdicts import not_applicable, not_verified, requirement  # noqa: F401 (used by the suites)

SCHEMA = device_schema("wattwaechter")
OPS = SCHEMA.operations
READS = [op for op in OPS if op.method == "GET"]

# Bodies this project's reading expects refused with 400 (not a pending token, not a PEM certificate,
# not a WW-XXXXXXXX pairing token): they get through authentication. The document gives no format of
# a pairing token or a certificate and no answer of a confirm that activates nothing, so that they are
# refused (400) is only the reading: a device that takes them is a NOTICE (harmless_request).
INERT_BODIES = {
    "/auth/tokens/confirm": {"new_write_token": "conformlab-not-a-pending-token"},
    "/mqtt/ca": {"certificate": "conformlab: this is not a certificate"},
    "/cloud/pair": {"pairing_token": "conformlab"},
}
# Emulator counters that show a write took effect (the others count requests of any kind).
EFFECT_COUNTERS = ("reboots", "otaStarts", "settingsWrites", "tokenRenewals", "caUploads", "cloudPairings")


def utc_day(days_ago: int) -> str:
    return (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=days_ago)).isoformat()


def read_params(op: Operation) -> dict[str, str]:
    """Query parameters of a read that has data on a device with some history: recent days."""
    params = {}
    for param in op.spec.get("parameters", []):
        if param.get("in") != "query" or not param.get("required"):
            continue
        params[param["name"]] = {"date": utc_day(1), "start": utc_day(7), "days": "7"}.get(param["name"], param.get("example"))
    return params


class WwChecks(DeviceChecks):
    def read_effect(self, device, op):
        if op.reads:
            return super().read_effect(device, op)
        if device.emulator:
            # Reboot, OTA and cloud pairing leave nothing readable through the API; the emulator
            # counts them, so a refused request that acted anyway still shows there.
            counters = device.control("counters")
            return {name: counters[name] for name in EFFECT_COUNTERS}
        return None

    def restored_paths(self, device, op):
        # Only the settings can be written back; the end-of-run check compares them again.
        return ["/settings"] if op.reads == "/settings" else []


CHECKS = WwChecks()
restoring = CHECKS.restoring


def changing_body(device: DeviceUnderTest, op: Operation):
    """A body that would change the device if the write were applied (used where it must be refused)."""
    if op.path == "/settings":
        return {"ledEnable": not device.read("/settings").get("ledEnable", True)}
    return INERT_BODIES.get(op.path) if op.body_kind else None


def harmless_request(device: DeviceUnderTest, op: Operation):
    """`send(**kw)` for requests of `op` after which a device that accepts them is as it was (the
    body is made once: on this device every request counts)."""
    if op.method == "GET":
        params = read_params(op)
        return lambda **kw: device.client.get(op.path, params=params, **kw)
    if op.path == "/settings":  # writes back the value the device already holds
        body = {"ledEnable": device.read("/settings").get("ledEnable", True)}
        return lambda **kw: send(device, op, body=body, **kw)
    if op.body_kind and op.path in INERT_BODIES:
        return lambda **kw: send(device, op, body=INERT_BODIES[op.path], **kw)

    def destructive(**kw):  # reboot, OTA, token generation: they run only where the target allows them
        response = send(device, op, **kw)
        if op.path == "/auth/tokens/generate":
            keep_pending_secret(device, response)
        return response
    return destructive


def served_answer(op: Operation) -> tuple[set[int] | None, set[int] | None]:
    """(expected, reading) of a harmless request that authentication let through: the statuses the
    document lets a conforming device answer (None: any but 401/403), and those only this project's
    reading expects (None: nothing more). Destructive operations: only "not refused" is promised."""
    if op.method == "GET":
        return None, served_statuses(op)
    if op.path == "/settings":
        return {200}, None
    if op.body_kind and op.path in INERT_BODIES:
        return None, {400}
    return None, None


def served_statuses(op: Operation) -> set[int]:
    """The documented answers of a read that got past authentication and the device's limits (e.g.
    204 without data, 404 for a log file that does not exist)."""
    return {int(status) for status in op.statuses if status.isdigit()} - {401, 403, 429, 503}


def assert_status(device: DeviceUnderTest, response, expected: set[int] | None, why: str,
                  reading: set[int] | None = None) -> None:
    """`expected`: what the document settles (None: served, i.e. neither 401 nor 403); `reading`:
    what only this project's reading expects (a NOTICE on a device that answers otherwise)."""
    if expected is None:
        assert response.status_code not in (401, 403), f"{why}: {answer(response)}"
    else:
        assert response.status_code in expected, f"{why}: expected {sorted(expected)}, got {answer(response)}"
    if reading is not None:
        request = response.request
        where = f"{request.method} {urlsplit(request.url).path}" if request is not None else "the request"
        device.reading(response.status_code in reading,
                       f"{why}: {where} answered {response.status_code}, this project's reading expects {sorted(reading)}")


# -- tokens ----------------------------------------------------------------------------------------

# Every token pair a device handed out during the run: if a device activates one (on purpose or by
# a fault), the run can go on with it and hand it to the user.
_handed_out: list[dict[str, str]] = []


def keep_pending_secret(device: DeviceUnderTest, response) -> dict[str, str]:
    """The pending tokens of a generate answer: registered as secrets before anything can show them,
    and on real hardware written at once to the user's private file (a run killed between a confirm
    and its clean-up must not leave the user without the device's tokens)."""
    try:
        pending = (response.json() or {}).get("pending") or {}
    except ValueError:
        return {}
    secrets.register(*(value for value in pending.values() if isinstance(value, str)))
    if pending.get("token_read") and pending.get("token_write"):
        pair = {"read_token": pending["token_read"], "write_token": pending["token_write"]}
        _handed_out.append(pair)
        if not device.emulator:  # its own file: a pending pair must never overwrite the active one
            hand_over(device, pair, "pending: active only if a confirm within 60 s succeeded", "tokens-pending")
    return pending


def token_works(device: DeviceUnderTest, token: str) -> bool:
    """Whether the device takes `token` for a READ endpoint (200) or refuses it (401)."""
    response = device.client.get(device.profile.probe_path, auth=BearerAuth(token))
    assert response.status_code in (200, 401), f"a token probe must be accepted or refused with 401: {answer(response)}"
    return response.status_code == 200


def generate_tokens(device: DeviceUnderTest) -> dict[str, str]:
    response = device.client.post("/auth/tokens/generate", json=None)  # documented without a body
    pending = keep_pending_secret(device, response)
    assert response.status_code == 200, f"generate must answer 200: {answer(response)}"
    problems = device.check_answer(SCHEMA.operation("POST", "/auth/tokens/generate"), response)
    assert not problems, "; ".join(problems)
    body = response.json()
    # NOTES.md: -> {"success": true, "pending": {"token_read": ..., "token_write": ...}, "expires_in": 60}
    assert body.get("success") is True, "generate must answer success: true"
    assert pending["token_read"] != pending["token_write"], "the pending READ and WRITE tokens must differ"
    expires = body.get("expires_in", 60)
    # "within 60 seconds": never more than 60 s. That a fresh renewal shows nearly all of them (rather
    # than, say, a fixed smaller value) is this project's reading.
    assert isinstance(expires, int) and expires <= 60, f"the renewal window is 60 s, got expires_in {expires!r}"
    device.reading(expires >= 55, f"a fresh renewal answered expires_in {expires}; the reading expects about 60")
    return {"read_token": pending["token_read"], "write_token": pending["token_write"]}


def hand_over(device: DeviceUnderTest, tokens: dict[str, str], state: str, kind: str = "tokens") -> Path:
    """Put token values where only the user can read them (never into a report)."""
    return secrets.write_private(f"{device.target.name}-{kind}",
                                 f"# {state}\nread_token={tokens['read_token']}\nwrite_token={tokens['write_token']}\n")


@contextlib.contextmanager
def tokens_kept(device: DeviceUnderTest, notice, op: Operation | None = None):
    """Whatever a token check (or a request of `op`, when it is a token operation) did, the run goes
    on with tokens that work.

    If the run's own READ and WRITE tokens both still work afterwards, nothing happens. Otherwise the
    device was re-keyed (on purpose or by a fault): an emulator gets its old tokens back through its
    control; real hardware keeps the new ones, the run continues with whichever handed-out tokens
    work, and they are written to a file only the user can read. (A device without authentication
    has no tokens in the target to lose.)"""
    if op is not None and not op.path.startswith("/auth/tokens/"):
        yield
        return
    emulator_tokens = device.control("tokens") if device.emulator else None
    try:
        yield
    finally:
        if device.emulator:
            keys = ("read_token", "write_token")
            now = device.control("tokens")
            if any(now[key] != emulator_tokens[key] for key in keys):
                device.control("tokens", {key: emulator_tokens[key] for key in keys})
        elif device.has_credentials:
            _settle_tokens(device, notice)


def _settle_tokens(device: DeviceUnderTest, notice) -> None:
    working = {}
    for key in ("read_token", "write_token"):
        candidates = [device.credentials[key]] + [pair[key] for pair in reversed(_handed_out)]
        working[key] = next((token for token in candidates if token_works(device, token)), None)
    if working == {key: device.credentials[key] for key in working}:
        return
    if None in working.values():
        where = f"; the last pair it handed out is in {hand_over(device, _handed_out[-1], 'last handed out', 'tokens-pending')}" if _handed_out else ""
        pytest.fail(f"{device.target.name}: neither the target's tokens nor the renewed ones all work any more"
                    f"{where}; the device may need to be re-keyed by hand", pytrace=False)
    where = hand_over(device, working, "active: the device was re-keyed during the run")
    device.rekey(working)
    notice(f"the device was re-keyed: the target's tokens no longer work; the new tokens are in {where} "
           "(readable only by you); update targets.toml or its environment variables")
