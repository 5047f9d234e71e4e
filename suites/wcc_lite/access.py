"""The WCC Lite's own part of the access matrix (suites/common/access.py): the request each enabled
operation gets (its multipart fields: real aliases, or a file the gateway refuses), what a served
one answers, and what shows a refused request's effect. Its roles and its 401 are in the profile."""

from __future__ import annotations

from conformlab.checks import DeviceChecks
from suites.common.access import DeviceAccess
from suites.wcc_lite.wcc import call, served, unavailable, valid_fields

# Emulator counters of what a request did once past authorization (an upload taken or turned down);
# the others count requests of any kind.
EFFECT_COUNTERS = ("upgradesStarted", "upgradesRefused", "syncUploads", "syncRefused", "restarts")
UPLOADS = ("/sysupgrade", "/sync")  # they get files the gateway refuses


class WccChecks(DeviceChecks):
    def read_effect(self, device, op):
        """The API writes nothing it could read back (uploads are destructive); the emulator counts
        what an upload did, so a refused request that acted anyway shows there."""
        if device.emulator:
            counters = device.control("counters")
            return {name: counters[name] for name in EFFECT_COUNTERS}
        return None


class WccAccess(DeviceAccess):
    checks = WccChecks()
    near_miss_operations = ("POST /device/info",)

    def unavailable(self, device, op):
        return unavailable(device, op)

    def request(self, device, op, *, served):
        fields = valid_fields(device, op)
        return lambda **kw: call(device, op, fields, **kw)

    def assert_served(self, device, op, response, why):
        # With a key: "If the value is correct it continues with the API request"; without one,
        # authorization is disabled and nothing is checked.
        if op.path not in UPLOADS:
            served(device, response, why)


ACCESS = WccAccess()
