"""Asynchronous commands: POST .../async-cmd answers a commandId at once; polling GET
.../async-cmd/{commandId} (every POLL_INTERVAL s, for at most the command's timeout plus POLL_GRACE s:
the check's own bounds, shown in the report) moves from PENDING to SUCCESS or FAILED; an unknown or
expired id is 404. The page types commandId as a number in one answer and a string in the other
(NOTES.md): both are accepted, and a notice says when the two answers differ. netstat is a diagnostic
that changes nothing: these checks run on every target."""

from __future__ import annotations

import time

import pytest

from conformlab.checks import answer
from conformlab.verdicts import not_applicable, requirement
from suites.wisdm.wisdm import (
    COMMAND_STATES, COMMAND_TIMEOUT, DONE_STATES, NETSTAT, POLL_INTERVAL, POLL_LIMIT, PREFIX, absent_command_id,
    call, command_id, command_state, conforms, gateway, json_of, operation, poll_command, run_scope, start_command,
    writer,
)

SEND = operation("POST", "/gateway/{sn}/async-cmd")
RESULT = operation("GET", "/gateway/{sn}/async-cmd/{commandId}")
# Seconds within which the POST must answer: "The request immediately returns a commandId" (well before
# the command could have run: its timeout).
AT_ONCE = 5.0


def _sent(device, status: str = "ONLINE"):
    of = run_scope(device)
    key = writer(device, "read", "write")
    _, sn = gateway(device, of, "settings" if status == "ONLINE" else status.lower(), status)
    started = time.monotonic()
    response = start_command(device, sn, key)
    took = time.monotonic() - started
    return of, key, sn, response, took


@pytest.mark.req("WISDM-CMD-ID", "WISDM-CMD-STATES", "WISDM-NOTES-TYPES", "WISDM-ANSWERS")
@pytest.mark.parametrize("status", ["ONLINE", "OFFLINE"], ids=["online-gateway", "offline-gateway"])
def test_command_answers_id_at_once_and_completes(device, status, report_extra, notice):
    of, key, sn, response, took = _sent(device, status)
    with requirement("WISDM-CMD-ID"):
        assert response.status_code == 200, f"netstat on gateway {sn} ({status}): {answer(response)}"
        cid = command_id(response)
        assert cid is not None, f"the answer must carry the commandId: {answer(response)}"
        assert took <= AT_ONCE, f"the commandId came after {took:.1f} s; it is returned immediately"
    conforms(device, SEND, response)
    final, states, seconds = poll_command(device, sn, cid, key)
    report_extra(text=f"polled GET {PREFIX}/gateway/{sn}/async-cmd/{cid} every {POLL_INTERVAL} s for at most "
                      f"{POLL_LIMIT:g} s (the command's timeout {COMMAND_TIMEOUT} s + {POLL_LIMIT - COMMAND_TIMEOUT:g} s); "
                      f"states seen: {' -> '.join(states)} after {seconds:.1f} s", name="command polling")
    body = json_of(final)
    if status == "OFFLINE" and final.status_code == 500:
        return  # "500 | Gateway offline or internal fault": the documented answer for an offline gateway
    with requirement("WISDM-CMD-STATES"):
        assert final.status_code == 200, f"the command's result: {answer(final)}"
        state = command_state(body)
        assert state in COMMAND_STATES, f"the result reports one of PENDING, SUCCESS, FAILED: {answer(final)}"
    if status == "OFFLINE" and state == "PENDING":
        # "PENDING: Command has been queued or is waiting for execution": an offline gateway executes
        # nothing, so its timeout has not run; that the cloud gives up (FAILED) is the reading.
        device.reading(False, f"netstat on the OFFLINE gateway {sn} is still PENDING after {seconds:.1f} s; the reading "
                              "expects FAILED")
        return
    with requirement("WISDM-CMD-STATES"):
        assert state in DONE_STATES, (
            f"still {state} after {seconds:.1f} s, past the command's timeout ({COMMAND_TIMEOUT} s): \"FAILED: "
            f"Execution failed or timed out\" (polled every {POLL_INTERVAL} s)")
        assert body.get("sn") == sn and str(body.get("commandId")) == str(cid), (
            f"the result names gateway {sn} and command {cid}: {answer(final)}")
        assert isinstance(body.get("result"), str), f"`result` is the command's output or message: {answer(final)}"
    conforms(device, RESULT, final)
    expected = "SUCCESS" if status == "ONLINE" else "FAILED"
    device.reading(state == expected and (state != "SUCCESS" or "Proto" in body["result"]),
                   f"netstat on an {status} gateway ended {state} ({body.get('result', '')[:60]!r}); the reading "
                   f"expects {expected}{' with netstat output' if expected == 'SUCCESS' else ''}")
    device.reading(states[0] == "PENDING", f"the first poll, right after the POST, showed {states[0]}; the reading "
                                           "expects PENDING while the gateway runs the command")
    with requirement("WISDM-NOTES-TYPES"):
        for value, where in ((cid, "POST"), (body.get("commandId"), "GET")):
            assert isinstance(value, (int, str)) and not isinstance(value, bool), (
                f"commandId of the {where} answer must be a number or a string: {value!r}")
    if type(cid) is not type(body.get("commandId")):
        kind = {int: "a number", str: "a string"}
        notice(f"commandId is {kind[type(cid)]} in the POST answer and {kind[type(body.get('commandId'))]} in the GET "
               "answer, as the page types it (NOTES.md); both are accepted")


