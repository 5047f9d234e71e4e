"""The vendor's own Python client, `aio-wattwaechter` (PyPI), run unmodified against the WattWächter
emulator: the outside witness of what the device answers. If the client cannot parse an answer, the
emulator is wrong.

Covered: every read call the client offers (without tokens and with the READ token), a settings
write with the WRITE token, the client's auth errors (no/wrong token, READ token on every write
call), two-phase token renewal, the three calls beyond the document (selftest, setup_token,
mqtt_status: served for integrations built on the client, judged by no check), and the client's own
429/503 handling with the real Retry-After waits (the four Retry-After scenarios run at the same time on emulators of their own, so their
waits overlap: the file takes ~15 s, not ~45 s).

The client sends ONE token with every call that needs auth (none on /system/alive and
/system/wifi_scan), so "READ client" and "WRITE client" below are two client instances. It maps both
401 and 403 to WattwaechterAuthenticationError; only the message tells them apart.

Tokens never appear in assertion messages: comparisons involving a token are made into a bool
first, and calls that take a token or return one (TokenGenerateResponse's repr holds both) stay out
of assert statements (pytest would show operands, call arguments and reprs of a failing assert).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import inspect
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable

import pytest
import requests
from aio_wattwaechter import (
    LedColor,
    LedStatus,
    Medium,
    MqttState,
    MqttStatus,
    SelfTestResult,
    Wattwaechter,
    WattwaechterAuthenticationError,
    WattwaechterBadRequestError,
    WattwaechterConnectionError,
    WattwaechterRateLimitError,
)

from conformlab.emulators import start_emulator
from conformlab.emulators.wattwaechter import HEAP_CRITICAL
from emulator_controls import control
import ww_emulator
from ww_emulator import PEM, READ_TOKEN, TOKENS, WRITE_TOKEN

emu, authed = ww_emulator.emu, ww_emulator.authed  # the shared fixtures

UNAUTHORIZED = "Invalid or missing"  # the client's message for 401 ...
FORBIDDEN = "Forbidden"  # ... and for 403 (same exception class)

# The client's public calls (aio_wattwaechter 1.3.0 client.py), sorted by what they do.
READ_METHODS = {"alive", "system_info", "led", "wifi_scan", "timezones", "meter_data", "history_high_res",
                "history_low_res", "settings", "mqtt_ca_status", "ota_check", "logs_rawdump", "logs_persistent",
                "logs_ram", "modbus_status"}
OPEN_METHODS = {"alive", "wifi_scan"}  # "—" in the document's Auth column; the client sends no token
WRITE_METHODS = {"reboot", "update_settings", "generate_tokens", "confirm_tokens", "mqtt_ca_upload",
                 "mqtt_ca_delete", "cloud_pair", "cloud_unpair", "ota_start"}
# Calls for endpoints that none of the document's tables lists; the emulator serves them beyond the
# document (wattwaechter.BEYOND_THE_DOCUMENT), for integrations built on the client.
BEYOND_THE_DOCUMENT = {"selftest": "POST /system/selftest", "setup_token": "GET /setup/token",
                       "mqtt_status": "GET /mqtt/status"}


def utc_day(offset: int = 0) -> str:
    return (dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=offset)).isoformat()


def client(emu, token: str | None = None, **kw) -> Wattwaechter:
    """The vendor client, pointed at the emulator (host:port; the client adds http:// and /api/v1)."""
    return Wattwaechter(f"{emu.host}:{emu.port}", token=token, **kw)


def refill(emu) -> None:
    """A full rate budget (the control itself is not counted)."""
    control(emu, "budget", {"reset": True})


def counters(emu) -> dict[str, int]:
    return control(emu, "counters", method="GET")


def same_secret(a: str, b: str) -> bool:
    """Compare tokens outside an assert statement, so that a failure never shows them."""
    return a == b


# ---------------------------------------------------------------------------------------------
# Every read call, each checked for plausible values


def read_calls(yesterday: str, week_ago: str) -> dict[str, Callable[[Wattwaechter], Awaitable[Any]]]:
    return {
        "alive": lambda c: c.alive(),
        "system_info": lambda c: c.system_info(),
        "led": lambda c: c.led(),
        "wifi_scan": lambda c: c.wifi_scan(),
        "timezones": lambda c: c.timezones(),
        "meter_data": lambda c: c.meter_data(),
        "history_high_res": lambda c: c.history_high_res(yesterday),
        "history_low_res": lambda c: c.history_low_res(week_ago, 7),
        "settings": lambda c: c.settings(),
        "mqtt_ca_status": lambda c: c.mqtt_ca_status(),
        "ota_check": lambda c: c.ota_check(),
        "logs_rawdump": lambda c: c.logs_rawdump(),
        "logs_persistent": lambda c: c.logs_persistent(),
        "logs_ram": lambda c: c.logs_ram(),
        "modbus_status": lambda c: c.modbus_status(),
    }


WRITE_CALLS: dict[str, Callable[[Wattwaechter], Awaitable[Any]]] = {
    "reboot": lambda c: c.reboot(),
    "update_settings": lambda c: c.update_settings({"ledEnable": False}),
    "generate_tokens": lambda c: c.generate_tokens(),
    "confirm_tokens": lambda c: c.confirm_tokens("0" * 32),
    "mqtt_ca_upload": lambda c: c.mqtt_ca_upload(PEM),
    "mqtt_ca_delete": lambda c: c.mqtt_ca_delete(),
    "cloud_pair": lambda c: c.cloud_pair("WW-ABCD2345"),
    "cloud_unpair": lambda c: c.cloud_unpair(),
    "ota_start": lambda c: c.ota_start(),
}


async def check_every_read(c: Wattwaechter, emu, *, auth_required: bool) -> None:
    """Call every read method of the client once and check that the parsed models make sense
    (consistent with each other, not just "did not raise")."""
    now = time.time()
    yesterday, week_ago = utc_day(-1), utc_day(-7)
    calls = read_calls(yesterday, week_ago)
    assert set(calls) == READ_METHODS
    refill(emu)
    r = {name: await call(c) for name, call in calls.items()}  # 15 requests

    alive = r["alive"]
    assert alive.alive is True and re.fullmatch(r"\d+\.\d+\.\d+", alive.version)

    info = r["system_info"]
    assert info.device_id and re.fullmatch(r"[0-9A-F]{12}", info.device_id)
    assert info.firmware_version == alive.version
    assert info.model_id == "ww_plus" and "WattWächter" in (info.product_name or "") and not info.is_gas_water
    free, size = int(info.get_value("heap", "free_heap")), int(info.get_value("heap", "heap_size"))
    assert HEAP_CRITICAL <= free <= size
    assert int(info.get_value("uptime", "uptime_seconds")) > 0

    led = r["led"]
    assert led.status is LedStatus.OK and led.active_statuses.get("OK") is True
    assert led.enabled is True and led.color is not LedColor.OFF and led.priority >= 0
    assert all(0 <= v <= 255 for v in (led.rgb.r, led.rgb.g, led.rgb.b))

    scan = r["wifi_scan"]
    assert scan.scanning is False and scan.count == len(scan.networks) > 0
    assert all(n.ssid and -100 <= n.rssi < 0 for n in scan.networks)

    zones = r["timezones"]
    names = [z.name for z in zones]
    assert "Europe/Berlin" in names and len(set(names)) == len(names)
    assert all(-720 <= z.utc_offset_min <= 840 and z.utc_offset_min % 15 == 0 for z in zones)

    meter = r["meter_data"]
    assert meter is not None and abs(meter.timestamp - now) < 120
    assert meter.datetime_str.startswith(dt.datetime.fromtimestamp(meter.timestamp, dt.timezone.utc).strftime("%Y-%m-%dT"))
    assert meter.medium is Medium.ELECTRICITY and not meter.is_volume_meter
    assert meter.total_consumption > 0 and meter.total_feed_in >= 0 and isinstance(meter.power, float)
    assert meter.get("1.8.0").unit == "kWh" and meter.get("16.7.0").unit == "W"

    high = r["history_high_res"]
    assert (high.start, high.days, len(high.items), high.unit) == (yesterday, 1, 96, "kWh")
    stamps = [item.timestamp for item in high.items]
    assert all(b - a == 900 for a, b in zip(stamps, stamps[1:]))
    assert high.items[0].date == yesterday + "T00:00" and high.items[-1].date == yesterday + "T23:45"
    readings = [item.import_total_kwh for item in high.items]
    assert readings == sorted(readings) and readings[0] > 0
    assert high.import_total_kwh == pytest.approx(sum(item.import_kw for item in high.items) / 4, abs=0.05)
    assert high.consumption == high.import_total_kwh > 0

    low = r["history_low_res"]
    assert low.start == week_ago and low.unit == "kWh"
    first = dt.date.fromisoformat(week_ago)
    assert [item.date for item in low.items] == [(first + dt.timedelta(days=n)).isoformat() for n in range(7)]
    assert all(item.import_kwh > 0 and item.export_kwh >= 0 for item in low.items)
    assert low.import_total_kwh == pytest.approx(sum(item.import_kwh for item in low.items), abs=1e-3)
    # the day values agree with the quarter-hours of the same day, and the meter reading is later
    assert low.items[-1].import_total_kwh == readings[0]
    assert low.items[-1].import_kwh == pytest.approx(high.import_total_kwh, abs=1e-3)
    assert meter.total_consumption >= readings[-1]

    settings = r["settings"]
    assert settings.api_auth_required is auth_required
    assert settings.led_enable is led.enabled
    assert settings.timezone in names and settings.ntp_server
    assert settings.language.active in {lang.code for lang in settings.language.installed}
    assert 1 <= settings.mqtt.port <= 65535 and settings.mqtt.sendInterval > 0
    assert settings.wifi_primary.enable and settings.wifi_primary.ssid and settings.device_name
    assert settings.reboots_all >= settings.reboots_total >= settings.reboot_counter >= 0

    ca = r["mqtt_ca_status"]
    assert (ca.has_custom_cert, ca.custom_size) == (False, 0) and ca.bundle_size > 0

    ota = r["ota_check"]
    assert ota.ok is True and ota.data.version and 0 < ota.data.last_checked <= now + 1
    if ota.data.update_available:
        assert ota.data.version != alive.version and ota.data.release_date

    raw = r["logs_rawdump"]
    assert isinstance(raw, bytes) and b"\x1b\x1b\x1b\x1b\x01\x01\x01\x01" in raw  # SML start escape
    persistent = r["logs_persistent"].splitlines()
    assert persistent[0].count(",") >= 2 and len(persistent) > 1
    ram = r["logs_ram"].splitlines()
    assert ram[0].count(",") >= 2 and len(ram) > 1

    modbus = r["modbus_status"]
    assert modbus.enabled and modbus.running and modbus.port == 502 and modbus.active_connections >= 0
    by_obis = {reg.obis: reg for reg in modbus.registers}
    assert {"1.8.0", "2.8.0", "16.7.0"} <= set(by_obis)
    assert all(reg.valid and reg.value is not None for reg in modbus.registers)
    assert by_obis["1.8.0"].unit == "Wh"
    assert by_obis["1.8.0"].value == pytest.approx(meter.total_consumption * 1000, abs=1000)


def test_client_inventory_is_complete():
    """Every public call of the installed client is sorted into one group below; a new client
    version with a new call fails here, so that it is not forgotten."""
    public = {name for name, member in inspect.getmembers(Wattwaechter, inspect.iscoroutinefunction)
              if not name.startswith("_")} - {"close"}
    groups = [READ_METHODS, WRITE_METHODS, set(BEYOND_THE_DOCUMENT)]
    assert sum(len(group) for group in groups) == len(set().union(*groups))  # disjoint
    assert public == set().union(*groups)
    assert set(WRITE_CALLS) == WRITE_METHODS and OPEN_METHODS <= READ_METHODS


def test_every_read_without_tokens(emu):
    """Auth disabled (the device default): the client without a token reads everything."""

    async def go():
        async with client(emu, max_retries=1) as c:
            await check_every_read(c, emu, auth_required=False)
            refill(emu)
            scan = await c.wifi_scan(refresh=True)  # starts a scan: nothing found yet
            assert (scan.scanning, scan.count, scan.networks) == (True, 0, [])
            await asyncio.sleep(1.6)  # the scan takes ~1.5 s
            scan = await c.wifi_scan()
            assert scan.scanning is False and scan.count == len(scan.networks) > 0
            with pytest.raises(WattwaechterBadRequestError):  # "days is 1-31"
                await c.history_low_res(utc_day(-40), 32)

    asyncio.run(go())


def test_no_data_answers_204(emu):
    """204 (no reading / no history yet): what the client makes of it."""

    async def go():
        async with client(emu, max_retries=1) as c:
            # a day outside the recorded range (history: the last 90 days)
            before = await c.history_high_res("2024-01-01")
            assert (before.start, before.days, before.items, before.import_total_kwh) == ("2024-01-01", 1, [], 0.0)
            future = await c.history_low_res(utc_day(30), 3)
            assert (future.start, future.items, future.import_total_kwh) == (utc_day(30), [], 0.0)
            # lowRes of today only: no completed day in the range
            assert (await c.history_low_res(utc_day(0), 1)).items == []
            control(emu, "latest", {"clear": True})
            assert await c.meter_data() is None
            assert await c.logs_rawdump() is None
            assert (await c.led()).status is LedStatus.METER_ATTENTION
            assert isinstance(await c.logs_ram(), str)
            control(emu, "history", {"first_day": None})
            assert (await c.history_high_res(utc_day(-1))).items == []
            assert (await c.history_low_res(utc_day(-7), 7)).items == []
            control(emu, "latest", {"clear": False})
            assert (await c.meter_data()).total_consumption > 0

    asyncio.run(go())


# ---------------------------------------------------------------------------------------------
# Beyond the document: selftest, setup_token and mqtt_status call endpoints that none of the
# document's tables lists. The emulator serves them in the form the client's models parse (so that
# integrations built on the client can be developed against it); no check judges them, and these
# tests only show that the client takes the answers and that they agree with the device's state.


def test_the_emulator_serves_the_calls_beyond_the_document():
    from conformlab.emulators.wattwaechter import BEYOND_THE_DOCUMENT as ROUTES_BEYOND

    assert {f"{route.method} {route.path}" for route in ROUTES_BEYOND} == set(BEYOND_THE_DOCUMENT.values())


def test_selftest_and_mqtt_status_follow_the_settings(emu):
    """selftest -> SelfTestResult; mqtt_status -> MqttStatus, from the MQTT settings: connected
    while a broker is set, OFF when disabled, FAILED when enabled without a broker host."""

    async def go():
        refill(emu)
        async with client(emu, max_retries=1) as c:
            result = await c.selftest()
            assert isinstance(result, SelfTestResult)
            assert result.success is True and result.result and result.message
            status = await c.mqtt_status()
            assert isinstance(status, MqttStatus) and status.state is MqttState.CONNECTED and status.connected
            mqtt = (await c.settings()).mqtt
            assert (status.enabled, status.host, status.port, status.client_id, status.use_tls) == (
                mqtt.enable, mqtt.host, mqtt.port, mqtt.client_id, mqtt.use_tls)
            assert (status.last_error, status.last_error_message, status.reconnect_attempts) == (0, "", 0)
            await c.update_settings({"mqtt": {"enable": False}})
            off = await c.mqtt_status()
            assert (off.enabled, off.state, off.connected) == (False, MqttState.OFF, False)
            await c.update_settings({"mqtt": {"enable": True, "host": "", "port": 8883, "use_tls": True}})
            failed = await c.mqtt_status()
            assert (failed.state, failed.host, failed.port, failed.use_tls) == (MqttState.FAILED, "", 8883, True)
            assert failed.last_error != 0 and failed.last_error_message and not failed.connected

    asyncio.run(go())
    assert counters(emu)["selfTests"] == 1


def test_selftest_and_mqtt_status_need_a_token_with_auth_on(authed):
    """The client sends its one token: READ and WRITE tokens are served, none or a wrong one is
    refused (401) and the self-test does not run."""

    async def go():
        refill(authed)
        for token in (READ_TOKEN, WRITE_TOKEN):
            async with client(authed, token, max_retries=1) as c:
                assert (await c.selftest()).success is True
                assert (await c.mqtt_status()).connected is True
        for token in (None, "WRONG0123456789ABCDE"):
            async with client(authed, token, max_retries=1) as c:
                for call in (c.selftest, c.mqtt_status):
                    with pytest.raises(WattwaechterAuthenticationError, match=UNAUTHORIZED):
                        await call()

    asyncio.run(go())
    assert counters(authed)["selfTests"] == 2


def test_setup_token_only_before_the_first_wifi_connection(emu, authed):
    """The client sends no token on setup_token. A device that has been set up (the emulator's state
    at start) answers 403, which the client raises as an auth error; before its first WiFi connection
    (control `setup`) it hands out its active tokens as {"readToken", "writeToken"}."""

    async def setup_token(running, token=None):
        async with client(running, token, max_retries=1) as c:
            return await c.setup_token()

    async def refused(running, token=None):
        with pytest.raises(WattwaechterAuthenticationError, match=FORBIDDEN):
            await setup_token(running, token)

    for running in (emu, authed):
        refill(running)
        asyncio.run(refused(running))
        asyncio.run(refused(running, READ_TOKEN))  # a token changes nothing: the client does not send it
        control(running, "setup", {"complete": False})
        tokens = asyncio.run(setup_token(running))  # (an assert would show them)
        assert set(tokens) == {"readToken", "writeToken"}
        active = control(running, "tokens", method="GET")
        handed = same_secret(tokens["readToken"], active["read_token"]) and same_secret(
            tokens["writeToken"], active["write_token"])
        assert handed, "setup_token did not hand out the device's active tokens"
        control(running, "setup", {"complete": True})
        asyncio.run(refused(running))

    async def read_with_the_handed_out_token():  # `tokens`: authed's, the last in the loop
        async with client(authed, tokens["readToken"], max_retries=1) as c:
            return await c.settings()
    assert asyncio.run(read_with_the_handed_out_token()).api_auth_required is True


# ---------------------------------------------------------------------------------------------
# With tokens


def test_read_token_reads_everything(authed):
    async def go():
        async with client(authed, READ_TOKEN, max_retries=1) as reader:
            await check_every_read(reader, authed, auth_required=True)
        async with client(authed, WRITE_TOKEN, max_retries=1) as writer:  # a WRITE token also reads
            refill(authed)
            assert (await writer.settings()).api_auth_required is True
            assert (await writer.meter_data()).total_consumption > 0

    asyncio.run(go())


def test_missing_or_wrong_token_is_refused(authed):
    calls = read_calls(utc_day(-1), utc_day(-7))

    async def go(token):
        refill(authed)
        async with client(authed, token, max_retries=1) as c:
            for name, call in calls.items():
                if name in OPEN_METHODS:  # open endpoints: the client sends no token, the device answers
                    assert await call(c)
                    continue
                with pytest.raises(WattwaechterAuthenticationError, match=UNAUTHORIZED):
                    await call(c)

    asyncio.run(go(None))
    asyncio.run(go("WRONG0123456789ABCDE"))
    seen = counters(authed)
    assert seen["requests"] == 2 * len(calls) and seen["rateLimited"] == 0  # all answered by the device


def test_read_token_cannot_write(authed):
    """Every write call with the READ token: 403, which the client raises as
    WattwaechterAuthenticationError ("Forbidden ..."); without a token: 401. Nothing is done."""

    async def go():
        refill(authed)
        async with client(authed, READ_TOKEN, max_retries=1) as reader, \
                client(authed, max_retries=1) as anonymous:
            for name, call in WRITE_CALLS.items():
                with pytest.raises(WattwaechterAuthenticationError, match=FORBIDDEN):
                    await call(reader)
                with pytest.raises(WattwaechterAuthenticationError, match=UNAUTHORIZED):
                    await call(anonymous)

    asyncio.run(go())
    done = counters(authed)
    assert all(done[key] == 0 for key in ("reboots", "otaStarts", "settingsWrites", "tokenRenewals",
                                          "caUploads", "cloudPairings")), done
    nothing_pending = control(authed, "tokens", method="GET")["pending"] is None
    assert nothing_pending, "a token pair is pending after generate with the READ token / no token"


def test_write_token_writes_settings(authed):
    """A harmless partial write (LED off), read back through the client, then restored."""

    async def go():
        refill(authed)
        async with client(authed, WRITE_TOKEN, max_retries=1) as writer, \
                client(authed, READ_TOKEN, max_retries=1) as reader:
            before = await reader.settings()
            assert before.led_enable is True and (await reader.led()).enabled is True
            assert await writer.update_settings({"ledEnable": False}) == {"ledEnable": False}  # the echo
            after = await reader.settings()
            assert after.led_enable is False
            led = await reader.led()
            assert (led.enabled, led.color) == (False, LedColor.OFF)
            # partial: nothing else changed
            assert after == dataclasses.replace(before, led_enable=False)
            assert await writer.update_settings({"ledEnable": True}) == {"ledEnable": True}
            assert await reader.settings() == before
            assert (await reader.led()).enabled is True

    asyncio.run(go())
    assert counters(authed)["settingsWrites"] == 2


def test_token_renewal(authed):
    """generate + confirm through the client: the new tokens work, the old ones are refused."""

    async def refused(token, call, match=UNAUTHORIZED) -> None:
        async with client(authed, token, max_retries=1) as c:
            with pytest.raises(WattwaechterAuthenticationError, match=match):
                await call(c)

    async def go():
        refill(authed)
        async with client(authed, WRITE_TOKEN, max_retries=1) as writer:
            pending = await writer.generate_tokens()
            success, expires_in = pending.success, pending.expires_in  # (its repr holds the tokens)
            assert success is True and expires_in == 60
            fresh = {pending.token_read, pending.token_write}
            distinct = len(fresh) == 2 and not fresh & {READ_TOKEN, WRITE_TOKEN}
            assert distinct, "generate_tokens returned a token that is not new"
            # not active yet: the pending tokens are refused, the old ones still work
            await refused(pending.token_read, lambda c: c.settings())
            async with client(authed, READ_TOKEN, max_retries=1) as reader:
                assert (await reader.settings()).api_auth_required is True
            # confirm needs the WRITE token and the pending WRITE token
            await refused(READ_TOKEN, lambda c: c.confirm_tokens(pending.token_write), FORBIDDEN)
            with pytest.raises(WattwaechterBadRequestError):
                await writer.confirm_tokens(pending.token_read)
            confirmed = await writer.confirm_tokens(pending.token_write)  # (an assert would show the argument)
            assert confirmed is True
            # the old tokens are refused now ...
            await refused(READ_TOKEN, lambda c: c.settings())
            await refused(WRITE_TOKEN, lambda c: c.update_settings({"ledEnable": True}))
        # ... and the new ones work: READ reads, WRITE writes
        async with client(authed, pending.token_read, max_retries=1) as reader, \
                client(authed, pending.token_write, max_retries=1) as writer:
            assert (await reader.settings()).led_enable is True
            await refused(pending.token_read, lambda c: c.update_settings({"ledEnable": True}), FORBIDDEN)
            assert await writer.update_settings({"ledEnable": True}) == {"ledEnable": True}
            # a pair that is not confirmed within 60 s lapses (token clock moved by the control)
            refill(authed)
            late = await writer.generate_tokens()
            control(authed, "advance", {"seconds": 61})
            with pytest.raises(WattwaechterBadRequestError):
                await writer.confirm_tokens(late.token_write)
            assert (await reader.settings()).api_auth_required is True  # still the confirmed pair
        return pending

    pending = asyncio.run(go())
    active = control(authed, "tokens", method="GET")
    renewed = same_secret(active["read_token"], pending.token_read) and same_secret(active["write_token"],
                                                                                    pending.token_write)
    assert renewed, "the device's active tokens are not the confirmed pair"
    assert counters(authed)["tokenRenewals"] == 1


# ---------------------------------------------------------------------------------------------
# 429 / 503: the client's own Retry-After handling, with real waits. The four scenarios run at the
# same time, each on an emulator of its own (the rate budget and the heap are per device), so the
# waits overlap; each test below takes the result of its own scenario.


def exhaust_budget(emu) -> None:
    """25 accepted requests (another client on the same device): the budget is used up."""
    refill(emu)
    with requests.Session() as other:
        for _ in range(25):
            assert other.get(emu.url + "/api/v1/system/alive", timeout=5).status_code == 200
    assert control(emu, "budget", method="GET")["remaining"] == 0


def timed(coro_factory: Callable[[], Awaitable[Any]]) -> tuple[Any, float]:
    async def go():
        started = time.monotonic()
        try:
            result = await coro_factory()
        except Exception as exc:  # the exception is the result of the "gives up" scenarios
            result = exc
        return result, time.monotonic() - started
    return asyncio.run(go())


def scenario_429_then_success() -> dict[str, Any]:
    """Budget used up; the READ client (default max_retries) gets 429, waits Retry-After, retries."""
    with start_emulator("wattwaechter", auth=TOKENS) as emu:
        exhaust_budget(emu)

        async def call():
            async with client(emu, READ_TOKEN) as c:
                return await c.settings()
        result, elapsed = timed(call)
        return {"result": result, "elapsed": elapsed, "counters": counters(emu)}


def scenario_429_gives_up() -> dict[str, Any]:
    """Budget used up, client with max_retries=1: no retry, the client raises."""
    with start_emulator("wattwaechter") as emu:
        exhaust_budget(emu)

        async def call():
            async with client(emu, max_retries=1) as c:
                return await c.system_info()
        result, elapsed = timed(call)
        return {"result": result, "elapsed": elapsed, "counters": counters(emu)}


def scenario_503_then_success() -> dict[str, Any]:
    """Free heap forced below 25 KB; a timer releases it after ~1 s; the client (default
    max_retries) gets 503, waits Retry-After (5 s) and retries a large history answer."""
    with start_emulator("wattwaechter") as emu:
        control(emu, "heap", {"free": 20_000})
        release = threading.Timer(1.0, control, args=(emu, "heap", {"free": None}))
        release.start()
        try:
            day = utc_day(-1)

            async def call():
                async with client(emu) as c:
                    return await c.history_high_res(day)
            result, elapsed = timed(call)
        finally:
            release.cancel()
            release.join()
        return {"result": result, "elapsed": elapsed, "counters": counters(emu), "day": day}


def scenario_503_persists() -> dict[str, Any]:
    """Free heap stays below 25 KB; client with max_retries=2: two attempts, then it raises."""
    with start_emulator("wattwaechter", auth=TOKENS) as emu:
        control(emu, "heap", {"free": 10_000})

        async def call():
            async with client(emu, READ_TOKEN, max_retries=2) as c:
                return await c.meter_data()
        result, elapsed = timed(call)
        seen = counters(emu)
        control(emu, "heap", {"free": None})

        async def after():
            async with client(emu, READ_TOKEN, max_retries=1) as c:
                return await c.alive()
        recovered = asyncio.run(after())
        return {"result": result, "elapsed": elapsed, "counters": seen, "recovered": recovered}


SCENARIOS = {"429_then_success": scenario_429_then_success, "429_gives_up": scenario_429_gives_up,
             "503_then_success": scenario_503_then_success, "503_persists": scenario_503_persists}


@pytest.fixture(scope="module")
def retry_scenarios():
    pool = ThreadPoolExecutor(max_workers=len(SCENARIOS), thread_name_prefix="retry-scenario")
    futures = {name: pool.submit(run) for name, run in SCENARIOS.items()}
    yield {name: future.result for name, future in futures.items()}
    pool.shutdown(wait=True)


def test_429_client_waits_retry_after_and_succeeds(retry_scenarios):
    outcome = retry_scenarios["429_then_success"](timeout=60)
    settings = outcome["result"]
    assert not isinstance(settings, Exception), f"{type(settings).__name__}: {settings}"
    assert settings.api_auth_required is True and settings.mqtt.port == 1883
    assert 9.0 <= outcome["elapsed"] < 15.0, outcome["elapsed"]  # one wait of Retry-After: 10
    seen = outcome["counters"]
    assert seen["rateLimited"] == 1 and seen["requests"] == 25 + 1  # the 429, then the retry admitted


def test_429_persisting_client_gives_up_with_rate_limit_error(retry_scenarios):
    outcome = retry_scenarios["429_gives_up"](timeout=60)
    error = outcome["result"]
    assert isinstance(error, WattwaechterRateLimitError), repr(error)
    assert error.retry_after == 10  # read from the device's Retry-After header
    seen = outcome["counters"]
    assert seen["rateLimited"] == 1 and seen["requests"] == 25  # max_retries=1: one attempt only


def test_503_client_waits_retry_after_and_succeeds(retry_scenarios):
    outcome = retry_scenarios["503_then_success"](timeout=60)
    high = outcome["result"]
    assert not isinstance(high, Exception), f"{type(high).__name__}: {high}"
    assert (high.start, high.days, len(high.items)) == (outcome["day"], 1, 96)
    assert 4.5 <= outcome["elapsed"] < 9.0, outcome["elapsed"]  # one wait of Retry-After: 5
    seen = outcome["counters"]
    assert seen["heapRejected"] == 1 and seen["rateLimited"] == 0 and seen["requests"] == 1


def test_503_persisting_client_gives_up_with_connection_error(retry_scenarios):
    outcome = retry_scenarios["503_persists"](timeout=60)
    error = outcome["result"]
    assert isinstance(error, WattwaechterConnectionError), repr(error)
    assert "503" in str(error)
    assert outcome["elapsed"] >= 4.5, outcome["elapsed"]  # it waited Retry-After between its attempts
    seen = outcome["counters"]
    assert seen["heapRejected"] == 2 and seen["requests"] == 0  # max_retries=2 attempts, no budget spent
    assert outcome["recovered"].alive is True  # the device stayed up
