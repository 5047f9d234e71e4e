"""Locations: the listing (`total` is the number of locations), creation (the documented answer, the new
location listed afterwards), the field rules (400) and an existing name (409).

A location cannot be deleted through the API: every creation is destructive (only with destructive =
true), named "conformlab-<run time>-..." and reported as left behind. A request the cloud must refuse
would create one if it were taken, so it is destructive too. That a creation answers 201 is this
project's reading (the section shows the answer, not its status; "201 Created" is said of registration)."""

from __future__ import annotations

import pytest

from conformlab.checks import answer
from conformlab.verdicts import requirement
from suites.wisdm.wisdm import (
    PREFIX, absent_uuid, body_of, call, conforms, created_location, json_of, location_body, location_creation_served,
    location_name, operation,
    organizations, run_scope, writer,
)

LISTING = operation("GET", "/organization/{organizationId}/locations")
CREATE = operation("POST", "/organization/{organizationId}/locations")
CREATOR = ("write", "WRITE_ADD_LOCATION_TO_ORGANIZATION")


def listing(device, org: str, key=None) -> dict:
    response = call(device, "GET", f"/organization/{org}/locations", key=key)
    with requirement("WISDM-LOC-LIST"):
        body = body_of(device, response, f"GET {PREFIX}/organization/{{id}}/locations")
    conforms(device, LISTING, response)
    return body


def create(device, body: dict, org: str | None = None, key=None):
    """POST a location (the request is recorded as left behind if the cloud created it)."""
    org = org or run_scope(device).org_id
    key = key or writer(device, *CREATOR)
    response = call(device, "POST", f"/organization/{org}/locations", key=key, json=body)
    if 200 <= response.status_code < 300:
        created_location(device, response, org)
    return response


@pytest.mark.req("WISDM-LOC-LIST", "WISDM-ANSWERS")
def test_location_listing_total_matches(device):
    """Each key's listing of its organization: every location with an id and a name, `total` the number
    of locations listed ("total | integer | Total number of locations")."""
    for scopes in organizations(device).values():
        each = sorted(scopes, key=lambda s: bool(s.key.locations))[0]  # an unrestricted key sees them all
        body = listing(device, each.org_id, each.key)
        locations = body.get("locations")
        assert isinstance(locations, list), f"the listing must hold `locations`: {body}"
        for loc in locations:
            assert isinstance(loc, dict) and isinstance(loc.get("id"), str) and isinstance(loc.get("name"), str), (
                f"each location is listed with its id and name: {loc}")
        assert body.get("total") == len(locations), (
            f"`total` is the total number of locations: {body.get('total')!r}, but {len(locations)} are listed")
        ids = [loc["id"] for loc in locations]
        assert len(ids) == len(set(ids)), f"a location is listed twice: {ids}"


@pytest.mark.destructive("creates a location, which the API cannot delete")
@pytest.mark.req("WISDM-LOC-CREATE", "WISDM-LOC-LIST", "WISDM-ANSWERS")
def test_location_created_and_listed(device):
    org = run_scope(device).org_id
    name = location_name("created")
    response = create(device, location_body(name), org)
    with requirement("WISDM-LOC-CREATE"):
        judged = location_creation_served(device, response, "a valid location must be created")
        body = json_of(response)
        assert isinstance(body, dict), f"the creation answers the created location: {answer(response)}"
        assert isinstance(body.get("locationId"), str) and body["locationId"], f"locationId of the new location: {body}"
        assert body.get("organizationId") == org, f"organizationId must be the key's organization {org}: {body}"
        assert body.get("name") == name, f"name must be the name sent ({name!r}): {body}"
        assert body.get("workMode") == "Basics station", f'workMode applied must be "Basics station": {body}'
    conforms(device, CREATE, judged)
    listed = listing(device, org).get("locations") or []
    with requirement("WISDM-LOC-LIST"):
        assert {"id": body["locationId"], "name": name} in [{"id": loc.get("id"), "name": loc.get("name")} for loc in listed], (
            f"the new location {body['locationId']} ({name!r}) must be listed afterwards: {listed}")


# case -> the changes to a valid creation that break a documented field rule
FIELD_RULES = {
    "name-3-characters": {"name": "cfl"},
    "name-51-characters": {"name": None},  # made when the check runs: a fresh conformlab name, 51 characters
    "workMode-packet-forwarder": {"workMode": "Packet forwarder"},
    "channelsNumber-12": {"channelsNumber": 12},
    "serverType-unknown": {"basicStation.serverType": "MQTT"},
    "serverPort-0": {"basicStation.serverPort": 0},
    "serverPort-65536": {"basicStation.serverPort": 65536},
    "authenticationMode-unknown": {"basicStation.authenticationMode": "Password"},
    # "clientCertificate / clientKey | PEM client certificate / private key (required for shared TLS client auth)"
    "shared-tls-client-auth-without-client-key": {"basicStation.authenticationMode": "TLS Server and Client Authentication",
                                                  "basicStation.useIndividualKeys": False},
}


@pytest.mark.destructive("a location the cloud took by mistake cannot be deleted")
@pytest.mark.req("WISDM-LOC-FIELDS", "WISDM-ANSWERS")
@pytest.mark.parametrize("case", list(FIELD_RULES))
def test_location_field_rules_refused_400(device, case):
    changes = dict(FIELD_RULES[case])
    if case == "name-51-characters":
        base = location_name("long")
        changes["name"] = (base + "-" * 51)[:51]
    name = changes.pop("name", location_name(case[:20]))
    org = run_scope(device).org_id
    response = create(device, location_body(name, **changes), org)
    assert response.status_code == 400, f"{case}: the field rule must refuse the location with 400: {answer(response)}"
    conforms(device, CREATE, response)


@pytest.mark.destructive("creates a location, which the API cannot delete")
@pytest.mark.req("WISDM-LOC-CONFLICT", "WISDM-LOC-CREATE")
def test_existing_location_name_refused_409(device):
    org = run_scope(device).org_id
    name = location_name("twice")
    first = create(device, location_body(name), org)
    with requirement("WISDM-LOC-CREATE"):
        assert 200 <= first.status_code < 300, f"a valid location must be created: {answer(first)}"
    before = len(listing(device, org).get("locations") or [])
    second = create(device, location_body(name), org)
    assert second.status_code == 409, f"a second location named {name!r} in the organization must get 409: {answer(second)}"
    after = len(listing(device, org).get("locations") or [])
    assert after == before, f"the refused location was created anyway: {before} locations before, {after} after"


@pytest.mark.destructive("a location the cloud took by mistake cannot be deleted")
@pytest.mark.req("WISDM-LOC-CREATE", "WISDM-ANSWERS")
def test_location_in_unknown_organization_refused_404(device):
    """ "404 | Organization not found": an organization id that exists nowhere."""
    org = absent_uuid()
    response = create(device, location_body(location_name("nowhere")), org)
    with requirement("WISDM-LOC-CREATE"):
        assert response.status_code == 404, f"an organization that does not exist: expected 404, got {answer(response)}"
    conforms(device, CREATE, response)

