"""What every device suite shares: requests built from the schema, refusals that must change
nothing, and putting back what a check wrote.

A suite makes one `DeviceChecks` (or a subclass with its device's policy: when a write is unsafe
right now, how to read an effect that moves by itself) and uses its methods.
"""

from __future__ import annotations

import contextlib
import time


from conformlab import secrets
from conformlab.client import JSON
from conformlab.dut import DeviceUnderTest
from conformlab.schema import Operation
from conformlab.verdicts import not_applicable


def ids(ops) -> list[str]:
    return [str(op) for op in ops]


def answer(response) -> str:
    """One line that shows a response in a failure message."""
    text = secrets.mask(response.text)[:160].replace("\n", " ")  # masked before cut: no half secret
    return f"{response.request.method} {response.request.path_url} -> {response.status_code} {response.headers.get('Content-Type', '')!r} {text!r}"


def wait_until(probe, seconds: float, step: float = 0.2):
    """Call probe() until it returns something truthy, for at most `seconds`; its last value.
    (Bounded: a device that never gets there leaves the check's own assertion to say so.)"""
    end = time.monotonic() + seconds
    while True:
        value = probe()
        if value or time.monotonic() >= end:
            return value
        time.sleep(step)


def assert_unchanged(before, after, what: str) -> None:
    if before == after:
        return
    if isinstance(before, dict) and isinstance(after, dict):
        diff = {k: (before.get(k), after.get(k)) for k in set(before) | set(after) if before.get(k) != after.get(k)}
        raise AssertionError(f"{what}: the device changed although the request was refused: {diff}")
    raise AssertionError(f"{what}: the device changed although the request was refused: {before!r} -> {after!r}")


def resolve_path(device: DeviceUnderTest, op: Operation) -> str:
    """The operation's path with real values for its parameters (x-conformlab from/pointer on the
    parameter names where a live value is found, e.g. an existing component id)."""
    path = op.path
    for param in op.path_parameters:
        source = param.get("x-conformlab", {})
        if source.get("from"):
            value = device.read(source["from"])
            for part in source.get("pointer", "").strip("/").split("/"):
                if part == "":
                    continue
                try:
                    value = value[int(part)] if isinstance(value, list) else value[part]
                except (IndexError, KeyError, TypeError):
                    not_applicable(f"{op}: the device has nothing at {source['from']}{source.get('pointer', '')}")
        else:
            value = param.get("example")
        path = path.replace("{" + param["name"] + "}", str(value))
    return path


def reads_path(device: DeviceUnderTest, op: Operation) -> str:
    """The concrete GET path that shows the operation's effect."""
    return resolve_path(device, op) if op.reads == op.path else op.reads


def send(device: DeviceUnderTest, op: Operation, *, body=None, path=None, **kw):
    """Send the operation with a JSON or raw body as its schema says."""
    path = path or resolve_path(device, op)
    if op.body_kind == "json" and body is not None:
        return device.client.request(op.method, path, json=body, **kw)
    if op.body_kind == "binary" and body is not None:
        return device.client.request(op.method, path, body=body, content_type="application/octet-stream", **kw)
    return device.client.request(op.method, path, **kw)


def current_body(device: DeviceUnderTest, op: Operation):
    """A body that writes back what the device already holds (harmless on any device)."""
    value = device.read(reads_path(device, op))
    if op.field:
        return value[op.field]
    return device.writable(op, value)


class DeviceChecks:
    """Refusals and restores; a device suite overrides the policy hooks where it needs to."""

    def guard(self, device: DeviceUnderTest, op: Operation) -> None:
        """Skip the check when writing `op` is unsafe on this device right now (default: never)."""

    def read_effect(self, device: DeviceUnderTest, op: Operation):
        """What the write's `reads` answer holds now: JSON (the `field` of it where named), or
        (status, text) for text reads; None when the effect is not readable."""
        if not op.reads:
            return None
        response = device.client.get(reads_path(device, op))
        if response.headers.get("Content-Type", "").startswith(JSON) and response.status_code == 200:
            value = response.json()
            return value.get(op.field) if op.field and isinstance(value, dict) else value
        return (response.status_code, response.text)

    def restored_paths(self, device: DeviceUnderTest, op: Operation) -> list[str]:
        """The run's snapshot paths, and the operation's own read where it can be written back."""
        paths = list(device.profile.snapshot_paths)
        if op.reads and op.reads not in paths and device.writer(op.reads) is not None:
            paths.append(reads_path(device, op))
        return paths

    @contextlib.contextmanager
    def restoring(self, device: DeviceUnderTest, op: Operation):
        """Put back whatever the block changed (after checking that it may write at all)."""
        self.guard(device, op)
        if not op.is_write:  # a read changes nothing; on a rate-limited device every request counts
            yield
            return
        with device.preserved(*self.restored_paths(device, op)):
            yield

    def assert_refused(self, device: DeviceUnderTest, op: Operation, status: int | tuple[int, ...], why: str, request):
        """Send `request()`; the device must answer `status` (or one of several) and the write's
        effect must be unchanged. Whatever the request changed anyway is put back afterwards."""
        statuses = status if isinstance(status, tuple) else (status,)
        before = self.read_effect(device, op)
        with self.restoring(device, op):
            response = request()
            after = self.read_effect(device, op)
        assert response.status_code in statuses, f"{why}: expected {' or '.join(map(str, statuses))}, got {answer(response)}"
        assert_unchanged(before, after, str(op))
        return response
