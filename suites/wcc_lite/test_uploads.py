"""Firmware upgrade and configuration upload: destructive (a gateway that wrongly accepts a file
flashes or reconfigures itself), so they run only where the target allows it. Refusals carry the
document's messages; a valid image starts the upgrade only on an emulator."""

from __future__ import annotations

import pytest

from conformlab.checks import answer
from suites.wcc_lite.wcc import NOT_AN_IMAGE, SCHEMA, call, require_enabled

UPGRADE = SCHEMA.operation("POST", "/sysupgrade")
SYNC = SCHEMA.operation("POST", "/sync")


def message(response) -> str | None:
    try:
        return response.json().get("message")
    except ValueError:
        return None


VALID_IMAGE = "<a valid image>"  # built when the check runs (the emulator's format)
UPGRADE_CASES = [
    pytest.param({"file": NOT_AN_IMAGE}, "Failed to validate image", id="bad-image", marks=pytest.mark.destructive(
        "uploads a file to the firmware upgrade; a gateway that took it would flash itself")),
    pytest.param({}, "Failed to begin upgrade", id="no-image", marks=pytest.mark.destructive(
        "calls the firmware upgrade without an image")),
    pytest.param({"file": VALID_IMAGE}, "Upgrade started", id="valid-image", marks=pytest.mark.emulator_only(
        "flashes a (fake) valid image: never on hardware")),
]


# The document gives the messages, not the statuses: only the message is checked.
@pytest.mark.req("WCC-UPGRADE", "WCC-MULTIPART")
@pytest.mark.parametrize("fields, expected", UPGRADE_CASES)
def test_upgrade_answers_the_documented_message(device, fields, expected):
    require_enabled(device, UPGRADE)
    if fields.get("file") == VALID_IMAGE:
        from conformlab.emulators.wcc_lite import build_image

        fields = {"file": ("wcc-lite.sysupgrade", build_image())}
    response = call(device, UPGRADE, fields)
    assert message(response) == expected, f'the upgrade must answer "{expected}": {answer(response)}'


@pytest.mark.req("WCC-SYNC", "WCC-MULTIPART")
@pytest.mark.emulator_only("uploads a protocol hub configuration: it would reconfigure a real gateway")
def test_configuration_upload_returns_excel_utility_output(device):
    from conformlab.emulators.wcc_lite import build_workbook

    require_enabled(device, SYNC)
    response = call(device, SYNC, {"file": ("conformlab.xlsx", build_workbook())})
    assert response.status_code == 200 and response.text.strip(), f"a configuration workbook sent as multipart \"file\" must be taken and answered with excel-utility's output: {answer(response)}"
