"""Pagination of the status and battery listings of a location: following `nextToken` from the first page
(a small pageSize, so that there are several pages) visits every gateway exactly once, in pages of at most
pageSize; totalPages is the number of pages seen; the last page has no nextToken ("This field is omitted
if there are no additional pages to fetch"); the union is the location's plain listing (GET
/location/{id}/gateways). How the token is passed back (the query parameter `nextToken`), that a
malformed token or a pageSize outside 1..100 is refused with 400, and that the answer echoes the pageSize
asked for, are this project's readings (the sections have no error table)."""

from __future__ import annotations

import pytest

from conformlab.checks import answer
from conformlab.verdicts import not_applicable, requirement
from suites.wisdm.wisdm import PREFIX, body_of, busiest_location, call, conforms, operation, run_scope

LISTINGS = {"status": "/location/{locationId}/gateways/status", "battery": "/location/{locationId}/gateways/battery"}


def page_size_for(count: int) -> int:
    """Several pages, the last one not full where that can be: 12 gateways -> 5 (5, 5, 2)."""
    return max(1, (count - 1) // 2)


@pytest.mark.req("WISDM-PAGE-ALL", "WISDM-PAGE-SIZE", "WISDM-PAGE-TOTAL", "WISDM-PAGE-TOKEN", "WISDM-ANSWERS")
@pytest.mark.parametrize("listing", list(LISTINGS))
def test_pages_visit_every_gateway_once(device, listing, report_extra):
    of = run_scope(device)
    location, plain = busiest_location(device, of)
    if len(plain) < 2:
        not_applicable(f"the busiest location of the organization has {len(plain)} gateway(s): no second page")
    template = LISTINGS[listing]
    op = operation("GET", template)
    path = template.format(locationId=location)
    size = page_size_for(len(plain))
    seen: list[str] = []
    pages, totals, token = 0, set(), None
    trace = []
    while True:
        params = {"pageSize": size} if token is None else {"pageSize": size, "nextToken": token}
        response = call(device, "GET", path, key=of.key, params=params)
        what = f"GET {PREFIX}{path} page {pages + 1} (pageSize {size})"
        with requirement("WISDM-PAGE-TOKEN" if token is not None else "WISDM-PAGE-ALL"):
            body = body_of(device, response, what)
        conforms(device, op, response)
        pages += 1
        batch = [gw.get("sn") for gw in body.get("gateways") or [] if isinstance(gw, dict)]
        trace.append(f"page {pages}: {len(batch)} gateways, totalPages {body.get('totalPages')}, "
                     f"nextToken {'yes' if 'nextToken' in body else 'no'}")
        with requirement("WISDM-PAGE-SIZE"):
            assert len(batch) <= size, f"{what}: {len(batch)} gateways on a page of at most {size}"
        device.reading(body.get("pageSize") == size, f"{what}: pageSize {body.get('pageSize')!r}, asked for {size}")
        totals.add(body.get("totalPages"))
        if pages == 2 and batch and batch == seen[:len(batch)]:
            device.reading(False, f"{what}: the first page came again for the nextToken passed back as the query "
                                  "parameter `nextToken` (how the token is passed back is not documented)")
            not_applicable("the cloud does not take nextToken passed back as the query parameter `nextToken`")
        seen += batch
        token = body.get("nextToken")
        if "nextToken" not in body:
            break
        with requirement("WISDM-PAGE-TOKEN"):
            assert isinstance(token, str) and token, f"{what}: nextToken must be a token (a string): {token!r}"
            assert pages <= len(plain) + 1, f"{what}: more pages than gateways; the tokens never end"
    report_extra(text="\n".join(trace), name=f"pages of the {listing} listing")
    doubles = sorted({sn for sn in seen if seen.count(sn) > 1})
    with requirement("WISDM-PAGE-ALL"):
        assert not doubles, f"following nextToken showed these gateways more than once: {doubles}"
        missing = sorted({gw["sn"] for gw in plain} - set(seen))
        extra = sorted(set(seen) - {gw["sn"] for gw in plain})
        assert not missing and not extra, (
            f"the pages must hold the location's gateways (GET {PREFIX}/location/{{id}}/gateways): missing {missing}, "
            f"not in the location {extra}")
    with requirement("WISDM-PAGE-TOKEN"):
        assert batch, f"the last page (no nextToken) is empty: the page before it must have been the last one ({trace})"
    with requirement("WISDM-PAGE-TOTAL"):
        assert totals == {pages}, f"totalPages must be the number of pages: {pages} pages seen, totalPages {sorted(totals, key=str)}"


@pytest.mark.req("WISDM-PAGE-TOKEN")
@pytest.mark.parametrize("listing", list(LISTINGS))
@pytest.mark.parametrize("token", ["conformlab-not-a-token", "eyJwYWdlIjo5OTk5fQ=="], ids=["malformed", "past-the-end"])
def test_page_token_that_names_no_page_refused(device, listing, token):
    """A token the cloud did not hand out (malformed, or naming a page past the last): refused, not
    answered with some page (400 "Invalid parameters" by the reading)."""
    of = run_scope(device)
    location, _ = busiest_location(device, of)
    path = LISTINGS[listing].format(locationId=location)
    response = call(device, "GET", path, key=of.key, params={"pageSize": 5, "nextToken": token})
    device.reading(response.status_code == 400, f"GET {PREFIX}{path} with a nextToken it never handed out: "
                                                f"{answer(response)}; the reading expects 400")


@pytest.mark.req("WISDM-PAGE-SIZE")
@pytest.mark.parametrize("size", [0, 101, "five"], ids=["0", "101", "not-a-number"])
def test_page_size_out_of_range_refused(device, size):
    of = run_scope(device)
    location, _ = busiest_location(device, of)
    path = LISTINGS["status"].format(locationId=location)
    response = call(device, "GET", path, key=of.key, params={"pageSize": size})
    device.reading(response.status_code == 400, f"GET {PREFIX}{path}?pageSize={size}: {answer(response)}; the reading "
                                                "expects 400 (pageSize 1 to 100)")
