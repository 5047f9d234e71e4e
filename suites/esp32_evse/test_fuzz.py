"""Property-based testing of the schema against the device, with schemathesis's conformance checks.

One pytest item per operation (visible in the HTML report and JUnit), bounded in examples. Generated
requests go through the target's client (auth, timeouts, transcript). On real hardware only reads are
fuzzed unless the target allows destructive steps: random *valid* writes would apply random
configuration (a charging current, a schedule) to a charger on the bench; destructive operations
(Wi-Fi, access point, firmware, restart) are never fuzzed on hardware. Whatever a fuzzed write changes
is put back afterwards. /credentials is never fuzzed: it would re-key the device.
"""

from __future__ import annotations

import pytest
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi import checks as openapi_checks

from conformlab.fuzz import load, require_fuzzable, run_generated
from suites.esp32_evse.evse import OPS, SCHEMA, restoring

EXAMPLES_PER_MODE = 12
API = load(SCHEMA)
# Operations that restart the device take no input to generate (POST /restart, /firmware/update) or
# only a firmware image; their answers are checked by the auth matrix and the lifecycle checks.
FUZZED = [op for op in OPS if op.fuzz and op.path != "/credentials" and not op.restarts]
# not_a_server_error is left out: 520-532 are documented answers of the firmware and Nextion
# operations. status_code_conformance flags every 5xx an operation does not document (500 included).
CHECKS = [
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
]


# Invalid requests only for JSON bodies: the document's 400 reasons (malformed JSON, wrong type,
# out of range, no recognised field) are about bodies; it promises nothing for a bad query parameter.
CASES = [pytest.param(op, mode, id=f"{op}-{label}")
         for op in FUZZED
         for mode, label in ((GenerationMode.POSITIVE, "valid"), (GenerationMode.NEGATIVE, "invalid"))
         if mode is GenerationMode.POSITIVE or op.body_kind == "json"]


# Request constraints that are only this project's reading (the request schemas carry no reading
# marks): negative values of the session limits ("0 = none" gives no lower bound), weekday masks left
# out of a schedule entry (the document's example shows all seven), the Wi-Fi fields' types (shown
# only in an example). A device may accept such "invalid" data: on any target but the bundled
# emulators in their default reading, their refusal is not demanded (negative_data_rejection).
READING_REQUESTS = {"/state", "/state/consumption-limit", "/state/charging-time-limit", "/state/under-power-limit",
                    "/config/scheduler", "/config/wifi"}


@pytest.mark.req("EVSE-CONV-STATUS", "EVSE-ANSWER-SHAPES")
@pytest.mark.parametrize("op, mode", CASES)
def test_generated_requests_get_documented_answers(device, op, mode):
    require_fuzzable(device, op)
    rejects = mode is GenerationMode.NEGATIVE and (device.enforces_readings or op.path not in READING_REQUESTS)
    checks = CHECKS + ([openapi_checks.negative_data_rejection] if rejects else [])
    with restoring(device, op):
        run_generated(device, API, op, mode, checks, EXAMPLES_PER_MODE)
