"""Modbus through the controller: requests answered by their transaction id, the RS-485 device
search and the template search (start, result, stop).

Only reads of holding registers are sent to the bus (function 3: changes nothing on the field
devices). The bodies and answers beyond the paths are this project's reading (see the schema):
binding on the bundled emulator, notices elsewhere; a check that cannot judge what follows an answer
of another form stops unverified.
"""

from __future__ import annotations

import pytest

from conformlab.checks import answer, wait_until
from suites.overvis_mc252.mc252 import (
    MODBUS_READ, SCHEMA, as_read, assert_shape, first_template, let_time_pass, new_tid, read_json, require_login,
)

FINAL = ("ok", "timeout", "exception")
SEARCH_SECONDS = 30  # how long real hardware is given to finish a search before the run stops it


def modbus_answer(device, tid: int) -> dict:
    """The answer of transaction `tid`, once it is no longer pending (bounded wait)."""
    def final():
        body = read_json(device, device.client.get(f"/modbus/resp/?tid={tid}"), f"the answer of transaction {tid}")
        return body if body.get("status") != "pending" else None

    body = wait_until(final, 10.0, step=0.05)
    as_read(device, bool(body), f"transaction {tid} is still pending after 10 s")
    return body


@pytest.mark.req("MC252-MODBUS-TID")
def test_modbus_answers_are_found_by_their_tid(device):
    """Two requests in flight: each tid answers its own request, whichever was sent last."""
    require_login(device)
    first_request, second_request = dict(MODBUS_READ), {**MODBUS_READ, "addr": MODBUS_READ["addr"] + 2, "count": 1}
    tids = [new_tid(device, body) for body in (first_request, second_request)]
    assert tids[0] != tids[1], f"each request gets a transaction id of its own: {tids}"
    for tid, request in zip(tids, (first_request, second_request)):
        body = modbus_answer(device, tid)
        assert_shape(device, SCHEMA.operation("GET", "/modbus/resp/"), device.client.get(f"/modbus/resp/?tid={tid}"))
        # The tid is the document's own word ("Get Modbus response by tid"): an answer that names
        # another transaction is wrong whatever the rest of its form.
        assert body.get("tid") is None or str(body.get("tid")) == str(tid), (
            f"GET /modbus/resp/?tid={tid} must answer transaction {tid}, got {body}")
        device.reading(body.get("tid") == tid and body.get("status") in FINAL, f"transaction {tid}: {body}")
        if body.get("status") == "ok":
            device.reading((body.get("addr"), len(body.get("values") or [])) == (request["addr"], request["count"]),
                           f"transaction {tid} asked for {request['count']} register(s) from {request['addr']} "
                           f"(answered as \"addr\" and \"values\" in this project's reading), got {body}")


def search_result(device, path: str) -> dict:
    body = read_json(device, device.client.get(path), f"GET {path}")
    progress = body.get("progress")
    as_read(device, body.get("status") in ("idle", "running", "done", "stopped")
            and isinstance(progress, int) and not isinstance(progress, bool) and 0 <= progress <= 100,
            f"GET {path}: a search result has a status (idle, running, done, stopped) and a progress of 0..100: {body}")
    return body


def run_to_the_end(device, result_path: str) -> dict:
    """The emulator's search ends after 5 s of its clock; real hardware gets SEARCH_SECONDS."""
    if device.target.emulator:
        let_time_pass(device, 6)
        return search_result(device, result_path)
    def done():
        body = search_result(device, result_path)
        return body if body["status"] == "done" else None

    return wait_until(done, SEARCH_SECONDS, step=2.0) or search_result(device, result_path)


SEARCHES = [
    pytest.param("/modbus/find/", "/modbus/find/result/?list", id="device-search", marks=pytest.mark.req("MC252-MODBUS-FIND")),
    pytest.param("/modbus/class-find/", "/modbus/class-find/result/", id="template-search", marks=pytest.mark.req("MC252-MODBUS-CLASS-FIND")),
]


@pytest.mark.parametrize("base, result_path", SEARCHES)
def test_search_starts_reports_and_stops(device, base, result_path, notice):
    """The table names start, result and stop; what a result says (status words, progress, the
    devices found) is this project's reading: binding on the bundled emulator, notices elsewhere."""
    require_login(device)
    body = {"template": first_template(device)} if "class-find" in base else {}
    started = device.client.post(base + "start/", json=body)
    as_read(device, started.status_code == 200, f"POST {base}start/ (a body of this project's reading): {answer(started)}")
    try:
        running = search_result(device, result_path)
        device.reading(running["status"] in ("running", "done"), f"a started search is running (or done): {running}")
        if body:
            device.reading(running.get("template") == body["template"], f"the template search names its template: {running}")
        stopped = device.client.post(base + "stop/", json={})
        assert stopped.status_code == 200, f"POST {base}stop/: {answer(stopped)}"
        after = search_result(device, result_path)
        device.reading(after["status"] in ("stopped", "done"), f"after a stop the search is stopped (or was done): {after}")
        let_time_pass(device, 1)
        again = search_result(device, result_path)
        device.reading(again["progress"] == after["progress"], f"a stopped search makes no progress: {after} then {again}")
        # Once more to the end: it finds the devices on the bus.
        assert device.client.post(base + "start/", json=body).status_code == 200, f"POST {base}start/ once more"
        final = run_to_the_end(device, result_path)
        if final["status"] != "done":
            notice(f"the {base} search did not finish within {SEARCH_SECONDS} s; its end was not checked")
            return
        device.reading(final["progress"] == 100 and isinstance(final.get("devices"), list), f"a finished search lists what it found: {final}")
        if device.target.emulator:  # the emulated bus is known: every slave (of the template's model) is found
            from conformlab.emulators.overvis_mc252 import BUS

            expected = {unit for unit, slave in BUS.items() if slave.model == body.get("template", slave.model)}
            found = {d.get("unit") for d in final.get("devices") or [] if isinstance(d, dict)}
            device.reading(found == expected, f"the search must find units {sorted(expected)}: {final}")
    finally:
        device.client.post(base + "stop/", json={})
