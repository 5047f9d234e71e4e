"""Unit tests of the WattWächter emulator (plain pytest + requests; the vendor's aio-wattwaechter
client, run with asyncio.run, is the outside witness of the answer shapes)."""

from __future__ import annotations

import asyncio
import datetime as dt
import http.client
import json
import re
import selectors
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

from conformlab.emulators import EMULATORS, start_emulator
from conformlab.emulators import wattwaechter as ww_module
from conformlab.emulators.wattwaechter import (
    BEYOND_THE_DOCUMENT, DEVICE_ID, DOCUMENTED, FAULTS, FIRMWARE, HEAP_CRITICAL, NEAR_MISS_FAULTS, RateLimiter,
    WattwaechterEmulator)
from vendor_docs import assert_faults_quote_the_documents
from emulator_controls import control
import ww_emulator
from ww_emulator import PEM, READ_TOKEN, TOKENS, WRITE_TOKEN

emu, authed = ww_emulator.emu, ww_emulator.authed  # the shared fixtures

R = {"Authorization": f"Bearer {READ_TOKEN}"}
W = {"Authorization": f"Bearer {WRITE_TOKEN}"}
TOO_MANY = b'{"error":"Too many requests"}'
UNAVAILABLE = b'{"error":"Service temporary unavailable"}'


def api(emu, method: str, path: str, **kw) -> requests.Response:
    return requests.request(method, emu.url + "/api/v1" + path, timeout=5, **kw)


def get(emu, path: str, **kw) -> requests.Response:
    return api(emu, "GET", path, **kw)


def post(emu, path: str, body=None, **kw) -> requests.Response:
    if body is not None:
        kw["data"] = json.dumps(body)
        kw["headers"] = {"Content-Type": "application/json", **kw.get("headers", {})}
    return api(emu, "POST", path, **kw)


def refill(emu) -> None:
    control(emu, "budget", {"reset": True})


@pytest.fixture(autouse=True)
def quick_boot(monkeypatch):
    """Restarts in these tests: down 0.3 s after the answer, off the network for 0.3 s."""
    monkeypatch.setattr(ww_module, "RESTART_DELAY", 0.3)
    monkeypatch.setattr(WattwaechterEmulator, "boot_seconds", 0.3)


def restarted(running, before: int, timeout: float = 10.0) -> None:
    """Wait until the emulator has completed restart number `before` + 1 (and answers again)."""
    deadline = time.monotonic() + timeout
    while running.emulator.restarts <= before:
        assert time.monotonic() < deadline, "the emulator did not restart"
        time.sleep(0.05)


def from_address(emu, source: str, path: str = "/system/alive", headers=None) -> tuple[int, dict, bytes]:
    """One request from a given loopback source address (127.0.0.2, 127.0.0.3, ...)."""
    conn = http.client.HTTPConnection(emu.host, emu.port, timeout=5, source_address=(source, 0))
    try:
        conn.request("GET", "/api/v1" + path, headers=headers or {})
        answer = conn.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        conn.close()


def yesterday() -> str:
    return (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)).isoformat()


def days_ago(n: int) -> str:
    return (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=n)).isoformat()


def assert_json_error(response: requests.Response, status: int, message: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str)
    if message is not None:
        assert body["error"] == message


def keys_deep(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for item in value.values() for k in keys_deep(item)}
    if isinstance(value, list):
        return {k for item in value for k in keys_deep(item)}
    return set()


# ---------------------------------------------------------------------------------------------
# Registry, faults, CLI


def test_registered_and_starts():
    assert EMULATORS["wattwaechter"] is WattwaechterEmulator
    with start_emulator("wattwaechter") as running:
        assert requests.get(running.url + "/__emulator__/", timeout=5).json() == {"device": "wattwaechter", "faults": []}
        assert get(running, "/system/alive").json() == {"alive": True, "version": FIRMWARE}


@pytest.mark.parametrize("auth, word", [({"token": "x"}, "token"), ({"read_token": "r"}, "write_token"),
                                        ({"read_token": "r", "write_token": ""}, "write_token")])
def test_bad_auth_refused(auth, word):
    with pytest.raises(ValueError, match=word):
        start_emulator("wattwaechter", auth=auth)


def test_routes_are_the_schema_and_what_lies_beyond_it():
    """The documented routes are the schema's operations with the schema's access; the routes beyond
    the document (the vendor client's extra calls) are not in the schema, so no check judges them."""
    from conformlab.schema import device_schema

    schema = device_schema("wattwaechter")
    assert {(route.method, route.path): route.access for route in DOCUMENTED} == {
        (op.method, op.path): op.extension.get("access") for op in schema.operations}
    assert not [route for route in BEYOND_THE_DOCUMENT if schema.match(route.method, route.path)]


def test_fault_catalogue_quotes_the_documents():
    required = {"budget_26", "budget_per_client", "rate_limit_no_retry_after", "rate_limit_wrong_body",
                "heap_overload_500", "heap_no_retry_after", "read_token_can_write", "confirm_after_expiry",
                "generate_activates_immediately", "partial_settings_reset", "settings_return_passwords",
                "alive_requires_token", "missing_token_403", "history_days_unchecked"}
    assert required <= set(FAULTS) and len(FAULTS) >= 12
    assert_faults_quote_the_documents(FAULTS, "wattwaechter-api.txt")


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_every_fault_name_is_accepted(fault):
    with start_emulator("wattwaechter", faults=[fault]) as running:
        assert requests.get(running.url + "/__emulator__/", timeout=5).json()["faults"] == [fault]


