"""The end-of-run check, for every target: the device is as the run found it.

The plugin runs this after every other check of its target. The snapshot (the profile's
snapshot_paths, e.g. GET /config) was taken before the first check; the credentials are checked by
what the device answers with and without them. If anything differs, the check puts the old values
back through the documented API and still fails, loudly, naming what had changed; unless the device
restarted by itself during the run (an outage the harness did not cause): what differed and was put
back is then a notice, since a start resets live values without the run's doing.
"""

from __future__ import annotations

import time

import pytest

from conformlab.dut import RestoreError


@pytest.mark.req("HARNESS-LEFT-AS-FOUND")
def test_left_as_found(device, record_property, notice):
    record_pacing(device, record_property)
    record_property("api_requests", str(device.client.sent))  # the results file's request count
    logins = getattr(device.client.session.auth, "logins", None)
    if logins is not None:  # a login session (MC252): obtained once per run, not per request
        record_property("session_logins", str(logins))
    problems = []
    probe = device.profile.probe_path
    with_credentials = device.client.get(probe)
    if with_credentials.status_code != 200:
        problems.append(f"GET {probe} with the target's credentials now answers {with_credentials.status_code}")
    if device.has_credentials:
        # Served without credentials means they were removed; the exact refusal status is the
        # auth suites' business (the MC252 document says only "an error status").
        without = device.client.get(probe, auth=None)
        if without.status_code < 400:
            problems.append(f"GET {probe} without credentials now answers {without.status_code}: the device's credentials were removed")
    # Compared (and restored) whenever the target's credentials still work: a device whose
    # authentication was left off is put back by restoring its settings.
    changed = device.differences_from_snapshot() if with_credentials.status_code == 200 else {}
    restarted_by_itself = []
    for path, (before, now) in changed.items():
        if isinstance(before, dict) and isinstance(now, dict):
            detail = {k: (before.get(k), now.get(k)) for k in set(before) | set(now) if before.get(k) != now.get(k)}
        else:
            detail = (before, now)
        try:
            device.restore(path, before)
        except (RestoreError, AssertionError) as exc:
            problems.append(f"GET {path} changed during the run: {detail}")
            problems.append(f"{path} could NOT be restored: {exc}")
            continue
        if device.outages:  # the device restarted by itself: what its start resets is not the run's doing
            restarted_by_itself.append(f"GET {path} differed after it: {detail}; put back")
        else:
            problems.append(f"GET {path} changed during the run: {detail}")
            problems.append(f"{path} has now been restored")
    if restarted_by_itself:
        notice(f"the device went away by itself during the run ({len(device.outages)} time(s)); "
               + "; ".join(restarted_by_itself))
    assert not problems, "THE DEVICE IS NOT AS THE RUN FOUND IT:\n" + "\n".join(problems)


def record_pacing(device, record_property) -> None:
    """For a device with a request budget: how close the run came to the floor the budget sets."""
    budget = device.profile.rate_budget
    if budget is None:
        return
    client = device.client
    wall = time.monotonic() - device.started
    floor = client.sent * budget.seconds / budget.requests
    load = device.load_seconds
    checks = wall - load
    record_property("pacing", f"{client.sent} API requests by the checks; at {budget.requests} per {budget.seconds:g} s they "
                              f"need at least {floor:.0f} s, and took {checks:.0f} s ({checks / floor if floor else 0:.2f} x "
                              "that floor; below 1 where a quiet window let a burst through); the load scenarios and "
                              f"the budget's refill around them took {load:.0f} s more")
