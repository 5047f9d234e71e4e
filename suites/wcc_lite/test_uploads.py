"""Firmware upgrade and configuration upload: destructive (a gateway that wrongly accepts a file
flashes or reconfigures itself), so they run only where the target allows it. Refusals carry the
document's messages; a valid image starts the upgrade only on an emulator.

A started upgrade restarts the gateway (schemas/wcc-lite.yaml marks /sysupgrade `restarts`): the
client waits until it has gone down and come back, so no check here waits on its own.

The page gives the three messages, not the statuses, and not which failure a missing image is: a
refusal must carry one of the two failure messages (never "Upgrade started"); the exact one for a
missing image and for a file that is no image is this project's reading."""

from __future__ import annotations

import pytest

from conformlab.checks import answer
from conformlab.verdicts import requirement
from suites.wcc_lite.wcc import NOT_AN_IMAGE, SCHEMA, call, require_enabled, served

UPGRADE = SCHEMA.operation("POST", "/sysupgrade")
SYNC = SCHEMA.operation("POST", "/sync")
STARTED = "Upgrade started"
FAILURES = ("Failed to begin upgrade", "Failed to validate image")


def message(response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("message") if isinstance(body, dict) else None


VALID_IMAGE = "<a valid image>"  # built when the check runs (the emulator's format)
UPGRADE_CASES = [
    pytest.param({"file": NOT_AN_IMAGE}, "Failed to validate image", id="bad-image", marks=pytest.mark.destructive(
        "uploads a file to the firmware upgrade; a gateway that took it would flash itself")),
    pytest.param({}, "Failed to begin upgrade", id="no-image", marks=pytest.mark.destructive(
        "calls the firmware upgrade without an image")),
    pytest.param({"file": VALID_IMAGE}, STARTED, id="valid-image", marks=pytest.mark.emulator_only(
        "flashes a (fake) valid image: never on hardware")),
]


# The document gives the messages, not the statuses: only the message is checked.
@pytest.mark.req("WCC-UPGRADE", "WCC-MULTIPART")
@pytest.mark.parametrize("fields, expected", UPGRADE_CASES)
def test_upgrade_answers_the_documented_message(device, fields, expected):
    require_enabled(device, UPGRADE)
    if fields.get("file") == VALID_IMAGE:
        from conformlab.emulators.wcc_lite import build_image

        restarts = device.control("counters")["restarts"]
        response = call(device, UPGRADE, {"file": ("wcc-lite.sysupgrade", build_image())})
        with requirement("WCC-MULTIPART"):  # the image went as the multipart part "file"
            assert message(response) == STARTED, f'a valid image sent as multipart "file" must start the upgrade ("{STARTED}"): {answer(response)}'
        # The client has waited out the restart; the gateway booted again.
        assert device.control("counters")["restarts"] == restarts + 1, "the started upgrade must restart the gateway"
        return
    response = call(device, UPGRADE, fields)
    got = message(response)
    assert got in FAILURES, f"the upgrade must be refused with one of the page's failure messages {FAILURES}: {answer(response)}"
    device.reading(got == expected, f'the upgrade answered "{got}"; the reading expects "{expected}" for this case '
                                    "(the page does not say which failure a missing image or a file that is no image is)")


@pytest.mark.req("WCC-SYNC", "WCC-MULTIPART")
@pytest.mark.emulator_only("uploads a protocol hub configuration: it would reconfigure a real gateway")
def test_configuration_upload_returns_excel_utility_output(device):
    from conformlab.emulators.wcc_lite import build_workbook

    require_enabled(device, SYNC)
    response = call(device, SYNC, {"file": ("conformlab.xlsx", build_workbook())})
    with requirement("WCC-MULTIPART"):  # the workbook went as the multipart part "file"
        served(device, response, 'a configuration workbook sent as multipart "file" must be taken')
    assert response.text.strip(), f"the upload returns excel-utility's output: {answer(response)}"
