"""Property-based requests from a device schema (schemathesis), sent through the target's client.

One place for the policy every device shares: on real hardware only reads are fuzzed unless the
target allows destructive steps, and destructive operations never are (random values could not be
undone); requests go through the target's session (auth, pacing, transcript); the number of examples
is fixed and the generation derandomized, so a run is bounded and repeatable.
"""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis.generation import GenerationMode

from conformlab.dut import DeviceUnderTest
from conformlab.schema import DeviceSchema, Operation


def load(schema: DeviceSchema):
    """The schemathesis view of a device schema (an explicit Config: no stray schemathesis.toml)."""
    return schemathesis.openapi.from_path(str(schema.path), config=schemathesis.Config())


def require_fuzzable(device: DeviceUnderTest, op: Operation) -> None:
    if op.is_write and not device.target.emulator and not device.target.destructive:
        pytest.skip("real hardware: writes are fuzzed only with destructive = true")
    if op.destructive and not device.target.emulator:
        pytest.skip(f"real hardware: {op} is never fuzzed ({op.destructive}); random values could not be undone")
    device.require_operation_allowed(op)


def run_generated(device: DeviceUnderTest, api, op: Operation, mode: GenerationMode, checks, examples: int) -> None:
    """Send `examples` generated requests of `op` and validate each answer with `checks`."""
    operation = api[op.path][op.method]

    @hypothesis.settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                         phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def call(case):
        response = case.call(base_url=device.client.base_url, session=device.client.session)
        case.validate_response(response, checks=checks)

    try:
        call()
    except hypothesis.errors.Unsatisfiable:
        pytest.skip(f"schemathesis can generate no {mode.value} request for {op}")
