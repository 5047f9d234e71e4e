"""Property-based requests from a device schema (schemathesis), sent through the target's client.

One place for the policy every device shares: on real hardware only reads are fuzzed unless the
target allows destructive steps, and destructive operations never are (random values could not be
undone); requests go through the target's session (auth, pacing, Retry-After, transcript, and the
bounded transport: the target's timeout for the whole exchange, the answer size limit, no redirect
followed); the number of examples is fixed and the generation derandomized, so a run is bounded and
repeatable.
"""

from __future__ import annotations

import functools

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis.generation import GenerationMode

from conformlab.dut import DeviceUnderTest
from conformlab.schema import DeviceSchema, Operation
from conformlab.verdicts import not_applicable, not_verified


def load(schema: DeviceSchema):
    """The schemathesis view of a device schema (an explicit Config: no stray schemathesis.toml)."""
    return schemathesis.openapi.from_path(str(schema.path), config=schemathesis.Config())


@functools.cache
def _document_only(schema: DeviceSchema):
    """The view a device that is not the bundled emulator is judged by: without the answer
    constraints that are only this project's reading (x-conformlab-reading)."""
    return schemathesis.openapi.from_dict(schema.document_only(), config=schemathesis.Config())


def require_fuzzable(device: DeviceUnderTest, op: Operation) -> None:
    if op.is_write and not device.target.emulator and not device.target.destructive:
        not_verified("real hardware: writes are fuzzed only with destructive = true")
    if op.destructive and not device.target.emulator:
        not_verified(f"real hardware: {op} is never fuzzed ({op.destructive}); random values could not be undone")
    device.require_operation_allowed(op)


def run_generated(device: DeviceUnderTest, api, op: Operation, mode: GenerationMode, checks, examples: int) -> None:
    """Send `examples` generated requests of `op` and validate each answer with `checks` (against
    the document alone unless the target is a bundled emulator in its default reading)."""
    if not device.target.enforces_readings:
        api = _document_only(device.schema)
    operation = api[op.path][op.method]

    @hypothesis.settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                         phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def call(case):
        # The target's timeout, not schemathesis's default of 10 s: it is the whole exchange's deadline.
        response = case.call(base_url=device.client.base_url, session=device.client.session,
                             timeout=device.client.timeout)
        case.validate_response(response, checks=checks)

    try:
        call()
    except hypothesis.errors.Unsatisfiable:
        not_applicable(f"schemathesis can generate no {mode.value} request for {op}")
