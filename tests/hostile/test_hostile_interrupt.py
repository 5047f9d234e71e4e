"""Interruption is a verdict of its own: Ctrl-C or SIGTERM stops a run promptly, puts back what the
checks changed, prints "interrupted" and exits 2; never 0, never a FAIL of the device.

The device is "real hardware" (a base_url: an emulator with credentials behind the HeldWrites proxy,
destructive = false), so the run journals what it found; the state is read before and after with
plain requests. A Ctrl-C goes to the run's whole process group, as a terminal sends it (the xdist
controller and its workers get it); a CI job's SIGTERM goes to the controller alone.
"""

from __future__ import annotations

import os
import random
import signal
import time

import pytest

from conformlab.dut import DeviceUnderTest, RestoreError
from conformlab.client import DeviceClient
from conformlab.targets import Target
from held_writes import (AUTH, WRITE_CHECK, Bench, finish, journal_file, restore_command, start_run, wait_for,
                         write_targets)

BOUND = 15  # seconds from the signal to the end of the run (it puts back a handful of values)


@pytest.fixture
def benches(request):
    made = [Bench("bench")] if request.param == 1 else [Bench(f"bench{n}") for n in range(request.param)]
    yield made
    for bench in made:
        bench.close()


def assert_interrupted(output: str, returncode: int, seconds: float, benches, found, tmp_path) -> None:
    assert returncode == 2, output[-3000:]
    assert "interrupted (SIG" in output, output[-3000:]
    assert "FAILED" not in output, output[-3000:]
    assert seconds < BOUND, f"the run took {seconds:.1f} s after the signal"
    for bench, before in zip(benches, found):
        assert bench.state() == before, f"{bench.name} is not as the run found it"
        assert not journal_file(tmp_path, bench.name).exists(), "the device is as found: its journal goes"


@pytest.mark.parametrize("benches, options", [(1, []), (2, []), (2, ["-n", "0"])], indirect=["benches"],
                         ids=["one-target", "two-targets-xdist", "two-targets-n0"])
def test_ctrl_c_in_the_middle_of_a_write(tmp_path, benches, options):
    """The device has taken the write, its answer is late: the check stops there and puts it back."""
    targets = write_targets(tmp_path, benches)
    found = [bench.state() for bench in benches]
    for bench in benches:
        bench.proxy.holding.set()
    run = start_run(tmp_path, targets, [bench.name for bench in benches], "-k", WRITE_CHECK, *options)
    wait_for(benches[0].proxy.held, "a write", run)
    signalled = time.monotonic()
    os.killpg(run.pid, signal.SIGINT)
    for bench in benches:
        bench.proxy.release()
    output, _ = finish(run, 60)
    assert_interrupted(output, run.returncode, time.monotonic() - signalled, benches, found, tmp_path)
    assert f"{benches[0].name}: the device is as the run found it" in output


@pytest.mark.parametrize("benches", [1], indirect=True)
def test_ctrl_c_at_an_early_moment(tmp_path, benches):
    """Somewhere between the first request and the first write (the write is held, so the run cannot
    end before the signal)."""
    bench = benches[0]
    targets = write_targets(tmp_path, benches)
    found = [bench.state()]
    bench.proxy.holding.set()
    seed = random.randrange(10_000)
    print(f"seed {seed}")  # shown with a failure: the moment can be repeated
    run = start_run(tmp_path, targets, ["bench"], "-k", WRITE_CHECK)
    wait_for(bench.proxy.first_request, "a first request", run)
    time.sleep(random.Random(seed).uniform(0.0, 0.6))
    signalled = time.monotonic()
    os.killpg(run.pid, signal.SIGINT)
    bench.proxy.release()
    output, _ = finish(run, 60)
    assert_interrupted(output, run.returncode, time.monotonic() - signalled, benches, found, tmp_path)


