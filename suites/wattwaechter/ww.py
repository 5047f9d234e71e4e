"""What the WattWächter checks share: operations by access level (from the schema), harmless and
refused requests, token helpers that never leak a token, and the settings write policy.

Everything endpoint-related comes from schemas/wattwaechter.yaml (`x-conformlab.access` is the
document's Auth column), so a new operation there gets its auth and answer checks without touching
the suites. Every request goes through the target's paced client: the device allows 25 requests per
10 s for all its clients together, so each check is written to spend as few as it can.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets as random_secrets
from pathlib import Path

import pytest

from conformlab import secrets
from conformlab.auth import BearerAuth
from conformlab.checks import DeviceChecks, answer, send
from conformlab.dut import DeviceUnderTest
from conformlab.schema import Operation, device_schema

SCHEMA = device_schema("wattwaechter")
OPS = SCHEMA.operations


def access(op: Operation) -> str:
    return op.extension["access"]


OPEN_OPS = [op for op in OPS if access(op) == "none"]
READ_OPS = [op for op in OPS if access(op) == "read"]
WRITE_OPS = [op for op in OPS if access(op) == "write"]
READS = [op for op in OPS if op.method == "GET"]

# Bodies a conforming device refuses with 400 (not a pending token, not a PEM certificate, not a
# WW-XXXXXXXX pairing token): they get through authentication and change nothing.
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
assert_refused = CHECKS.assert_refused


def changing_body(device: DeviceUnderTest, op: Operation):
    """A body that would change the device if the write were applied (used where it must be refused)."""
    if op.path == "/settings":
        return {"ledEnable": not device.read("/settings").get("ledEnable", True)}
    return INERT_BODIES.get(op.path) if op.body_kind else None


def harmless_request(device: DeviceUnderTest, op: Operation, auth=...):
    """Send `op` so that a device that accepts it ends as it was. Returns (response, expected):
    the statuses a conforming device may answer once authentication has let the request through."""
    kw = {} if auth is ... else {"auth": auth}
    if op.method == "GET":
        return device.client.get(op.path, params=read_params(op), **kw), {200, 204}
    if op.path == "/settings":  # writes back the value the device already holds
        body = {"ledEnable": device.read("/settings").get("ledEnable", True)}
        return send(device, op, body=body, **kw), {200}
    if op.body_kind and op.path in INERT_BODIES:
        return send(device, op, body=INERT_BODIES[op.path], **kw), {400}
    response = send(device, op, **kw)
    if op.path == "/auth/tokens/generate" and response.status_code == 200:
        keep_pending_secret(response)
    return response, None  # destructive operations: only "not refused for auth" is promised


def wrong_token() -> BearerAuth:
    return BearerAuth("conformlab-wrong-" + random_secrets.token_hex(8))


def assert_status(response, expected: set[int] | None, why: str) -> None:
    if expected is None:
        assert response.status_code not in (401, 403), f"{why}: {answer(response)}"
    else:
        assert response.status_code in expected, f"{why}: expected {sorted(expected)}, got {answer(response)}"


# -- tokens ----------------------------------------------------------------------------------------


# Every token pair a device handed out during the run: if a device activates one (on purpose or by
# a fault), the run can go on with it and hand it to the user.
_handed_out: list[dict[str, str]] = []


def keep_pending_secret(response) -> dict[str, str]:
    """The pending tokens of a generate answer, registered as secrets before anything can show them."""
    pending = (response.json() or {}).get("pending") or {}
    secrets.register(*(value for value in pending.values() if isinstance(value, str)))
    if pending.get("token_read") and pending.get("token_write"):
        _handed_out.append({"read_token": pending["token_read"], "write_token": pending["token_write"]})
    return pending


def token_works(device: DeviceUnderTest, token: str) -> bool:
    """Whether the device takes `token` for a READ endpoint (200) or refuses it (401)."""
    response = device.client.get(device.profile.probe_path, auth=BearerAuth(token))
    assert response.status_code in (200, 401), f"a token probe must be accepted or refused with 401: {answer(response)}"
    return response.status_code == 200


def generate_tokens(device: DeviceUnderTest) -> dict[str, str]:
    response = device.client.post("/auth/tokens/generate", json=None)  # documented without a body
    assert response.status_code == 200, f"generate must answer 200: {answer(response)}"
    pending = keep_pending_secret(response)
    body = response.json()
    assert body.get("success") is True, "generate must answer success: true"
    assert pending.get("token_read") and pending.get("token_write"), "generate must answer pending.token_read and pending.token_write"
    assert pending["token_read"] != pending["token_write"], "the pending READ and WRITE tokens must differ"
    expires = body.get("expires_in", 60)
    assert isinstance(expires, int) and 0 < expires <= 60, f"expires_in must be the seconds left of the 60 s window, got {expires!r}"
    return {"read_token": pending["token_read"], "write_token": pending["token_write"]}


def hand_over(device: DeviceUnderTest, tokens: dict[str, str]) -> Path:
    """Put the device's new tokens where only the user can read them (never into a report)."""
    keep = Path.home() / ".conformlab" / f"{device.target.name}-tokens"
    keep.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(keep, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(f"read_token={tokens['read_token']}\nwrite_token={tokens['write_token']}\n")
    return keep


@contextlib.contextmanager
def tokens_kept(device: DeviceUnderTest, notice, op: Operation | None = None):
    """Whatever a token check (or a request of `op`, when it is a token operation) did, the run goes
    on with tokens that work.

    If the run's own tokens still work afterwards, nothing happens. Otherwise the device was re-keyed
    (on purpose or by a fault): an emulator gets its old tokens back through its control; real
    hardware keeps the new ones, the run continues with them, and they are written to a file only the
    user can read. (A device without authentication has no tokens in the target to lose.)"""
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
        elif device.credentials.get("read_token") and not token_works(device, device.credentials["read_token"]):
            active = next((pair for pair in reversed(_handed_out) if token_works(device, pair["read_token"])), None)
            if active is None:
                pytest.fail(f"{device.target.name}: neither the target's tokens nor the renewed ones work any more; "
                            "the device must be re-keyed by hand", pytrace=False)
            where = hand_over(device, active)
            device.rekey(active)
            notice(f"the device was re-keyed: the target's tokens no longer work; the new tokens are in {where} "
                   "(readable only by you); update targets.toml or its environment variables")
