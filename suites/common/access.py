"""The access matrix, one for every device: each operation of a device's schema, sent by each role
of its profile, is served or refused as the operation's grants and the role's grants say.

The vocabulary: an operation needs grants (the schema's `x-conformlab.access`: a level, a token kind
or a permission name, a list of them, or none); a role holds grants (conformlab.profiles.Role: no
credential, a credential the device does not know, or one of the target's). From the two, the cases
of the checks in test_access.py:

    served      a role holding every grant the operation needs is served;
    refused     no credential, or one the device does not know, is refused the device's way
                (profile.access.refused): its status and form, no data, and no effect;
    lacking     a credential the device knows, without a grant the operation needs, is refused the
                other way (profile.access.lacking), also with no data and no effect;
    auth_off    a target without credentials (the device's authentication off) is served every
                operation, where the document says so (profile.access.auth_off);
    open        an operation that needs nothing is served without credentials (profile.access.open_operations);
    near_miss   credentials that are almost the target's are refused like wrong ones (profile.near_misses).

What is the device's own -- the request each operation gets, what a served answer must be, what
shows a refused request's effect -- is a `DeviceAccess` in suites/<suite>/access.py, named ACCESS.
"""

from __future__ import annotations

import contextlib
import functools
import importlib

import pytest

from conformlab import near_miss
from conformlab.checks import DeviceChecks, answer, assert_unchanged, send
from conformlab.dut import DeviceUnderTest
from conformlab.profiles import ANONYMOUS, HOLDER, PROFILES, AccessRefusal, DeviceProfile, Role
from conformlab.schema import Operation, device_schema
from conformlab.verdicts import not_applicable, requirement

CHECKS = ("served", "refused", "lacking", "auth_off", "open", "near_miss")


class DeviceAccess:
    """A device's own part of the access matrix (suites/<suite>/access.py exports one as ACCESS).
    The defaults fit a device whose operations take no body."""

    checks: DeviceChecks = DeviceChecks()  # what shows a request's effect, and puts it back
    # Requests the near misses are sent on besides GET profile.probe_path ("POST /settings"): a
    # harmless write, whose effect is checked like any refused one's.
    near_miss_operations: tuple[str, ...] = ()

    def unavailable(self, device: DeviceUnderTest, op: Operation) -> str | None:
        """Why the target lacks `op` (its cases are then not applicable), or None."""
        return None

    def request(self, device: DeviceUnderTest, op: Operation, *, served: bool):
        """`send(**kw)` for requests of `op` (kw: `auth=` of a role, or none: the run's own
        credentials), its body made once. served: the device is as it was afterwards; not served (a
        request that must be refused): one whose effect would show if the device took it."""
        return lambda **kw: send(device, op, **kw)

    def assert_served(self, device: DeviceUnderTest, op: Operation, response, why: str) -> None:
        """What a served answer of `op` must be besides "not refused"."""

    def served_requirements(self, op: Operation) -> tuple[str, ...]:
        """The requirements assert_served evidences for `op` (with requirement(...) around each)."""
        return ()

    @contextlib.contextmanager
    def kept(self, device: DeviceUnderTest, op: Operation):
        """Around every request of `op`: keeps what the request may take away (the run's tokens)."""
        yield

    def near_miss_context(self, device: DeviceUnderTest) -> dict:
        """What near misses derive from besides the target's credentials (conformlab.near_miss)."""
        return {}

    def login_near_miss(self, device: DeviceUnderTest) -> tuple[list[near_miss.Probe], object]:
        """For near misses of a login: the login probes, and a plainly wrong login (salt -> body)."""
        raise NotImplementedError(f"{device.profile.name} has no login near misses")


def hook_of(profile: DeviceProfile) -> DeviceAccess:
    """The device's DeviceAccess, found by the profile's suite folder."""
    return importlib.import_module(f"suites.{profile.suite}.access").ACCESS


# -- the cases, from the schema and the profile -----------------------------------------------------


def served_by(role: Role, op: Operation) -> tuple[str, ...]:
    """The requirements that say `role` holds what `op` needs (the first is the check's primary)."""
    return tuple(dict.fromkeys(role.grants[grant] for grant in op.access))