@pytest.mark.parametrize("benches", [2], indirect=True)
def test_sigterm_to_the_controller_alone(tmp_path, benches):
    """A cancelled CI job: SIGTERM reaches the xdist controller only; it passes the interruption on to
    its workers and waits while they put back what they changed."""
    targets = write_targets(tmp_path, benches)
    found = [bench.state() for bench in benches]
    for bench in benches:
        bench.proxy.holding.set()
    run = start_run(tmp_path, targets, [bench.name for bench in benches], "-k", WRITE_CHECK)
    wait_for(benches[0].proxy.held, "a write", run)
    signalled = time.monotonic()
    os.kill(run.pid, signal.SIGTERM)
    time.sleep(0.5)  # the late answer of the write comes after the signal
    for bench in benches:
        bench.proxy.release()
    output, _ = finish(run, 60)
    assert_interrupted(output, run.returncode, time.monotonic() - signalled, benches, found, tmp_path)
    assert "interrupted (SIGTERM)" in output


@pytest.mark.parametrize("benches", [1], indirect=True)
def test_second_ctrl_c_while_putting_back_stops_at_once(tmp_path, benches):
    """The restore's write hangs (and never reaches the device); a second Ctrl-C ends the run at once
    with one line, the journal stays, and `conformlab restore` puts the device back."""
    bench = benches[0]
    targets = write_targets(tmp_path, benches)
    found = bench.state()
    bench.proxy.holding.set()
    run = start_run(tmp_path, targets, ["bench"], "-k", WRITE_CHECK)
    wait_for(bench.proxy.held, "a write", run)
    bench.proxy.forward_held = False  # from now on a write hangs and never reaches the device
    bench.proxy.held.clear()
    os.killpg(run.pid, signal.SIGINT)
    wait_for(bench.proxy.held, "the restore's write", run)
    signalled = time.monotonic()
    os.killpg(run.pid, signal.SIGINT)
    output, _ = finish(run, 30)
    seconds = time.monotonic() - signalled
    bench.proxy.release()
    assert run.returncode == 2 and seconds < 3, (seconds, output[-3000:])
    assert f"interrupted again: stopped without restoring; run `conformlab restore bench --targets-file {targets}`" in output
    assert "FAILED" not in output
    assert journal_file(tmp_path, "bench").exists()
    assert bench.state() != found, "the restore's write should not have reached the device"
    restored = restore_command(tmp_path, targets, "bench")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert bench.state() == found and not journal_file(tmp_path, "bench").exists()


@pytest.mark.parametrize("benches", [1], indirect=True)
def test_interrupted_block_whose_restore_fails_stays_an_interruption(benches):
    """A KeyboardInterrupt in a `preserved()` block whose restore then fails goes on as the
    KeyboardInterrupt (the run stops); a RestoreError in its place would be a FAIL of the device and
    would let the run go on."""
    bench = benches[0]
    target = Target(name="bench", device="esp32-evse", base_url=None, emulator=True, auth=dict(AUTH))
    client = DeviceClient(bench.proxy.url, "/api/v1", auth=target.profile.make_auth(AUTH), timeout=5, name="bench")
    device = DeviceUnderTest(target, client)
    serial = device.read("/config/serial")
    changed = [dict(serial[0], baudRate=19200 if serial[0]["baudRate"] != 19200 else 38400), *serial[1:]]
    with pytest.raises(KeyboardInterrupt):
        with device.preserved("/config/serial"):
            assert client.post("/config/serial", json=changed).status_code == 200
            bench.proxy.forward_held, bench.proxy.hold_seconds = False, 0  # the restore's write is refused (503)
            bench.proxy.holding.set()
            raise KeyboardInterrupt
    bench.proxy.release()
    with pytest.raises(RestoreError):  # not interrupted, the same failing restore fails the check
        with device.preserved("/config/serial"):
            assert client.post("/config/serial", json=serial).status_code == 200
            bench.proxy.holding.set()
    client.close()
