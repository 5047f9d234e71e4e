"""Organizations: the version, each key's organization, isolation between organizations ("Each key
belongs to one Organization and cannot access others") and location restrictions.

Isolation runs when the target's keys belong to two organizations (found with GET /organization, never
declared): a key of one is sent at the other's organization, locations, gateways and commands, and must
get nothing and change nothing ("cannot access others"). That it is answered as for an id that exists
nowhere (the same status, the same body apart from the id), so that the answer does not tell the object
exists, is the reading: the page does not say how a refusal looks.
"""

from __future__ import annotations

import itertools

import pytest

from conformlab.checks import answer
from conformlab.verdicts import not_applicable, requirement
from suites.wisdm.wisdm import (
    LAN, PREFIX, PRIORITY, SYSLOG, WAN, Built, absent_command_id, absent_sn, absent_uuid, all_gateways, body_of, build,
    call, conforms, counters, json_of, left_behind, operation, organizations, read_setting, scope, send_built,
    usable_keys, without,
)


@pytest.mark.req("WISDM-VERSION", "WISDM-ANSWERS")
def test_version_answers_version_and_commit(device):
    response = call(device, "GET", "/version")
    body = body_of(device, response, f"GET {PREFIX}/version")
    for name in ("version", "commitId"):
        assert isinstance(body.get(name), str) and body[name], f"GET {PREFIX}/version: {name} must be a non-empty string: {body}"
    conforms(device, operation("GET", "/version"), response)


@pytest.mark.req("WISDM-ORG-INFO", "WISDM-ANSWERS")
def test_each_key_answers_its_organization(device, report_extra):
    """GET /organization with each working key answers the organization it belongs to (id and name);
    keys that name the same organization id name it the same way."""
    names: dict[str, str] = {}
    lines = []
    for key in usable_keys(device):
        response = call(device, "GET", "/organization", key=key)
        what = f"GET {PREFIX}/organization with the key {key.name}"
        body = body_of(device, response, what)
        assert isinstance(body.get("id"), str) and body["id"], f"{what}: the organization's id must be a non-empty string: {body}"
        assert isinstance(body.get("name"), str), f"{what}: the organization's name must be a string: {body}"
        conforms(device, operation("GET", "/organization"), response)
        assert names.setdefault(body["id"], body["name"]) == body["name"], (
            f"{what}: organization {body['id']} is named {body['name']!r} here and {names[body['id']]!r} for another key")
        lines.append(f"{key.name}: organization {body['id']} ({body['name']})")
    report_extra(text="\n".join(lines), name="the organization of each key")


# case -> (method, path, the parameter that names the other organization's object)
ISOLATION = {
    "organization-locations": ("GET", "/organization/{organizationId}/locations", "organizationId"),
    "location-gateways": ("GET", "/location/{locationId}/gateways", "locationId"),
    "location-status": ("GET", "/location/{locationId}/gateways/status", "locationId"),
    "location-battery": ("GET", "/location/{locationId}/gateways/battery", "locationId"),
    "gateway-status": ("GET", "/gateway/{sn}/status", "sn"),
    "gateway-battery": ("GET", "/gateway/{sn}/battery", "sn"),
    "gateway-perf": ("GET", "/gateway/{sn}/perf/{metric}", "sn"),
    "gateway-lan": ("GET", LAN, "sn"),
    "gateway-wan": ("GET", WAN, "sn"),
    "gateway-priority": ("GET", PRIORITY, "sn"),
    "gateway-syslog": ("GET", SYSLOG, "sn"),
    "gateway-syslog-download": ("GET", "/gateway/{sn}/syslog/download", "sn"),
    "command-result": ("GET", "/gateway/{sn}/async-cmd/{commandId}", "commandId"),
    "command-result-on-own-gateway": ("GET", "/gateway/{sn}/async-cmd/{commandId}", "commandId"),
    "priority-written-as-read": ("POST", PRIORITY, "sn"),
    "command-sent": ("POST", "/gateway/{sn}/async-cmd", "sn"),
    "location-created": ("POST", "/organization/{organizationId}/locations", "organizationId"),
    "gateway-registered": ("POST", "/location/{locationId}/gateways", "locationId"),
}


def _preferred(scopes):
    """Unrestricted keys first: a location-restricted one sees less of its own organization."""
    return sorted(scopes, key=lambda s: bool(s.key.locations))


def _absent(device, varying: str, value: str) -> str:
    if varying == "sn":
        return absent_sn(device, value)
    if varying == "commandId":
        return absent_command_id(value)
    return absent_uuid()


