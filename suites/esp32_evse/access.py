"""The ESP32 EVSE's own part of the access matrix (suites/common/access.py): the request each
operation gets and what a served write answers. Its roles and its 401 are in the profile."""

from __future__ import annotations

from conformlab.checks import send
from conformlab.verdicts import requirement
from suites.common.access import DeviceAccess
from suites.esp32_evse.evse import CHECKS, INERT_BINARY, assert_ok, effective_body, harmless_body


class EvseAccess(DeviceAccess):
    checks = CHECKS  # live state only without a vehicle; the clock put back
    near_miss_operations = ("POST /config/modbus",)

    def request(self, device, op, *, served):
        if served:
            body = harmless_body(device, op)
        elif op.body_kind == "binary":
            body = INERT_BINARY  # not an image (uploads are sent only where destructive steps are allowed)
        else:  # a write that changes the device if it is taken (for /credentials: the target's own)
            body = effective_body(op, device) if op.body_kind == "json" else None
        return lambda **kw: send(device, op, body=body, **kw)

    def assert_served(self, device, op, response, why):
        if self.served_requirements(op):
            with requirement("EVSE-CONV-OK"):  # "Write endpoints ... answer 200 with the plain-text body OK"
                assert_ok(response)

    def served_requirements(self, op):
        # An upload of a junk image is only "accepted" (not 401): it must fail later.
        return ("EVSE-CONV-OK",) if op.is_write and op.body_kind != "binary" else ()


ACCESS = EvseAccess()