def cases(profile: DeviceProfile, auth: dict | None = None) -> dict[str, dict[tuple[str, ...], tuple[str, ...]]]:
    """check -> {its parameters (operation and role names, or a near miss's name): its requirements},
    for a target with credentials `auth` (the roles of a device with scoped keys are the target's keys)."""
    roles = profile.access.roles_for(auth or {})
    return _cases(profile.name, tuple((role.name, role.kind, tuple(role.grants.items())) for role in roles))


@functools.cache
def _cases(device: str, role_grants: tuple) -> dict[str, dict[tuple[str, ...], tuple[str, ...]]]:
    profile = PROFILES[device]
    access, hook = profile.access, hook_of(profile)
    roles = [Role(name, kind, grants=dict(grants)) for name, kind, grants in role_grants]
    found: dict[str, dict] = {check: {} for check in CHECKS}
    for op in device_schema(profile.name).operations:
        extra = hook.served_requirements(op)
        if access.auth_off:
            found["auth_off"][(str(op),)] = (access.auth_off, *extra)
        if not op.access:
            if access.open_operations:
                found["open"][(str(op),)] = (access.open_operations, *extra)
            continue
        for role in roles:
            if role.holds(op.access):
                found["served"][(str(op), role.name)] = (*served_by(role, op), *extra)
            elif role.kind == HOLDER:
                found["lacking"][(str(op), role.name)] = access.lacking.requirements
            else:
                found["refused"][(str(op), role.name)] = access.refused.requirements
    for near in profile.near_misses:
        found["near_miss"][(near.name,)] = (access.login if near.login else access.refused).requirements
    return {check: {values: tuple(dict.fromkeys(ids)) for values, ids in of.items()} for check, of in found.items()}


def matrix_check(check: str, argnames: str):
    """Parametrize a check of the matrix with each target's own cases (the plugin's per_target), each
    marked with the requirements of its device."""
    def cases_of(target) -> list:
        if target.profile.access is None:
            return []
        return [pytest.param(*values, id="-".join(values), marks=pytest.mark.req(*ids))
                for values, ids in cases(target.profile, target.auth)[check].items()]
    return pytest.mark.per_target(argnames, cases_of)


# -- at run time ---------------------------------------------------------------------------------


def operation(device: DeviceUnderTest, key: str) -> Operation:
    return device.schema.operation(*key.split(" ", 1))


def role_of(device: DeviceUnderTest, name: str) -> Role:
    return next(role for role in device.profile.access.roles_for(device.credentials) if role.name == name)


def require_credentials(device: DeviceUnderTest) -> None:
    if not device.has_credentials:
        off = device.profile.access.auth_off
        not_applicable("the target has no credentials" + (f" (authentication off: {off} applies instead)" if off else ""))


def presented(device: DeviceUnderTest, role: Role) -> dict:
    """The `auth=` of a request sent by `role` ({}: the run's own credentials)."""
    if role.kind == ANONYMOUS:
        return {"auth": None}
    if role.credential is None:
        return {}
    credential = role.credential(device.credentials)
    if credential is None:
        not_applicable(f"the target's credentials give no {role.name}")
    return {"auth": credential}


def describe(role: Role) -> str:
    if role.kind == ANONYMOUS:
        return f"without credentials ({role.name})"
    if role.kind == HOLDER:
        return f"with the {role.name} (holding {', '.join(role.grants)})"
    return f"with a credential the device does not know ({role.name})"


def _require_sendable(device: DeviceUnderTest, hook: DeviceAccess, op: Operation) -> None:
    reason = hook.unavailable(device, op)
    if reason:
        not_applicable(reason)
    # Destructive operations only where the target allows them: a device with an auth bug would run them.
    device.require_operation_allowed(op)


def assert_served(device: DeviceUnderTest, op: Operation, credential: dict, why: str, primary: str) -> None:
    """A harmless request of `op` is served (not refused), and its answer is what the device's
    suite says a served one is; the device is left as it was."""
    hook = hook_of(device.profile)
    _require_sendable(device, hook, op)
    request = hook.request(device, op, served=True)
    with hook.kept(device, op), hook.checks.restoring(device, op):
        response = request(**credential)
    access = device.profile.access
    refusals = set(access.refused.statuses) | set(access.lacking.statuses if access.lacking else ())
    with requirement(primary):
        assert response.status_code not in refusals, f"{why}: {answer(response)}"
        hook.assert_served(device, op, response, why)


