"""Several targets run side by side, and each target's checks stay on one pytest-xdist worker.

A device's state and its rate budget belong to one process: if two workers talked to one device,
the WattWächter's 25 requests per 10 s would be spent twice over and checks would see each other's
writes. This runs two emulator targets with the defaults (no -n: one worker per target) and with
`-n 3`, and reads from the verbose output which worker ran each check.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINE = re.compile(r"^\[(gw\d+)\] .*@(evse-emulator(?:-auth)?)\s*$")  # xdist tags a node id with its group


@pytest.mark.parametrize("workers", [[], ["-n", "3"]], ids=["default", "n3"])
def test_each_target_stays_on_one_worker(workers, tmp_path):
    command = [sys.executable, "-m", "pytest", "suites", "--target", "evse-emulator", "--target", "evse-emulator-auth",
               "-k", "test_auth", "-v", "-p", "no:cacheprovider", f"--junitxml={tmp_path / 'r.xml'}",
               f"--html={tmp_path / 'r.html'}", *workers]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    workers_of = defaultdict(set)
    for line in result.stdout.splitlines():
        match = LINE.match(line)
        if match:
            workers_of[match.group(2)].add(match.group(1))
    assert set(workers_of) == {"evse-emulator", "evse-emulator-auth"}, result.stdout[-2000:]
    for target, used in workers_of.items():
        assert len(used) == 1, f"{target}'s checks ran on several workers: {sorted(used)}"
    assert workers_of["evse-emulator"] != workers_of["evse-emulator-auth"], "the two targets did not run side by side"
