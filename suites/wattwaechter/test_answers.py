"""Every read's answer against schemas/wattwaechter.yaml, the health check, and schemathesis's
property-based requests within the device's budget.

Fuzzing spends the device's budget like any other check (its requests go through the target's paced
session), so the number of generated requests per operation is small and fixed. On real hardware only
reads are fuzzed unless the target allows destructive steps, and destructive operations never are;
POST /settings and the token operations are never fuzzed (x-conformlab fuzz: false: a random valid
body could switch authentication on or re-key the device).
"""

from __future__ import annotations

import pytest
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi import checks as openapi_checks

from conformlab.checks import answer, ids
from conformlab.client import expect_json
from conformlab.fuzz import load, require_fuzzable, run_generated
from suites.wattwaechter.ww import (
    OPS, READS, SCHEMA, not_verified, read_params, requirement, restoring, served_statuses,
)


@pytest.mark.req("WW-ANSWER-SHAPES")
@pytest.mark.parametrize("op", READS, ids=ids(READS))
def test_read_answer_matches_the_documented_shape(device, op):
    response = device.client.get(op.path, params=read_params(op))
    # The endpoint is in the document's tables and the request carries the target's token: it is
    # served. Which statuses besides 200 it may answer (204 without data, 404 without a log file) the
    # page does not say: the schema's list is this project's reading.
    assert response.status_code not in (401, 403) and response.status_code < 500, (
        f"a documented read with the target's token must be served: {answer(response)}")
    if not device.reading(response.status_code in served_statuses(op),
                          f"{op} answered {response.status_code}, not one of {sorted(served_statuses(op))}"):
        not_verified(f"{op}: answered {response.status_code}, a status the schema does not describe; its shape is unverified")
    problems = device.check_answer(op, response)
    assert not problems, "; ".join(problems)
    if response.status_code != 200:
        not_verified(f"{op}: answered {response.status_code} (no data); the shape of its data is unverified")


@pytest.mark.req("WW-ALIVE", "WW-AUTH-OPEN-ENDPOINTS")
def test_health_check_answers_alive_without_a_token(device):
    response = device.client.get("/system/alive", auth=None)
    with requirement("WW-AUTH-OPEN-ENDPOINTS"):
        assert response.status_code == 200, f"the health check (Auth \"—\") must answer without a token: {answer(response)}"
    body = expect_json(response)
    assert body.get("alive") is True, f"the health check must answer alive: true, got {body!r}"
    assert isinstance(body.get("version"), str) and body["version"], f"the health check must name the firmware version, got {body!r}"


EXAMPLES = 4  # per operation: ~70 requests per target, under 30 s of the device's budget
API = load(SCHEMA)
FUZZED = [op for op in OPS if op.fuzz]
CHECKS = [
    openapi_checks.status_code_conformance,  # 500 is never declared: any 500 fails
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,  # Retry-After on 429/503
    openapi_checks.response_schema_conformance,
]


@pytest.mark.req("WW-ANSWER-SHAPES")
@pytest.mark.parametrize("op", FUZZED, ids=ids(FUZZED))
def test_generated_requests_get_documented_answers(device, op):
    require_fuzzable(device, op)
    with restoring(device, op):
        run_generated(device, API, op, GenerationMode.POSITIVE, CHECKS, EXAMPLES)
