"""WisDM's own part of the access matrix (suites/common/access.py): the request each operation gets for
each key, what a served one answers, and what shows a refused request's effect. Its roles (no key, a key
the cloud never issued, every key of the target) and its refusals (403; 401 accepted) are in the profile.

A served request of a key acts on that key's own objects: its organization (GET /organization with the
key), its locations and a gateway it sees (ONLINE where the operation acts on one), a command it may
read (made with POST .../async-cmd netstat by the key, or by another key of its organization). Bodies
are harmless where they can be: a setting written as it was read, a netstat. A refused request (no key,
an unknown or expired key, a near miss, a key without the grant) acts on the run key's objects (a key of
another organization without the grant: on its own, harmlessly), so that an effect would show: a
setting changed (where the target allows changes, else written as read), a netstat, and on destructive
targets the real location, registration, reboot, password or firmware.
What shows an effect: the GET of the write's path (x-conformlab reads), and on the emulator the counters
of what requests did (reboots, commands, settings written ...)."""

from __future__ import annotations

import contextlib

from conformlab.checks import DeviceChecks, answer
from conformlab.verdicts import requirement
from suites.common.access import DeviceAccess
from suites.wisdm.wisdm import (
    RUN, SETTINGS, Built, build, counters, gateway_for, json_of, key_presented, left_behind,
    location_creation_served, put_back_setting, read_setting, registration_location, requirement_of, run_scope,
    scope, send_built, success_status,
)


def effect_path(device, op) -> str | None:
    """The GET that shows a refused write's effect on the run key's objects (the same objects the
    refused request names): the organization's locations, the registration location's gateways, the
    setting's own GET."""
    of = run_scope(device)
    if op.key == "POST /organization/{organizationId}/locations":
        return f"/organization/{of.org_id}/locations"
    if op.key == "POST /location/{locationId}/gateways":
        return f"/location/{registration_location(device, of.org_id)['id']}/gateways"
    if op.method == "POST" and op.path in SETTINGS:
        return op.path.format(sn=_settings_sn(device, op))
    return None


def _settings_sn(device, op) -> str:
    return gateway_for(device, op, run_scope(device))[1]


class WisdmChecks(DeviceChecks):
    def read_effect(self, device, op):
        if not op.is_write:
            return None
        effect = {}
        path = effect_path(device, op)
        if path:
            response = device.client.get(path)
            effect["read"] = json_of(response) if response.status_code == 200 else (response.status_code, response.text)
        found = counters(device)
        if found is not None:
            effect["counters"] = found
        return effect or None

    def restored_paths(self, device, op):
        return []  # WisDM writes answer 204 and take whole objects: put back by setting_kept, not device.preserved

    @contextlib.contextmanager
    def restoring(self, device, op):
        """A refused settings write that the cloud took anyway is put back (the run key's gateway)."""
        if not (op.method == "POST" and op.path in SETTINGS):
            yield
            return
        sn = _settings_sn(device, op)
        before = read_setting(device, op.path, sn)
        try:
            yield
        finally:
            put_back_setting(device, op.path, sn, before)


class WisdmAccess(DeviceAccess):
    checks = WisdmChecks()
    # Harmless writes a near miss is also sent on: a setting written as read, a netstat.
    near_miss_operations = ("POST /gateway/{sn}/network/priority", "POST /gateway/{sn}/async-cmd")

    def unavailable(self, device, op):
        if op.key == "POST /location/{locationId}/gateways":
            device.require_emulator("which gateways can be registered is not told by the API")
        return None

    def request(self, device, op, *, served):
        if not served:
            # The run key's objects, built now (before the matrix reads the effect: a command made
            # for a refused GET of a command result is not the refused request's effect).
            run = run_scope(device)
            built = build(device, op, run, changing=device.target.destructive)

            def refused(**kw):
                of, request = run, built
                key = key_presented(device, kw.get("auth", RUN))
                if key is not None and scope(device, key).org_id != run.org_id:
                    # A key of another organization without the grant: on its own organization's objects,
                    # harmlessly (a setting written as read), so that the answer is the permission's 403
                    # and not whatever the cloud answers for another organization's object.
                    of = scope(device, key)
                    request = build(device, op, of)
                response = send_built(device, op, request, **kw)
                if 200 <= response.status_code < 300:  # taken although it must not be: say what it left behind
                    left_behind(device, op, response, of, request)
                return response
            return refused
        made: dict[str, Built] = {}

        def send(**kw):
            key = key_presented(device, kw.get("auth", RUN))
            of = scope(device, key) if key is not None else run_scope(device)
            if of.name not in made:
                made[of.name] = build(device, op, of)
            self._last = (of, made[of.name])
            return send_built(device, op, made[of.name], **kw)
        return send

    def assert_served(self, device, op, response, why):
        of, built = getattr(self, "_last", (None, None))
        expected = success_status(op)
        if 200 <= response.status_code < 300 and built is not None:
            left_behind(device, op, response, of, built)
        with requirement(requirement_of(op)):
            if op.key == "POST /organization/{organizationId}/locations":
                response = location_creation_served(device, response, why)
            assert response.status_code == expected, f"{why}: expected {expected}, got {answer(response)}"
            if op.key == "POST /gateway/{sn}/async-cmd":
                body = json_of(response)
                assert isinstance(body, dict) and "commandId" in body, f"{why}: the answer carries no commandId: {answer(response)}"
        with requirement("WISDM-ANSWERS"):
            problems = device.check_answer(op, response)
            assert not problems, "; ".join(problems[:5])

    def served_requirements(self, op):
        return (requirement_of(op), "WISDM-ANSWERS")


ACCESS = WisdmAccess()
