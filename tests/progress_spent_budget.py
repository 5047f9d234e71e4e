"""A plugin for the runs of tests/test_progress.py (`-p progress_spent_budget`): when the first check
whose node id holds $CONFORMLAB_SPEND_BUDGET_AT starts on a target, that target's client budget is
spent (the pacer's window filled as if its requests had just gone out), so that the check's first
request waits in the real pacer for most of a window, however fast or slow the machine is. Nothing
reaches the device: only the client's own account of the window changes."""

from __future__ import annotations

import os
import time

VARIABLE = "CONFORMLAB_SPEND_BUDGET_AT"
_spent: set[str] = set()


def pytest_runtest_call(item):
    where = os.environ.get(VARIABLE)
    device = item.funcargs.get("device") if hasattr(item, "funcargs") else None
    if not where or where not in item.nodeid or device is None or device.target.name in _spent:
        return
    _spent.add(device.target.name)
    pacer = device.client.pacer
    with pacer.lock:
        now = time.monotonic()
        pacer.sent.extend([now] for _ in range(pacer.limit - len(pacer.sent)))