def assert_refused(device: DeviceUnderTest, op: Operation, role: Role, refusal: AccessRefusal) -> None:
    """A request of `op` by `role` is refused the device's way, serves no data and has no effect
    (what the device's checks read before and after; whatever it changed anyway is put back)."""
    hook = hook_of(device.profile)
    _require_sendable(device, hook, op)
    credential = presented(device, role)
    request = hook.request(device, op, served=False)
    why = f"{op} {describe(role)} must be refused"
    with hook.kept(device, op):
        before = hook.checks.read_effect(device, op)
        with hook.checks.restoring(device, op):
            response = request(**credential)
            after = hook.checks.read_effect(device, op)
    assert_refusal_status(refusal, response, why)
    with requirement(refusal.unchanged or refusal.requirement):
        assert_unchanged(before, after, str(op))
    assert_refusal_form(device, refusal, response, why)
    with requirement(refusal.requirement):
        near_miss.assert_no_data(response, why)


def assert_refusal_status(refusal: AccessRefusal, response, why: str) -> None:
    with requirement(refusal.requirement):
        hint = f" ({refusal.hint})" if refusal.hint else ""
        assert response.status_code in refusal.statuses, (
            f"{why}: expected {' or '.join(map(str, refusal.statuses[:3]))}{'...' if len(refusal.statuses) > 3 else ''}, "
            f"got {answer(response)}{hint}")


def assert_refusal_form(device: DeviceUnderTest, refusal: AccessRefusal, response, why: str) -> None:
    """The headers and the JSON body the document gives a refusal (what only this project's reading
    gives them: binding on the bundled emulator, a notice elsewhere)."""
    with requirement(refusal.form or refusal.requirement):
        for name, value in refusal.headers.items():
            got = response.headers.get(name)
            assert got == value, f"{why}: the refusal must carry {name}: {value}, got {got!r}"
        if refusal.body is None:
            return
        media = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        what = f"{why}: the refusal comes as {media or '(no Content-Type)'!r}, not application/json"
        if refusal.json_documented:
            assert media == "application/json", f"{what}: {answer(response)}"
        else:
            device.reading(media == "application/json", f"{what}; the reading expects application/json")
        try:
            body = response.json()
        except ValueError:
            raise AssertionError(f"{why}: the refusal's body is not JSON: {answer(response)}") from None
        schema = {"$ref": f"#/components/schemas/{refusal.body}"}
        documented = [e.message for e in device.schema.validator(schema, readings=False).iter_errors(body)]
        assert not documented, f"{why}: the refusal's body is not the documented {refusal.body}: {documented[0]}: {answer(response)}"
        read = [e.message for e in device.schema.validator(schema).iter_errors(body)]
        device.reading(not read, f"{why}: the refusal's body {body} is not {refusal.body} as the reading has it: "
                                 f"{read[0] if read else ''}")


def assert_near_miss_refused(device: DeviceUnderTest, name: str, notice) -> None:
    """Near miss `name` is refused like a plainly wrong credential (conformlab.near_miss), on the
    probe path and the device's harmless writes, or (a login's near miss) on the login."""
    near_miss.require_credentials(device)
    profile, hook = device.profile, hook_of(device.profile)
    if near_miss.find(profile, name).login:
        probes, wrong = hook.login_near_miss(device)
        refusal = profile.access.login
    else:
        probes = [near_miss.read_probe(device, profile.probe_path)]
        for key in hook.near_miss_operations:
            op = operation(device, key)
            if hook.unavailable(device, op) is None:
                request = hook.request(device, op, served=True)
                probes.append(near_miss.Probe(f"{op} (harmless)", lambda auth, request=request: request(auth=auth),
                                              op=op if op.is_write else None))
        unknown = next(role for role in profile.access.roles_for(device.credentials) if role.kind not in (ANONYMOUS, HOLDER))
        wrong = unknown.credential(device.credentials)
        refusal = profile.access.refused

    def refused(response, why: str) -> None:
        assert_refusal_status(refusal, response, why)
        assert_refusal_form(device, refusal, response, why)

    near_miss.assert_refused_like_wrong(device, name, probes=probes, wrong=wrong, refusal=refused, checks=hook.checks,
                                        notice=notice, **hook.near_miss_context(device))