@pytest.mark.req("WISDM-ORG-ISOLATION")
@pytest.mark.parametrize("case", list(ISOLATION))
def test_other_organizations_objects_are_out_of_reach(device, case):
    orgs = organizations(device)
    if len(orgs) < 2:
        not_applicable("the target's keys all belong to one organization (GET /v4/organization): give a key of "
                       "another organization to run the isolation checks")
    method, template, varying = ISOLATION[case]
    op = operation(method, template)
    device.require_operation_allowed(op)
    if op.key == "POST /location/{locationId}/gateways":
        device.require_emulator("which gateways can be registered is not told by the API")
    pairs = []
    for mine, theirs in itertools.permutations(orgs, 2):
        observer = next((s for s in _preferred(orgs[mine]) if s.can(*op.access)), None)
        owner = next(iter(_preferred(orgs[theirs])), None)
        if observer is not None and owner is not None:
            pairs.append((observer, owner))
    if not pairs:
        not_applicable(f"no key holds {' and '.join(op.access)} to try {op} on another organization's object")
    for observer, owner in pairs:
        built = build(device, op, owner)
        value = built.note[varying]
        path = built.path
        if case == "command-result-on-own-gateway":  # the other's command id on the observer's own gateway
            own_sn = next((gw["sn"] for _, gw in all_gateways(device, observer)), None)
            if own_sn is None:
                not_applicable(f"the key {observer.name} sees no gateway of its own")
            path = template.format(sn=own_sn, commandId=value)
        absent = _absent(device, varying, value)
        what = (f"{method} {PREFIX}{template} with the key {observer.name} (organization {observer.org_id}) on "
                f"organization {owner.org_id}'s {varying}")
        before = _effect(device, op, owner, built)
        response = send_built(device, op, Built(path, built.params, built.body, built.has_body), key=observer.key)
        if 200 <= response.status_code < 300:  # taken: what it made in the other organization stays
            left_behind(device, op, response, owner, built)
        after = _effect(device, op, owner, built)
        nowhere = send_built(device, op, Built(path.replace(value, absent), built.params, built.body, built.has_body),
                             key=observer.key)
        with requirement("WISDM-ORG-ISOLATION"):
            assert not 200 <= response.status_code < 300, f"{what}: must not be served: {answer(response)}"
            assert before == after, f"{what}: refused or not, the request changed the other organization: {before} -> {after}"
        # That the refusal does not tell the object exists (the status and the body of an id that exists
        # nowhere) is the reading: the page says only "cannot access others".
        device.reading(response.status_code == nowhere.status_code,
                       f"{what}: answered {response.status_code}, but {nowhere.status_code} for a {varying} that exists "
                       f"nowhere: the answer tells that the object exists ({answer(response)} / {answer(nowhere)})")
        device.reading(without(response.text, value) == without(nowhere.text, absent),
                       f"{what}: the answer differs from the one for a {varying} that exists nowhere (the id left out): "
                       f"{answer(response)} / {answer(nowhere)}")


def _effect(device, op, owner, built):
    """What would show the request's effect on the other organization: its setting, its locations, and
    the emulator's counters."""
    if op.method == "GET":
        return None
    found = {"counters": counters(device)}
    if op.key == "POST /gateway/{sn}/network/priority":
        found["setting"] = read_setting(device, op.path, built.note["sn"], owner.key)
    if op.key == "POST /organization/{organizationId}/locations":
        found["locations"] = json_of(call(device, "GET", built.path, key=owner.key))
    return found


@pytest.mark.req("WISDM-KEY-LOCATIONS")
def test_location_restricted_key_reaches_only_its_locations(device):
    """A key limited to some locations ("Optionally limit API use to one or more locations") is served
    on them and refused on the other locations of its organization and their gateways. That the
    organization's listing shows it only its locations, and that the refusal is the one for an id that
    exists nowhere, is the reading."""
    restricted = [key for key in usable_keys(device) if key.locations]
    if not restricted:
        not_applicable("no key of the target is restricted to locations (locations = [...])")
    for key in restricted:
        mine = scope(device, key)
        full = next((s for s in organizations(device).get(mine.org_id, []) if not s.key.locations), None)
        if full is None:
            not_applicable(f"no unrestricted key of the organization of {key.name} shows its other locations")
        listed = {loc["id"] for loc in mine.locations}
        device.reading(listed <= set(key.locations),
                       f"the key {key.name}, restricted to {len(key.locations)} location(s), lists others of its "
                       f"organization: {sorted(listed - set(key.locations))}")
        for loc in [loc for loc in full.locations if loc["id"] in key.locations]:
            response = call(device, "GET", f"/location/{loc['id']}/gateways", key=key)
            assert response.status_code == 200, (
                f"the key {key.name} is restricted to location {loc['id']}: it must be served there: {answer(response)}")
        others = [loc for loc in full.locations if loc["id"] not in key.locations]
        if not others:
            not_applicable(f"the organization of {key.name} has no location outside its restriction")
        for loc in others[:3]:
            what = f"the key {key.name} (restricted to {sorted(key.locations)}) on location {loc['id']}"
            response = call(device, "GET", f"/location/{loc['id']}/gateways", key=key)
            assert not 200 <= response.status_code < 300, f"{what}: must not be served: {answer(response)}"
            absent = absent_uuid()
            nowhere = call(device, "GET", f"/location/{absent}/gateways", key=key)
            device.reading(response.status_code == nowhere.status_code
                           and without(response.text, loc["id"]) == without(nowhere.text, absent),
                           f"{what}: answered unlike a location that exists nowhere: {answer(response)} / {answer(nowhere)}")
            for gw in [gw for lid, gw in all_gateways(device, full) if lid == loc["id"]][:2]:
                response = call(device, "GET", f"/gateway/{gw['sn']}/status", key=key)
                assert not 200 <= response.status_code < 300, (
                    f"the key {key.name} on gateway {gw['sn']} of location {loc['id']} outside its restriction: must not "
                    f"be served: {answer(response)}")
