"""The WattWächter's own part of the access matrix (suites/common/access.py): the request each
operation gets, what a served one answers, and the run's tokens kept whatever a token operation did.
Its roles (no, wrong, READ and WRITE token), its 401 and 403 are in the profile. Every request counts
against the device's budget: each body is made once, as before the matrix was shared."""

from __future__ import annotations

from conformlab.checks import send
from suites.common.access import DeviceAccess
from suites.wattwaechter.ww import CHECKS, assert_status, changing_body, harmless_request, read_params, served_answer, tokens_kept


class WwAccess(DeviceAccess):
    checks = CHECKS  # settings put back; on the emulator, the counters of what leaves nothing readable
    near_miss_operations = ("POST /settings",)

    def request(self, device, op, *, served):
        if served:
            return harmless_request(device, op)
        body = changing_body(device, op) if op.body_kind else None
        params = read_params(op)
        return lambda **kw: send(device, op, body=body, params=params, **kw)

    def assert_served(self, device, op, response, why):
        expected, reading = served_answer(op)
        assert_status(device, response, expected, why, reading)

    def kept(self, device, op):
        return tokens_kept(device, device.notice, op)


ACCESS = WwAccess()
