"""A device that reboots by itself in the middle of a run (a power dip, a watchdog) costs one check
a second run, not every check of the outage: the client sees it go away, waits until it answers
again, and the check that met the outage is run once more; the report says so."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conformlab.emulators import start_emulator

ROOT = Path(__file__).resolve().parents[2]
BOOT_SECONDS = 3.0


def test_a_reboot_in_the_middle_is_survived(tmp_path):
    with start_emulator("esp32-evse", boot_seconds=BOOT_SECONDS) as running:
        device = running.emulator
        targets = tmp_path / "targets.toml"
        targets.write_text(f'[targets.bench]\ndevice = "esp32-evse"\nbase_url = "{running.url}"\ntimeout = 2\n')
        handle, seen = device.handle, []

        def reboot_at_the_hundredth_request(request):
            seen.append(request)
            if len(seen) == 100:  # in the middle of the checks; as the firmware's own restart does it
                device.restart(0.05)
            return handle(request)

        device.handle = reboot_at_the_hundredth_request
        run = subprocess.Popen([sys.executable, "-m", "pytest", "suites", f"--targets-file={targets}", "--target=bench",
                                "-p", "no:cacheprovider", "-q", "-k", "not fuzz",
                                f"--html={tmp_path / 'r.html'}", f"--junitxml={tmp_path / 'r.xml'}"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "HOME": str(tmp_path)})
        out, _ = run.communicate(timeout=120)
    assert device.restarts == 1
    assert run.returncode == 0, out[-4000:]
    assert "the device went away for" in out and "the check ran once more after it was back" in out, out[-4000:]
    assert "FAILED" not in out and "ERROR " not in out, out[-4000:]
