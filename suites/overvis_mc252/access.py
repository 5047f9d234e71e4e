"""The Overvis MC252's own part of the access matrix (suites/common/access.py): the request each
operation gets, what a served one answers, and the salt login the login's near misses go to. Its
roles (guest, unknown token, session), its refusals and the envelope are in the profile."""

from __future__ import annotations

from conformlab import near_miss
from conformlab.checks import answer
from conformlab.verdicts import requirement
from suites.common.access import DeviceAccess
from suites.overvis_mc252.mc252 import (
    CHECKS, assert_shape, body_is_documented, call, fresh_salt, log_out, own_session, request_for, require_login,
    run_token, salted_login, with_token, wrong_login,
)


def _session_handed_out(device, response) -> None:
    """A login that was served: its session is logged out at once."""
    body = response.json() if response.status_code == 200 else None
    if isinstance(body, dict) and body.get("token"):
        log_out(device, body["token"])


class Mc252Access(DeviceAccess):
    checks = CHECKS  # saved settings and, on the emulator, the counters of every command's effect
    near_miss_operations = ("POST /settings/saved/set/",)

    def request(self, device, op, *, served):
        if op.path == "/login/":  # level 0: a guest logs in with the document's salted hash
            def login(**kw):
                response = salted_login(device)[1]
                _session_handed_out(device, response)
                return response
            return login
        request = request_for(device, op)
        if served and op.path == "/cmd/logout/":  # logging out the run's own session would test the re-login
            def logout(**kw):
                with own_session(device) as token:
                    return call(device, op, request, auth=with_token(token))
            return logout
        return lambda **kw: call(device, op, request, **kw)

    def assert_served(self, device, op, response, why):
        """The documented path, with its trailing slash, serves the request; the answer has its
        documented shape. Where a body is only our reading (the document shows none), another device
        may refuse it with the documented 400: that is no access problem. (A restart the command caused
        has been waited out by the client.)"""
        expected = (200,) if device.enforces_readings or body_is_documented(op) else (200, 400)
        assert response.status_code in expected, f"{why}: {answer(response)}"
        with requirement("MC252-JSON"):
            assert response.headers.get("Content-Type", "").split(";")[0].strip() == "application/json", (
                f"all data is transferred in JSON format: {answer(response)}")
        with requirement("MC252-LOGIN-SALT" if op.path == "/login/salt/" else "MC252-ANSWER-SHAPES"):
            assert_shape(device, op, response)

    def served_requirements(self, op):
        return ("MC252-PATHS", *(("MC252-COMMANDS",) if op.method == "POST" else ()), "MC252-JSON",
                "MC252-LOGIN-SALT" if op.path == "/login/salt/" else "MC252-ANSWER-SHAPES")

    def near_miss_context(self, device):
        return {"token": lambda: run_token(device)}

    def login_near_miss(self, device):
        credentials = require_login(device)
        probe = near_miss.Probe("POST /login/", lambda body_for: device.client.post(
            "/login/", json=body_for(fresh_salt(device)), auth=None), after=lambda response: _session_handed_out(device, response))

        def wrong(salt):
            return dict(zip(("username", "password"), wrong_login(credentials, "wrong-password", salt)))
        return [probe], wrong


ACCESS = Mc252Access()
