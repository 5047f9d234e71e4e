"""History queries and their documented parameters: the latest reading, 15-minute data of one day
(highRes?date=), daily values (lowRes?start=&days=, days 1-31) and the answers without data.

Days are chosen relative to today (UTC). A device keeps local days, so the time checks allow any
time zone (+-14 h) rather than assume UTC; an answer with no data (204) for a recent day skips the
shape checks with that reason (a device installed today has no history yet)."""

from __future__ import annotations

import datetime as dt

import pytest

from conformlab.checks import answer
from conformlab.client import expect_json
from suites.wattwaechter.ww import SCHEMA, not_verified, requirement, utc_day

QUARTER = 900  # seconds
MAX_QUARTERS = 100  # a day with the autumn DST change has 25 hours
ZONE_SLACK = 14 * 3600  # the device's local day may start up to 14 h before or after UTC midnight


def day_epoch(day: str) -> int:
    return int(dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc).timestamp())


def history(device, path: str, **params):
    """The answer's JSON, or None without data: 204, or 400 from older firmware (NOTES)."""
    response = device.client.get(path, params=params)
    if response.status_code == 204 or (response.status_code == 400 and path != "/history/latest"):
        return None
    problems = device.check_answer(SCHEMA.operation("GET", path), response)
    assert not problems, "; ".join(problems)
    return expect_json(response)


def item_values(device, data: dict, key: str, what: str) -> list | None:
    """`key` of every item of a history answer. NOTES.md shows {"start": ..., "items": [...]} but no
    item's fields: that items carry `key` is the vendor client's model, this project's reading
    (None, after a notice, where they do not)."""
    items = data.get("items", [])
    assert isinstance(items, list), f"`items` must be a list (NOTES.md), got {type(items).__name__}"
    values = [item.get(key) if isinstance(item, dict) else None for item in items]
    if not device.reading(all(v is not None for v in values), f"{what}: an item without `{key}`"):
        return None
    return values


@pytest.mark.req("WW-HISTORY-HIGHRES")
def test_high_res_is_quarter_hours_of_the_day_asked_for(device):
    day = utc_day(1)
    data = history(device, "/history/highRes", date=day)
    if data is None:
        not_verified(f"no 15-minute data for {day} (204, or 400 from older firmware)")
    assert data.get("items"), f"a 200 answer for {day} must list its quarter hours (204 when there is no data)"
    stamps = item_values(device, data, "timestamp", f"highRes?date={day}")
    if stamps is None:
        not_verified("the items carry no `timestamp`: their times cannot be judged")
    assert len(stamps) <= MAX_QUARTERS, f"one day has at most {MAX_QUARTERS} quarter hours, got {len(stamps)}"
    steps = {b - a for a, b in zip(stamps, stamps[1:])}
    assert all(step > 0 and step % QUARTER == 0 for step in steps), f"items must be 15 minutes apart, in order; steps {sorted(steps)[:5]} s"
    start = day_epoch(day)
    assert start - ZONE_SLACK <= stamps[0] and stamps[-1] < start + 86400 + ZONE_SLACK, (
        f"the items of {day} must lie in that day: {stamps[0]} .. {stamps[-1]}")
    assert stamps[-1] - stamps[0] < 25 * 3600, "the items of one day span less than 25 hours"


@pytest.mark.req("WW-HISTORY-LOWRES")
@pytest.mark.parametrize("days", [1, 7, 31])
def test_low_res_is_one_value_per_day_of_the_range(device, days):
    start = utc_day(days + 3)  # the whole range lies in the past
    data = history(device, "/history/lowRes", start=start, days=days)
    if data is None:
        not_verified(f"no daily values from {start} for {days} days (204, or 400 from older firmware)")
    dates = item_values(device, data, "date", f"lowRes?start={start}&days={days}")
    items = data.get("items", [])
    assert len(items) <= days, f"days={days} asks for at most {days} daily values, got {len(items)}"
    if dates is None:
        not_verified("the items carry no `date`: which days they are cannot be judged")
    dates = [str(date)[:10] for date in dates]
    last = (dt.date.fromisoformat(start) + dt.timedelta(days=days - 1)).isoformat()
    assert len(dates) <= days, f"days={days} asks for at most {days} daily values, got {len(dates)}"
    assert len(set(dates)) == len(dates), f"one value per day: {dates}"
    outside = [d for d in dates if not start <= d <= last]
    assert not outside, f"start={start}&days={days} covers {start} .. {last}; the answer also has {outside}"


