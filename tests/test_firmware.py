"""conformlab.firmware: the versions and build dates the firmware-dependent rules are judged by."""

from __future__ import annotations

import datetime

import pytest

from conformlab.firmware import UNKNOWN, Firmware, FirmwareReport, build_date, declared, from_answer, version_numbers


@pytest.mark.parametrize("text, numbers", [("v1.1.0", (1, 1, 0)), ("1.8.0-rtu", (1, 8, 0)), (46, (46,)),
                                           ("WCC Lite 1.7.4", (1, 7, 4)), ("beta", ()), (None, ())])
def test_version_numbers(text, numbers):
    assert version_numbers(text) == numbers


@pytest.mark.parametrize("have, wanted, expected", [("1.8.0", "1.8", True), ("1.8", "1.8.0", True), ("1.7.9", "1.8", False),
                                                    ("1.10", "1.8", True), ("v2", "1.8", True), ("nightly", "1.8", None)])
def test_at_least_compares_numbers_not_text(have, wanted, expected):
    assert declared(have).at_least(wanted) is expected
    assert UNKNOWN.at_least(wanted) is None


@pytest.mark.parametrize("text, day", [("Feb 21 2025", datetime.date(2025, 2, 21)), ("Sep  2 2026", datetime.date(2026, 9, 2)),
                                       ("2025-01-01T00:00:00", datetime.date(2025, 1, 1)), ("yesterday", None), (20250101, None)])
def test_build_dates_in_the_forms_devices_report(text, day):
    assert build_date(text) == day


def test_from_answer_says_where_it_was_read():
    report = FirmwareReport("/info", "appVersion", date="appDate")
    found = from_answer(report, {"appVersion": "v1.1.0", "appDate": "Feb 21 2025"}, "GET /api/v1/info")
    assert found == Firmware("v1.1.0", datetime.date(2025, 2, 21), found.source)
    assert "GET /api/v1/info" in found.source and found.built_on_or_after(datetime.date(2026, 8, 1)) is False
    assert "built 2025-02-21" in found.describe()
    assert from_answer(report, {"chip": "esp32"}, "x") is None and from_answer(report, None, "x") is None
    assert "not known" in UNKNOWN.describe()