@pytest.mark.req("WISDM-CMD-ID")
def test_command_id_in_the_pages_request_form(device):
    """The page polls "async-cmd/cmd-1760413840" for the command 1760413840: that form names the same
    command (the reading; the page shows it only in its request example)."""
    of, key, sn, response, _ = _sent(device)
    cid = command_id(response)
    if cid is None:
        not_applicable(f"the POST gave no commandId: {answer(response)}")
    plain = call(device, "GET", f"/gateway/{sn}/async-cmd/{cid}", key=key)
    assert plain.status_code == 200, f"the command {cid} as the POST named it: {answer(plain)}"
    prefixed = call(device, "GET", f"/gateway/{sn}/async-cmd/cmd-{cid}", key=key)
    body = json_of(prefixed)
    device.reading(prefixed.status_code == 200 and isinstance(body, dict) and str(body.get("commandId")) == str(cid),
                   f"GET .../async-cmd/cmd-{cid} (the page's request form): {answer(prefixed)}")


@pytest.mark.req("WISDM-CMD-404", "WISDM-ANSWERS")
def test_unknown_command_id_answers_404(device):
    of, key, sn, response, _ = _sent(device)
    cid = command_id(response) or 1760413840
    absent = absent_command_id(cid)
    result = call(device, "GET", f"/gateway/{sn}/async-cmd/{absent}", key=key)
    assert result.status_code == 404, f"a commandId that does not exist: expected 404, got {answer(result)}"
    conforms(device, RESULT, result)


@pytest.mark.req("WISDM-CMD-400")
def test_malformed_command_id_refused(device):
    """A commandId of no form the cloud hands out: "400 | Incorrect or missing commandId" (a 404 for an
    id that does not exist is accepted too: which ids are "incorrect" is not documented)."""
    of = run_scope(device)
    _, sn = gateway(device, of)
    response = call(device, "GET", f"/gateway/{sn}/async-cmd/conformlab-no-such-id", key=of.key)
    assert response.status_code in (400, 404), f"a malformed commandId must be refused: {answer(response)}"
    device.reading(response.status_code == 400, f"a malformed commandId: {answer(response)}; the reading expects 400")


@pytest.mark.emulator_only("moves the cloud's clock an hour on")
@pytest.mark.req("WISDM-CMD-404")
def test_expired_command_id_answers_404(device):
    of, key, sn, response, _ = _sent(device)
    cid = command_id(response)
    assert response.status_code == 200 and cid is not None, f"netstat: {answer(response)}"
    final, states, _ = poll_command(device, sn, cid, key)
    assert states[-1] in DONE_STATES, f"the command did not complete: {states}"
    device.control("advance", {"seconds": 2 * 3600})  # the emulator keeps a result an hour (its reading)
    result = call(device, "GET", f"/gateway/{sn}/async-cmd/{cid}", key=key)
    assert result.status_code == 404, f"a commandId that has expired: expected 404, got {answer(result)}"


@pytest.mark.req("WISDM-CMD-400")
@pytest.mark.parametrize("body", [{"command": "conformlab-no-such-command"}, {"args": "-an"},
                                  {**NETSTAT, "timeout": "soon"}],
                         ids=["unsupported-command", "no-command", "timeout-not-a-number"])
def test_invalid_command_refused_400(device, body):
    """"This API supports a limited set of commands, such as netstat": a command of no such set, none,
    a timeout that is no number of seconds: "400 | Invalid Parameters". Which commands are supported is
    not listed, so the unsupported one is the reading."""
    of = run_scope(device)
    key = writer(device, "read", "write")
    _, sn = gateway(device, of)
    response = start_command(device, sn, key, body)
    why = f"POST {PREFIX}/gateway/{sn}/async-cmd with {body}"
    if "command" in body and body["command"] != "netstat":
        device.reading(response.status_code == 400, f"{why}: {answer(response)}; the reading expects 400")
    else:
        assert response.status_code == 400, f"{why}: expected 400, got {answer(response)}"