# NOTES: "days is 1-31": never more than 31 daily values (documented). What the device answers outside
# that range is not documented. Reading: a refusal (4xx) or "no data" (204); a device that clamps
# days into 1-31 and serves data is a NOTICE.
@pytest.mark.req("WW-HISTORY-LOWRES")
@pytest.mark.parametrize("days", ["0", "32", "-1", "seven"])
def test_low_res_days_outside_1_to_31_not_served(device, days):
    response = device.client.get("/history/lowRes", params={"start": utc_day(40), "days": days})
    if 400 <= response.status_code < 500 or response.status_code == 204:
        return
    if not device.reading(response.status_code == 200, f"days={days} is outside 1-31, answered {answer(response)}; the "
                                                        "reading expects a refusal (4xx) or no data (204)"):
        return
    items = expect_json(response).get("items", [])
    assert len(items) <= 31, f"days is 1-31, but days={days} was answered with {len(items)} daily values"
    device.reading(False, f"days={days} (outside 1-31) was served with {len(items)} daily values; the reading "
                          "expects a refusal (4xx) or no data (204)")


# The document writes the day as YYYY-MM-DD; what a device does with a day that is no calendar date
# (2025-13-01, 2025-02-30) or no date at all it does not say. Reading: refused (4xx) or no data
# (204); anything else (data after a mktime() roll-over, a 5xx) is a NOTICE: no sentence covers it.
# A missing parameter is not probed: the document does not say the device may not default it.
@pytest.mark.req("WW-HISTORY-HIGHRES", "WW-HISTORY-LOWRES")
@pytest.mark.parametrize("path, params", [
    ("/history/highRes", {"date": "2025-13-01"}),
    ("/history/highRes", {"date": "yesterday"}),
    ("/history/lowRes", {"start": "2025-02-30", "days": "7"}),
], ids=["highRes-month-13", "highRes-word", "lowRes-february-30"])
def test_history_of_a_malformed_day_not_served(device, path, params):
    with requirement("WW-HISTORY-LOWRES") if path.endswith("lowRes") else requirement("WW-HISTORY-HIGHRES"):
        response = device.client.get(path, params=params)
        device.reading(400 <= response.status_code < 500 or response.status_code == 204,
                       f"{params} is not a real YYYY-MM-DD date, answered {response.status_code}; the reading "
                       "expects a refusal (4xx) or no data (204)")


@pytest.mark.req("WW-HISTORY-NO-DATA")
@pytest.mark.parametrize("path, params", [
    ("/history/highRes", {"date": "2001-01-01"}),
    ("/history/lowRes", {"start": "2001-01-01", "days": "7"}),
], ids=["highRes", "lowRes"])
def test_days_without_data_answer_204(device, path, params):
    response = device.client.get(path, params=params)
    # NOTES.md: "204 (older firmware: 400)", with no version that separates them: a 400 cannot be judged.
    if response.status_code == 400:
        device.firmware_rule("older firmware's 400 (NOTES.md names no version that separates it from 204: not judged)")
        not_verified("400 for a day without data: documented for older firmware (NOTES), 204 on current firmware")
    device.firmware_rule("current firmware's 204 for a day without data (NOTES.md)")
    assert response.status_code == 204, f"a day long before the device's first reading has no data: expected 204: {answer(response)}"
    assert not response.content, f"204 carries no body: {answer(response)}"


@pytest.mark.req("WW-HISTORY-LATEST")
def test_latest_reading_has_obis_values(device):
    data = history(device, "/history/latest")
    if data is None:
        not_verified("no reading yet (204)")
    obis = {key: value for key, value in data.items() if key not in ("timestamp", "datetime", "gw")}
    assert obis, "the latest reading must carry OBIS values"
    assert isinstance(data.get("timestamp"), int), "the latest reading must carry its Unix timestamp"


@pytest.mark.req("WW-HISTORY-LATEST")
@pytest.mark.emulator_only("empties the emulated meter's reading")
def test_latest_is_204_without_a_reading(device):
    device.control("latest", {"clear": True})
    try:
        response = device.client.get("/history/latest")
    finally:
        device.control("latest", {"clear": False})
    assert response.status_code == 204, f"without a reading yet the latest reading answers 204: {answer(response)}"
    assert not response.content, f"204 carries no body: {answer(response)}"
