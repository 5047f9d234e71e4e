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


@pytest.mark.req("WCC-UPGRADE")
@pytest.mark.destructive("uploads a file to the firmware upgrade; a gateway that took it would flash itself")
def test_bad_image_refused_with_the_documented_message(device):
    require_enabled(device, UPGRADE)
    response = call(device, UPGRADE, {"file": NOT_AN_IMAGE})
    assert message(response) == "Failed to validate image", f'a bad image must answer "Failed to validate image": {answer(response)}'
    # The document gives the message, not the status: the status is not checked.


@pytest.mark.req("WCC-UPGRADE", "WCC-MULTIPART")
@pytest.mark.destructive("calls the firmware upgrade without an image")
def test_upgrade_without_an_image_fails_to_begin(device):
    require_enabled(device, UPGRADE)
    response = call(device, UPGRADE, {})
    assert message(response) == "Failed to begin upgrade", f'an upgrade without a file must answer "Failed to begin upgrade": {answer(response)}'


@pytest.mark.req("WCC-UPGRADE", "WCC-MULTIPART")
@pytest.mark.emulator_only("flashes a (fake) valid image: never on hardware")
def test_valid_image_starts_the_upgrade(device):
    from conformlab.emulators.wcc_lite import build_image

    require_enabled(device, UPGRADE)
    response = call(device, UPGRADE, {"file": ("wcc-lite.sysupgrade", build_image())})
    assert message(response) == "Upgrade started", f'a valid image sent as multipart "file" must start the upgrade: {answer(response)}'


@pytest.mark.req("WCC-SYNC", "WCC-MULTIPART")
@pytest.mark.emulator_only("uploads a protocol hub configuration: it would reconfigure a real gateway")
def test_configuration_upload_returns_excel_utility_output(device):
    from conformlab.emulators.wcc_lite import build_workbook

    require_enabled(device, SYNC)
    response = call(device, SYNC, {"file": ("conformlab.xlsx", build_workbook())})
    assert response.status_code == 200 and response.text.strip(), f"a configuration workbook sent as multipart \"file\" must be taken and answered with excel-utility's output: {answer(response)}"