def test_cli_emulate_prints_ready():
    process = subprocess.Popen([sys.executable, "-m", "conformlab", "emulate", "wattwaechter", "--port", "0",
                                "--auth", f"read_token={READ_TOKEN}", "--auth", f"write_token={WRITE_TOKEN}"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ)
        assert selector.select(timeout=20), "no READY line within 20 s"
        match = re.fullmatch(r"READY (http://127\.0\.0\.1:\d+)\n", process.stdout.readline())
        assert match
        url = match.group(1) + "/api/v1"
        assert requests.get(url + "/system/alive", timeout=5).json()["alive"] is True
        assert requests.get(url + "/settings", timeout=5).status_code == 401
        assert requests.get(url + "/settings", headers=R, timeout=5).status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0 and READ_TOKEN not in out + err
    listing = subprocess.run([sys.executable, "-m", "conformlab", "faults", "wattwaechter"],
                             capture_output=True, text=True, timeout=20)
    assert listing.returncode == 0 and "budget_per_client: device-wide, not per IP" in listing.stdout


# ---------------------------------------------------------------------------------------------
# The vendor's client parses every answer


def test_vendor_client_parses_every_answer(authed):
    from aio_wattwaechter import LedStatus, Wattwaechter

    host = f"{authed.host}:{authed.port}"

    async def reads():
        async with Wattwaechter(host, token=READ_TOKEN, max_retries=1) as client:
            alive = await client.alive()
            assert (alive.alive, alive.version) == (True, FIRMWARE)
            info = await client.system_info()
            assert (info.device_id, info.firmware_version, info.model_id) == (DEVICE_ID, FIRMWARE, "ww_plus")
            assert info.product_name == "WattWächter Plus" and not info.is_gas_water
            assert int(info.get_value("heap", "free_heap")) > HEAP_CRITICAL
            led = await client.led()
            assert led.status is LedStatus.OK and led.enabled is True
            scan = await client.wifi_scan()
            assert scan.count == len(scan.networks) == 3 and scan.scanning is False
            zones = await client.timezones()
            assert zones[0].name == "Europe/Berlin" and zones[0].utc_offset_min == 60
            meter = await client.meter_data()
            assert meter is not None and meter.total_consumption > 10_000 and meter.power is not None
            assert meter.get("0.0.0").value == "1EMH0012345678" and meter.medium.value == "electricity"
            high = await client.history_high_res(yesterday())
            assert (high.start, high.days, len(high.items), high.unit) == (yesterday(), 1, 96, "kWh")
            assert high.items[0].date == yesterday() + "T00:00" and high.items[95].date.endswith("T23:45")
            low = await client.history_low_res(days_ago(7), 7)
            assert len(low.items) == 7 and low.items[-1].date == yesterday()
            settings = await client.settings()
            assert settings.api_auth_required is True and settings.mqtt.port == 1883
            assert settings.wifi_primary.ssid == "MyNetwork" and settings.language.active == "de"
            ca = await client.mqtt_ca_status()
            assert (ca.has_custom_cert, ca.custom_size) == (False, 0)
            ota = await client.ota_check()
            assert ota.ok and ota.data.update_available and ota.data.version == "1.5.0"
            raw = await client.logs_rawdump()
            assert isinstance(raw, bytes) and b"\x1b\x1b\x1b\x1b\x01\x01\x01\x01" in raw
            assert (await client.logs_persistent()).startswith("timestamp,")
            assert (await client.logs_ram()).startswith("millis,")
            modbus = await client.modbus_status()
            assert modbus.enabled and modbus.port == 502
            assert {r.obis for r in modbus.registers} >= {"16.7.0", "1.8.0", "2.8.0"}
            assert all(r.valid and r.value is not None for r in modbus.registers)

    async def writes():
        async with Wattwaechter(host, token=WRITE_TOKEN, max_retries=1) as client:
            assert await client.update_settings({"ledEnable": False, "mqtt": {"sendInterval": 15}}) == {
                "ledEnable": False, "mqtt": {"sendInterval": 15}}
            assert (await client.settings()).mqtt.sendInterval == 15
            upload = await client.mqtt_ca_upload(PEM)
            assert upload.success and upload.bundle_size > 5750
            assert (await client.mqtt_ca_status()).has_custom_cert is True
            assert (await client.mqtt_ca_delete()).success
            assert await client.cloud_pair("WW-ABCD2345") is True
            assert await client.cloud_unpair() is True
            before = authed.emulator.restarts
            assert await client.reboot() is True
            await asyncio.to_thread(restarted, authed, before)
            assert await client.ota_start() is True
            await asyncio.to_thread(restarted, authed, before + 1)
            pending = await client.generate_tokens()
            assert pending.success and pending.expires_in == 60 and pending.token_write != WRITE_TOKEN
            assert await client.confirm_tokens(pending.token_write) is True
            return pending

    asyncio.run(reads())
    refill(authed)
    pending = asyncio.run(writes())
    refill(authed)

    async def no_data():
        async with Wattwaechter(host, token=pending.token_read, max_retries=1) as client:
            assert await client.meter_data() is None
            assert await client.logs_rawdump() is None
            assert (await client.history_high_res("2024-01-01")).items == []  # 204: before the history
            assert (await client.history_low_res("2030-01-01", 3)).items == []

    control(authed, "latest", {"clear": True})
    asyncio.run(no_data())
    assert control(authed, "counters", method="GET")["reboots"] == 1


# ---------------------------------------------------------------------------------------------
# Authentication


def test_auth_off_by_default_everything_open(emu):
    assert get(emu, "/settings").json()["api_auth_required"] is False
    assert get(emu, "/system/info").status_code == 200
    assert get(emu, "/settings", headers={"Authorization": "Bearer nonsense"}).status_code == 200
    before = emu.emulator.restarts
    assert post(emu, "/system/reboot").json() == {"rebooting": True}
    restarted(emu, before)
    # switch it on at runtime: the device's tokens (emulator control) then apply
    assert post(emu, "/settings", {"api_auth_required": True}).json() == {
        "success": True, "applied": {"api_auth_required": True}}
    tokens = control(emu, "tokens", method="GET")
    assert tokens["api_auth_required"] is True and tokens["pending"] is None
    assert_json_error(get(emu, "/settings"), 401, "Unauthorized")
    assert get(emu, "/settings", headers={"Authorization": f"Bearer {tokens['read_token']}"}).status_code == 200
    assert post(emu, "/settings", {"api_auth_required": False},
                headers={"Authorization": f"Bearer {tokens['read_token']}"}).status_code == 403
    assert post(emu, "/settings", {"api_auth_required": False},
                headers={"Authorization": f"Bearer {tokens['write_token']}"}).status_code == 200
    assert get(emu, "/settings").status_code == 200


READS = ["/system/info", "/system/led", "/system/timezones", "/history/latest", f"/history/highRes?date={days_ago(1)}",
         f"/history/lowRes?start={days_ago(3)}&days=2", "/settings", "/mqtt/ca", "/ota/check", "/logs/rawdump",
         "/logs/persistent", "/logs/ram", "/modbus/status"]
WRITES = [("POST", "/system/reboot", None), ("POST", "/settings", {"ledEnable": False}),
          ("POST", "/auth/tokens/generate", None), ("POST", "/auth/tokens/confirm", {"new_write_token": "x"}),
          ("POST", "/mqtt/ca", {"certificate": PEM}), ("DELETE", "/mqtt/ca", None),
          ("POST", "/cloud/pair", {"pairing_token": "WW-ABCD2345"}), ("DELETE", "/cloud/pair", None),
          ("POST", "/ota/start", None)]


def test_auth_levels(authed):
    for path in READS:
        refill(authed)
        response = get(authed, path)
        assert_json_error(response, 401, "Unauthorized")
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert get(authed, path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert get(authed, path, headers={"Authorization": f"Basic {READ_TOKEN}"}).status_code == 401
        assert get(authed, path, headers=R).status_code == 200
    refill(authed)
    for path in READS:
        assert get(authed, path, headers=W).status_code == 200  # a WRITE token also reads
    refill(authed)
    for method, path, body in WRITES:
        assert api(authed, method, path, json=body).status_code == 401
        assert_json_error(api(authed, method, path, json=body, headers=R), 403, "Forbidden")
    assert control(authed, "counters", method="GET")["reboots"] == 0  # nothing was done
    refill(authed)
    for path in ("/system/alive", "/system/wifi_scan"):  # "—": open, a wrong token is not refused
        assert get(authed, path).status_code == 200
        assert get(authed, path, headers={"Authorization": "Bearer wrong"}).status_code == 200
    assert get(authed, "/nope").status_code == 404  # route before auth


def test_token_renewal(authed):
    pending = post(authed, "/auth/tokens/generate", headers=W).json()
    assert set(pending) == {"success", "pending", "expires_in"} and pending["expires_in"] == 60
    new_read, new_write = pending["pending"]["token_read"], pending["pending"]["token_write"]
    # not active yet: the new tokens are refused, the old ones work
    assert get(authed, "/settings", headers={"Authorization": f"Bearer {new_read}"}).status_code == 401
    assert get(authed, "/settings", headers={"Authorization": f"Bearer {new_write}"}).status_code == 401
    assert get(authed, "/settings", headers=R).status_code == 200
    # confirm: with the current WRITE token only, and only with the pending WRITE token
    assert post(authed, "/auth/tokens/confirm", {"new_write_token": new_write}, headers=R).status_code == 403
    assert_json_error(post(authed, "/auth/tokens/confirm", {"new_write_token": new_read}, headers=W), 400)
    assert_json_error(post(authed, "/auth/tokens/confirm", {"token": new_write}, headers=W), 400)
    confirm = post(authed, "/auth/tokens/confirm", {"new_write_token": new_write}, headers=W)
    assert confirm.json() == {"success": True, "message": "Tokens activated successfully."}
    assert get(authed, "/settings", headers=R).status_code == 401
    assert post(authed, "/ota/start", headers=W).status_code == 401
    assert get(authed, "/settings", headers={"Authorization": f"Bearer {new_read}"}).status_code == 200
    before = authed.emulator.restarts
    assert post(authed, "/ota/start", headers={"Authorization": f"Bearer {new_write}"}).status_code == 200
    restarted(authed, before)  # the update is installed and started; the active tokens survive it
    # confirmed once: a second confirm has nothing pending
    assert post(authed, "/auth/tokens/confirm", {"new_write_token": new_write},
                headers={"Authorization": f"Bearer {new_write}"}).status_code == 400
    assert control(authed, "tokens", method="GET")["write_token"] == new_write


def test_pending_tokens_lapse_after_60_s(authed):
    pending = post(authed, "/auth/tokens/generate", headers=W).json()["pending"]
    assert control(authed, "tokens", method="GET")["pending"]["expires_in"] > 59
    control(authed, "advance", {"seconds": 61})
    assert control(authed, "tokens", method="GET")["pending"] is None
    response = post(authed, "/auth/tokens/confirm", {"new_write_token": pending["token_write"]}, headers=W)
    assert_json_error(response, 400)
    assert get(authed, "/settings", headers=R).status_code == 200  # old tokens keep working
    assert get(authed, "/settings", headers={"Authorization": f"Bearer {pending['token_read']}"}).status_code == 401
    # within 60 s: accepted; a new generate replaces the earlier pending pair
    first = post(authed, "/auth/tokens/generate", headers=W).json()["pending"]
    second = post(authed, "/auth/tokens/generate", headers=W).json()["pending"]
    control(authed, "advance", {"seconds": 59})
    assert post(authed, "/auth/tokens/confirm", {"new_write_token": first["token_write"]}, headers=W).status_code == 400
    assert post(authed, "/auth/tokens/confirm", {"new_write_token": second["token_write"]}, headers=W).status_code == 200


# ---------------------------------------------------------------------------------------------
# Rate limit


def assert_429(status: int, headers, body: bytes) -> None:
    assert status == 429
    assert headers["Retry-After"] == "10"
    assert headers["Content-Type"] == "application/json"
    assert body == TOO_MANY


def test_exactly_25_then_429(authed, monkeypatch):
    for _ in range(5):
        control(authed, "counters", method="GET")  # controls never count
    requests.get(authed.url + "/", timeout=5)  # outside /api/v1: not counted
    paths = ["/system/alive", "/settings", "/nope", "/system/info", "/system/wifi_scan"]
    statuses = [get(authed, paths[i % 5], headers=R).status_code for i in range(25)]
    assert statuses.count(404) == 5 and set(statuses) == {200, 404}  # every /api/v1 request counts
    response = get(authed, "/system/alive")
    assert_429(response.status_code, response.headers, response.content)
    assert get(authed, "/settings", headers=R).status_code == 429
    assert post(authed, "/system/reboot", headers=W).status_code == 429
    budget = control(authed, "budget", method="GET")
    assert budget == {"limit": 25, "window": 10.0, "used": 25, "remaining": 0}  # 429s cost nothing
    counters = control(authed, "counters", method="GET")
    assert counters["rateLimited"] == 3 and counters["requests"] == 25 and counters["reboots"] == 0
    # the vendor client reads the 429 and waits Retry-After (its sleep recorded, not slept)
    import aio_wattwaechter.client
    from aio_wattwaechter import Wattwaechter, WattwaechterRateLimitError
    waits = []

    async def no_sleep(seconds):
        waits.append(seconds)
    monkeypatch.setattr(aio_wattwaechter.client.asyncio, "sleep", no_sleep)

    async def one():
        async with Wattwaechter(f"{authed.host}:{authed.port}", max_retries=2) as client:
            with pytest.raises(WattwaechterRateLimitError) as info:
                await client.alive()
            return info.value.retry_after
    assert asyncio.run(one()) == 10 and waits == [10, 10]
    refill(authed)
    assert get(authed, "/system/alive").status_code == 200


def test_budget_is_device_wide_across_client_addresses(emu):
    for i in range(25):
        status, _, _ = from_address(emu, "127.0.0.2" if i % 2 else "127.0.0.3")
        assert status == 200
    for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
        assert_429(*from_address(emu, source))


def test_budget_per_client_fault_separates_addresses():
    with start_emulator("wattwaechter", faults=["budget_per_client"]) as emu:
        for _ in range(25):
            assert from_address(emu, "127.0.0.2")[0] == 200
        assert from_address(emu, "127.0.0.2")[0] == 429
        assert from_address(emu, "127.0.0.3")[0] == 200


def test_sliding_window():
    now = [100.0]
    limiter = RateLimiter(25, 10.0, clock=lambda: now[0])
    for i in range(25):
        now[0] = 100.0 + i * 0.1  # 100.0 .. 102.4
        assert limiter.admit()
    now[0] = 109.9
    assert not limiter.admit()  # refused requests are not remembered ...
    now[0] = 110.0
    assert not limiter.admit()  # ... and a closed 10 s interval [100, 110] already holds 25
    now[0] = 110.0001
    assert limiter.admit()  # the one from 100.0 has left the window
    assert not limiter.admit()
    now[0] = 110.25  # 100.0, 100.1, 100.2 are more than 10 s old: 22 + 1 remembered
    assert limiter.used() == 23
    assert limiter.admit() and limiter.admit() and not limiter.admit()
    assert limiter.used() == 25
    # no closed 10-second interval ever holds more than 25 accepted requests
    accepted, t = [], 200.0
    limiter = RateLimiter(25, 10.0, clock=lambda: t)
    for step in range(2000):
        t = 200.0 + step * 0.037
        if limiter.admit():
            accepted.append(t)
    assert all(sum(1 for x in accepted if a <= x <= a + 10.0) <= 25 for a in accepted)
    assert len(accepted) > 150  # and it does let requests through at the budget


# ---------------------------------------------------------------------------------------------
# Heap protection


def test_heap_protection_via_control(authed):
    control(authed, "heap", {"free": 20000})
    for path in ("/system/alive", "/settings", "/nope"):
        response = get(authed, path, headers=R)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert response.headers["Content-Type"] == "application/json"
        assert response.content == UNAVAILABLE
    assert control(authed, "budget", method="GET")["used"] == 0  # 503 before the rate accounting
    assert control(authed, "heap", method="GET")["free"] == 20000
    control(authed, "heap", {"free": HEAP_CRITICAL})  # at the threshold: not below it
    assert get(authed, "/system/alive").status_code == 200
    control(authed, "heap", {"free": None})
    assert get(authed, "/system/alive").status_code == 200  # the device stayed up
    assert control(authed, "counters", method="GET")["heapRejected"] == 3


def test_vendor_client_retries_503_after_retry_after(emu, monkeypatch):
    import aio_wattwaechter.client
    from aio_wattwaechter import Wattwaechter
    waits = []

    async def recover_while_waiting(seconds):  # the heap recovers while the client waits
        waits.append(seconds)
        control(emu, "heap", {"free": None})
    monkeypatch.setattr(aio_wattwaechter.client.asyncio, "sleep", recover_while_waiting)
    control(emu, "heap", {"free": 10_000})

    async def fetch():
        async with Wattwaechter(f"{emu.host}:{emu.port}") as client:
            return await client.history_high_res(yesterday())
    assert len(asyncio.run(fetch()).items) == 96 and waits == [5]


def test_heap_protection_under_concurrent_large_answers(emu):
    barrier = threading.Barrier(8)
    results: list[requests.Response] = []

    def fetch():
        barrier.wait()
        results.append(get(emu, "/history/highRes", params={"date": yesterday()}))

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    statuses = sorted(r.status_code for r in results)
    assert 200 in statuses and 503 in statuses and set(statuses) == {200, 503}, statuses
    for response in results:
        if response.status_code == 503:
            assert response.headers["Retry-After"] == "5" and response.content == UNAVAILABLE
        else:
            assert len(response.content) > 30_000 and len(response.json()["items"]) == 96
    assert control(emu, "heap", method="GET")["reserved"] == 0  # all answers sent: heap recovered
    assert control(emu, "budget", method="GET")["used"] == statuses.count(200)
    assert get(emu, "/system/alive").status_code == 200
    assert get(emu, "/history/highRes", params={"date": yesterday()}).status_code == 200  # the retry succeeds


# ---------------------------------------------------------------------------------------------
# History


def test_high_res_day(emu):
    day = get(emu, "/history/highRes", params={"date": yesterday()}).json()
    items = day["items"]
    assert len(items) == 96 and day["start"] == yesterday() and day["days"] == 1
    start = int(dt.datetime.fromisoformat(yesterday()).replace(tzinfo=dt.timezone.utc).timestamp())
    assert [item["timestamp"] for item in items] == [start + 900 * q for q in range(96)]
    for a, b in zip(items, items[1:]):  # readings accumulate the quarter energies
        assert b["import_total_kWh"] == pytest.approx(a["import_total_kWh"] + a["import_kW"] / 4, abs=2e-3)
        assert b["export_total_kWh"] >= a["export_total_kWh"]
    assert day["import_total_kWh"] == pytest.approx(sum(item["import_kW"] / 4 for item in items), abs=0.02)
    low = get(emu, "/history/lowRes", params={"start": yesterday(), "days": 1}).json()["items"][0]
    assert low["import_kWh"] == pytest.approx(day["import_total_kWh"], abs=1e-4)
    assert low["import_total_kWh"] == items[0]["import_total_kWh"]
    today = get(emu, "/history/highRes", params={"date": days_ago(0)}).json()["items"]
    assert 1 <= len(today) <= 96 and today[-1]["timestamp"] <= dt.datetime.now(dt.timezone.utc).timestamp()


def test_low_res_range(emu):
    answer = get(emu, "/history/lowRes", params={"start": days_ago(31), "days": 31}).json()
    items = answer["items"]
    assert len(items) == 31 and items[0]["date"] == days_ago(31) and items[-1]["date"] == yesterday()
    for a, b in zip(items, items[1:]):
        assert b["import_total_kWh"] == pytest.approx(a["import_total_kWh"] + a["import_kWh"], abs=1e-3)
    assert answer["import_total_kWh"] == pytest.approx(sum(item["import_kWh"] for item in items), abs=1e-3)
    # only completed days: today has no daily value yet
    assert len(get(emu, "/history/lowRes", params={"start": days_ago(2), "days": 7}).json()["items"]) == 2
    assert get(emu, "/history/lowRes", params={"start": days_ago(0), "days": 1}).status_code == 204
    # a range that begins before the recorded history: only the recorded days
    control(emu, "history", {"first_day": days_ago(3)})
    answer = get(emu, "/history/lowRes", params={"start": days_ago(10), "days": 31}).json()
    dates = [item["date"] for item in answer["items"]]
    assert dates == [days_ago(3), days_ago(2), days_ago(1)]


def test_days_unchecked_fault_is_bounded():
    with start_emulator("wattwaechter", faults=["history_days_unchecked"]) as emu:
        assert len(get(emu, "/history/lowRes", params={"start": days_ago(40), "days": 32}).json()["items"]) == 32
        assert get(emu, "/history/lowRes", params={"start": days_ago(5), "days": 0}).status_code == 204
        assert get(emu, "/history/lowRes", params={"start": days_ago(5), "days": -3}).status_code == 204
        huge = get(emu, "/history/lowRes", params={"start": days_ago(5), "days": 10**12})
        assert len(huge.json()["items"]) == 5


@pytest.mark.parametrize("query", [{}, {"date": ""}, {"date": "2025-1-01"}, {"date": "2025-02-30"},
                                   {"date": "20250101"}, {"date": "2025-01-01T00:00"}, {"date": "yesterday"}])
def test_high_res_malformed_date_400(emu, query):
    assert_json_error(get(emu, "/history/highRes", params=query), 400)


@pytest.mark.parametrize("days", [None, "0", "32", "-1", "7.0", "x", ""])
def test_low_res_days_outside_1_31_400(emu, days):
    params = {"start": days_ago(10)} | ({} if days is None else {"days": days})
    assert_json_error(get(emu, "/history/lowRes", params=params), 400)
    assert_json_error(get(emu, "/history/lowRes", params={"start": "2025-13-01", "days": "1"}), 400)


def test_no_data_is_204(emu):
    future = (dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=2)).isoformat()
    for params in ({"date": "2024-01-01"}, {"date": future}):
        response = get(emu, "/history/highRes", params=params)
        assert response.status_code == 204 and response.content == b""
    assert get(emu, "/history/lowRes", params={"start": future, "days": 3}).status_code == 204
    control(emu, "history", {"first_day": None})
    assert get(emu, "/history/highRes", params={"date": yesterday()}).status_code == 204
    assert get(emu, "/history/lowRes", params={"start": days_ago(5), "days": 5}).status_code == 204
    assert control(emu, "history", {"first_day": "2024-01-01"})["first_day"] == "2024-01-01"
    assert get(emu, "/history/highRes", params={"date": "2024-01-01"}).status_code == 200
    assert get(emu, "/history/latest").status_code == 200
    control(emu, "latest", {"clear": True})
    assert get(emu, "/history/latest").status_code == 204
    assert get(emu, "/system/led").json()["status"] == "METER_ATTENTION"
    control(emu, "latest", {"clear": False})
    latest = get(emu, "/history/latest").json()
    assert latest["1.8.0"]["unit"] == "kWh" and isinstance(latest["timestamp"], int)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", latest["datetime"])


# ---------------------------------------------------------------------------------------------
# Settings, CA, cloud, OTA, logs, conventions


def test_settings_partial_writes_and_write_only_passwords(emu):
    before = get(emu, "/settings").json()
    assert "password" not in keys_deep(before)
    body = {"mqtt": {"host": "broker.local", "password": "n3w"}, "wifi": {"secondary": {"ssid": "Garage"}},
            "unknownKey": 1, "rebootsTotal": 999}
    answer = post(emu, "/settings", body)
    assert answer.status_code == 200 and answer.json() == {"success": True, "applied": body}
    after = get(emu, "/settings").json()
    assert "password" not in keys_deep(after) and "unknownKey" not in after
    expected = json.loads(json.dumps(before))
    expected["mqtt"]["host"] = "broker.local"
    expected["wifi"]["secondary"]["ssid"] = "Garage"
    assert after == expected  # only the keys sent changed; read-only and unknown keys ignored


@pytest.mark.parametrize("body", [[1], "x", {"ledEnable": "false"}, {"mqtt": {"port": 70000}},
                                  {"mqtt": {"port": 1.5}}, {"mqtt": "x"}, {"timezone": "Mars/Olympus"},
                                  {"language": {"active": "fr"}}, {"device_name": ""},
                                  {"wifi": {"primary": {"ssid": "x" * 33}}}, {"ledEnable": False, "mqtt": {"port": 0}}])
def test_settings_invalid_400_changes_nothing(emu, body):
    before = get(emu, "/settings").json()
    assert_json_error(post(emu, "/settings", body), 400)
    assert get(emu, "/settings").json() == before


def test_malformed_json_and_unknown_routes(emu):
    assert_json_error(api(emu, "POST", "/settings", data=b"{"), 400)
    assert_json_error(api(emu, "POST", "/settings", data=b"\xff"), 400)
    assert_json_error(get(emu, "/nope"), 404, "Not found")
    assert_json_error(api(emu, "DELETE", "/settings"), 404)  # another method on a documented path
    assert_json_error(api(emu, "GET", "/system/reboot"), 404)


def test_mqtt_ca_cloud_ota_reboot(emu):
    assert_json_error(api(emu, "DELETE", "/mqtt/ca"), 404)
    for bad in ({"certificate": "not a pem"}, {"certificate": PEM.replace("MIIB", "M!IB")}, {"cert": PEM}, {}):
        assert_json_error(post(emu, "/mqtt/ca", bad), 400)
    assert post(emu, "/mqtt/ca", {"certificate": PEM}).json()["message"] == "Certificate added"
    status = get(emu, "/mqtt/ca").json()
    assert status["has_custom_cert"] is True and status["bundle_size"] == 5750 + status["custom_size"] > 5750
    assert api(emu, "DELETE", "/mqtt/ca").json() == {"success": True, "message": "Custom certificate deleted",
                                                     "bundle_size": 5750}
    for bad in ("WW-abcd2345", "WW-ABC", "XX-ABCD2345", 12345678):
        assert_json_error(post(emu, "/cloud/pair", {"pairing_token": bad}), 400)
    assert post(emu, "/cloud/pair", {"pairing_token": "WW-ABCD2345"}).json()["success"] is True
    assert api(emu, "DELETE", "/cloud/pair").json()["success"] is True
    reboots = get(emu, "/settings").json()["rebootsTotal"]
    before = emu.emulator.restarts
    assert post(emu, "/system/reboot").json() == {"rebooting": True}
    restarted(emu, before)
    assert post(emu, "/ota/start").json()["rebooting"] is True
    restarted(emu, before + 1)
    control(emu, "ota", {"available": None})
    assert get(emu, "/ota/check").json()["data"]["update_available"] is False
    assert post(emu, "/ota/start").json() == {"ok": True, "update_available": False}
    time.sleep(0.8)
    assert get(emu, "/system/alive").status_code == 200  # no update: no restart
    assert emu.emulator.restarts == before + 2
    assert get(emu, "/settings").json()["rebootsTotal"] == reboots + 2  # the reboot and the update's start
    counters = control(emu, "counters", method="GET")
    assert (counters["reboots"], counters["otaStarts"]) == (1, 2)
    log = get(emu, "/logs/persistent").text
    assert "reboot requested" in log and "OTA update to 1.5.0 installed" in log
    control(emu, "reset")
    assert control(emu, "counters", method="GET")["reboots"] == 0


def test_logs_and_wifi_scan(emu):
    raw = get(emu, "/logs/rawdump")
    assert raw.headers["Content-Type"] == "application/octet-stream" and len(raw.content) == 2048
    for path in ("/logs/persistent", "/logs/ram"):
        response = get(emu, path)
        assert response.headers["Content-Type"] == "text/csv"
        rows = response.text.strip().splitlines()
        assert len(rows) > 2 and all(row.count(",") >= 3 for row in rows)
    scanning = get(emu, "/system/wifi_scan", params={"refresh": "true"}).json()
    assert scanning == {"networks": [], "count": 0, "scanning": True}


def test_controls_validate_their_payloads(emu):
    for name, payload in [("budget", {"reset": False}), ("heap", {"free": -1}), ("heap", {"free": "x"}),
                          ("heap", {"sendRate": 0}), ("advance", {"seconds": -5}), ("latest", {"clear": 1}),
                          ("history", {"first_day": "2023-12-31"}), ("history", {"first_day": "x"}),
                          ("ota", {"available": 1}), ("tokens", {"read_token": ""}), ("setup", {"complete": 1})]:
        response = requests.post(f"{emu.url}/__emulator__/{name}", json=payload, timeout=5)
        assert response.status_code == 400, (name, payload)
    control(emu, "tokens", {"read_token": "r1", "write_token": "w1", "api_auth_required": True})
    assert get(emu, "/settings", headers={"Authorization": "Bearer r1"}).status_code == 200
    assert get(emu, "/settings").status_code == 401


# ---------------------------------------------------------------------------------------------
# Faults: each one changes its probe's answer, and no other probe's


def burst(emu, source: str | None = None, limit: int = 40) -> tuple[int, int, dict, bytes]:
    """Health checks until the first 429: (accepted before it, status, headers, body)."""
    for accepted in range(limit):
        status, headers, body = from_address(emu, source or "127.0.0.1")
        if status == 429:
            return accepted, status, headers, body
    return limit, 0, {}, b""


def probe_per_client(emu):
    burst(emu, "127.0.0.2")
    return from_address(emu, "127.0.0.3")[0]


def probe_retry_after_fractional(emu):
    values = [burst(emu)[2].get("Retry-After")]
    control(emu, "heap", {"free": 0})
    values.append(get(emu, "/system/alive").headers.get("Retry-After"))
    return any(value is not None and not value.isdigit() for value in values)


def probe_heap(emu):
    control(emu, "heap", {"free": 1000})
    return get(emu, "/system/alive")


def probe_confirm_expired(emu):
    pending = post(emu, "/auth/tokens/generate", headers=W).json()["pending"]
    control(emu, "advance", {"seconds": 61})
    body = {"new_write_token": pending["token_write"]}
    response = post(emu, "/auth/tokens/confirm", body, headers=W)
    if response.status_code == 401:  # the old token was already replaced (another fault)
        response = post(emu, "/auth/tokens/confirm", body, headers={"Authorization": f"Bearer {pending['token_write']}"})
    return response.status_code


def probe_generate(emu):
    pending = post(emu, "/auth/tokens/generate", headers=W).json()["pending"]
    return get(emu, "/settings", headers={"Authorization": f"Bearer {pending['token_read']}"}).status_code


def probe_partial(emu):
    post(emu, "/settings", {"ledEnable": False}, headers=W)
    return get(emu, "/settings", headers=R).json()["mqtt"]["host"]


def probe_latest(emu):
    control(emu, "latest", {"clear": True})
    return get(emu, "/history/latest", headers=R).status_code


PROBES = {
    "budget_26": (lambda e: burst(e)[0], 25, 26),
    "budget_per_client": (probe_per_client, 429, 200),
    "rate_limit_no_retry_after": (lambda e: "Retry-After" in burst(e)[2], True, False),
    "rate_limit_wrong_body": (lambda e: (lambda b: (b[2].get("Content-Type"), b[3]))(burst(e)),
                              ("application/json", TOO_MANY), ("text/plain", b"Too Many Requests")),
    "retry_after_fractional": (probe_retry_after_fractional, False, True),
    "heap_overload_500": (lambda e: probe_heap(e).status_code, 503, 500),
    "heap_no_retry_after": (lambda e: (lambda r: r.status_code == 503 and "Retry-After" not in r.headers)(probe_heap(e)),
                            False, True),
    "read_token_can_write": (lambda e: post(e, "/system/reboot", headers=R).status_code, 403, 200),
    "confirm_after_expiry": (probe_confirm_expired, 400, 200),
    "generate_activates_immediately": (probe_generate, 401, 200),
    "partial_settings_reset": (probe_partial, "192.168.178.111", ""),
    "settings_return_passwords": (lambda e: "password" in keys_deep(get(e, "/settings", headers=R).json()), False, True),
    "alive_requires_token": (lambda e: get(e, "/system/alive").status_code, 200, 401),
    "missing_token_403": (lambda e: get(e, "/settings").status_code, 401, 403),
    "history_days_unchecked": (lambda e: get(e, "/history/lowRes", params={"start": days_ago(40), "days": 32},
                                             headers=R).status_code, 400, 200),
    "history_range_off_by_one": (lambda e: len(get(e, "/history/lowRes", params={"start": days_ago(10), "days": 3},
                                                   headers=R).json()["items"]), 3, 4),
    "latest_empty_200": (probe_latest, 204, 200),
}


def test_probe_table_covers_every_fault():
    # The near-miss-credential faults are probed in test_near_miss.py (conformlab.near_miss).
    assert set(PROBES) == set(FAULTS) - set(NEAR_MISS_FAULTS)


@pytest.mark.parametrize("fault", [None, *sorted(FAULTS)])
def test_fault_changes_its_behaviour_and_only_it(fault):
    with start_emulator("wattwaechter", faults=[fault] if fault else [], auth=TOKENS) as emu:
        for name, (probe, clean, faulty) in PROBES.items():
            control(emu, "reset")
            assert probe(emu) == (faulty if name == fault else clean), f"fault {fault}, probe {name}"


# ---------------------------------------------------------------------------------------------
# Restarts: the answer first, then off the network while it boots, then back with what survives


def _refused(emu) -> bool:
    try:
        requests.get(emu.url + "/api/v1/system/alive", timeout=1)
        return False
    except requests.RequestException:
        return True


@pytest.mark.parametrize("path", ["/system/reboot", "/ota/start"])
def test_restart_answers_first_then_is_unreachable_while_it_boots(authed, path):
    post(authed, "/settings", {"ledEnable": False, "mqtt": {"sendInterval": 45}}, headers=W)
    post(authed, "/cloud/pair", {"pairing_token": "WW-ABCD2345"}, headers=W)
    pending = post(authed, "/auth/tokens/generate", headers=W).json()["pending"]
    uptime_before = int(next(e["value"] for e in get(authed, "/system/info", headers=R).json()["uptime"]
                             if e["name"] == "uptime_seconds"))
    reboots = get(authed, "/settings", headers=R).json()["rebootsTotal"]
    session = requests.Session()  # a kept-alive connection is dropped too
    assert session.get(authed.url + "/api/v1/system/alive", timeout=2).status_code == 200
    answer = session.post(authed.url + "/api/v1" + path, headers=W, timeout=2)
    assert answer.status_code == 200 and answer.json()["rebooting"] is True  # the answer comes first
    assert authed.emulator.restarts == 0 and not authed.emulator.down
    deadline = time.monotonic() + 5
    while not authed.emulator.down:
        assert time.monotonic() < deadline, "the device never went down"
        time.sleep(0.02)
    assert _refused(authed)  # off the network while it boots
    with pytest.raises(requests.RequestException):
        session.get(authed.url + "/api/v1/system/alive", timeout=1)
    restarted(authed, 0)
    # back: settings, active tokens and pairing are kept; uptime, pending tokens and the budget are new
    settings = get(authed, "/settings", headers=R).json()
    assert settings["ledEnable"] is False and settings["mqtt"]["sendInterval"] == 45
    assert settings["rebootsTotal"] == reboots + 1
    assert authed.emulator.pairing_token == "WW-ABCD2345"
    info = get(authed, "/system/info", headers=R).json()
    uptime = int(next(e["value"] for e in info["uptime"] if e["name"] == "uptime_seconds"))
    assert uptime < 5 < uptime_before
    assert control(authed, "tokens", method="GET")["pending"] is None
    confirm = post(authed, "/auth/tokens/confirm", {"new_write_token": pending["token_write"]}, headers=W)
    assert_json_error(confirm, 400)  # the pending pair was in RAM
    assert control(authed, "budget", method="GET")["used"] <= 4  # the rate-limit window started afresh


def test_restart_is_waited_out_by_the_client(authed):
    """The harness's client waits after a restarting answer until the device is back."""
    from conformlab.client import DeviceClient
    from conformlab.schema import device_schema

    client = DeviceClient(authed.url, "/api/v1", name="ww", probe_path="/system/alive", restart_timeout=10)
    client.restarting = device_schema("wattwaechter").restarting
    assert client.post("/system/reboot", json=None, headers=W).status_code == 200
    assert authed.emulator.restarts == 1 and not authed.emulator.down  # it went down and came back
    assert client.get("/settings", headers=R).status_code == 200


def test_restart_control_is_a_power_cycle(emu):
    """The core's restart control: down at once, back after boot_seconds, started as from power on."""
    reboots = get(emu, "/settings").json()["rebootsTotal"]
    assert control(emu, "restart", {"boot_seconds": 0.3}) == {"bootSeconds": 0.3}
    restarted(emu, 0)
    assert get(emu, "/settings").json()["rebootsTotal"] == reboots + 1
    assert "started (power on)" in get(emu, "/logs/persistent").text.splitlines()[-1]
    assert control(emu, "counters", method="GET")["reboots"] == 0  # no reboot was asked of the API


def test_reset_calls_off_a_restart(emu):
    assert post(emu, "/system/reboot").status_code == 200
    control(emu, "reset")
    time.sleep(1.0)
    assert emu.emulator.restarts == 0 and not emu.emulator.down
    assert get(emu, "/system/alive").status_code == 200


# ---------------------------------------------------------------------------------------------
# The alternative reading: what the documents leave open, the other way a conforming device may


@pytest.fixture
def alt():
    with start_emulator("wattwaechter", auth=TOKENS, reading="alternative") as running:
        yield running


def test_alternative_reading_switch(alt, authed):
    assert alt.emulator.alternative and not authed.emulator.alternative
    for running, ok in ((alt, True), (authed, False)):
        pair = post(running, "/cloud/pair", {"pairing_token": "conformlab"}, headers=W)
        assert (pair.status_code == 200) is ok
        cert = post(running, "/mqtt/ca", {"certificate": "conformlab: this is not a certificate"}, headers=W)
        assert (cert.status_code == 200) is ok
        malformed = get(running, "/history/lowRes", params={"start": "2025-02-30", "days": "7"}, headers=R)
        assert malformed.status_code == (204 if ok else 400)  # rolled over to 2025-03-02: no data then
        days = get(running, "/history/lowRes", params={"start": days_ago(40), "days": "32"}, headers=R)
        assert (days.status_code, len(days.json()["items"]) if ok else None) == ((200, 31) if ok else (400, None))
        refill(running)
    # a confirm that activates nothing: 200 with success false instead of 400
    confirm = post(alt, "/auth/tokens/confirm", {"new_write_token": "nothing-pending"}, headers=W)
    assert confirm.status_code == 200 and confirm.json()["success"] is False
    pending = post(alt, "/auth/tokens/generate", headers=W).json()["pending"]
    confirm = post(alt, "/auth/tokens/confirm", {"new_write_token": pending["token_write"]}, headers=W)
    assert confirm.json() == {"message": "Tokens activated"}
    new_read = {"Authorization": f"Bearer {pending['token_read']}"}
    # passwords: the key is there, masked; never the password itself
    settings = get(alt, "/settings", headers=new_read).json()
    assert settings["mqtt"]["password"] == "********" and settings["wifi"]["secondary"]["password"] == ""
    assert "password" not in get(authed, "/settings", headers=R).json()["mqtt"]
    # shapes the document does not show
    assert set(get(alt, "/system/led", headers=new_read).json()) == {"status", "enabled", "brightness"}
    assert get(alt, "/system/timezones", headers=new_read).json()[0] == "Europe/Berlin"


def test_alternative_answers_pass_the_document_only_schema():
    """What the alternative reading answers breaks only constraints marked as this project's reading."""
    from conformlab.schema import device_schema

    schema = device_schema("wattwaechter")
    with start_emulator("wattwaechter", reading="alternative") as running:
        for path in ("/settings", "/system/led", "/system/timezones"):
            response = get(running, path)
            op = schema.operation("GET", path)
            assert schema.check_answer(op, response)  # the reading's constraints see the difference
            assert schema.check_answer(op, response, readings=False) == [], path
        leak = {"mqtt": {"password": "mqtt-passwort"}}
        fake = requests.models.Response()
        fake.status_code, fake._content = 200, json.dumps(leak).encode()
        fake.headers["Content-Type"] = "application/json"
        assert schema.check_answer(schema.operation("GET", "/settings"), fake, readings=False)  # always a leak
