"""Nothing is lost when a run is killed: before its first write to a real device the run records
what it found in the target's journal (~/.conformlab/journal/<target>.json, mode 600, no secret);
after kill -9 in the middle of a write, `conformlab restore TARGET` or the next run against the
target puts it back and says so, one line per path.

The device is an emulator with credentials behind the HeldWrites proxy, named by its base_url; HOME
is the test's tmp_path, so the journal is the test's own.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import stat
import urllib.parse

import pytest

from conformlab.journal import Journal
from held_writes import (PASSWORD, USER, WRITE_CHECK, Bench, HeldWrites, finish, journal_file, restore_command, start_run,
                         wait_for, write_targets)

PUT_BACK = "bench: put back /config as recorded by an interrupted run of "


@pytest.fixture
def bench():
    made = Bench("bench")
    yield made
    made.close()


def kill_in_a_write(tmp_path, bench) -> tuple:
    """Run the write check and kill -9 it while the device's answer to its write is late."""
    targets = write_targets(tmp_path, [bench])
    found = bench.state()
    bench.proxy.holding.set()
    run = start_run(tmp_path, targets, ["bench"], "-k", WRITE_CHECK)
    wait_for(bench.proxy.held, "a write", run)
    os.killpg(run.pid, signal.SIGKILL)
    finish(run, 10)
    bench.proxy.release()
    assert bench.state() != found, "the device has taken the write the run was killed in"
    return targets, found


def test_killed_run_is_put_back_by_conformlab_restore(tmp_path, bench):
    targets, found = kill_in_a_write(tmp_path, bench)
    journal = journal_file(tmp_path, "bench")
    assert stat.S_IMODE(journal.stat().st_mode) == 0o600
    text = journal.read_text()
    assert "/config" in json.loads(text)["values"][0]["path"]
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    for secret in (PASSWORD, basic, urllib.parse.quote(PASSWORD), json.dumps(PASSWORD)[1:-1]):
        assert secret not in text

    # The device cannot be reached: one line, a non-zero status, the journal kept.
    port = int(bench.proxy.url.rsplit(":", 1)[1])
    bench.proxy.close()
    unreachable = restore_command(tmp_path, targets, "bench")
    assert unreachable.returncode == 1 and unreachable.stdout == "", unreachable
    assert len(unreachable.stderr.splitlines()) == 1 and "cannot connect" in unreachable.stderr, unreachable.stderr
    assert journal.exists()

    bench.proxy = HeldWrites(bench.emulator.url, port=port)  # the device is back at its address
    restored = restore_command(tmp_path, targets, "bench")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert PUT_BACK in restored.stdout, restored.stdout
    assert bench.state() == found and not journal.exists()
    assert PASSWORD not in restored.stdout + restored.stderr

    again = restore_command(tmp_path, targets, "bench")
    assert again.returncode == 0 and "bench: nothing to restore" in again.stdout, again


def test_next_run_puts_back_first(tmp_path, bench):
    targets, found = kill_in_a_write(tmp_path, bench)
    run = start_run(tmp_path, targets, ["bench"], "-k", f"{WRITE_CHECK} or test_left_as_found")
    output, _ = finish(run, 60)
    assert run.returncode == 0, output[-3000:]
    first = output.index(PUT_BACK)  # said at once, before the checks' results, and in the notices
    assert output.count(PUT_BACK) == 2 and first < output.index("passed"), output[-3000:]
    assert bench.state() == found and not journal_file(tmp_path, "bench").exists()
    assert PUT_BACK.removeprefix("bench: ") in (tmp_path / "report.html").read_text()


def test_journal_keeps_the_first_value_of_each_path(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    journal_file(tmp_path, "lab").parent.mkdir(parents=True)
    journal_file(tmp_path, "lab").write_text("an older file, readable by all")
    journal_file(tmp_path, "lab").chmod(0o644)
    journal = Journal("lab", "esp32-evse", "http://192.0.2.1:80")
    journal.record({"/config": {"evse": {"maxChargingCurrent": 16}}, "/state": {"enabled": True}})
    journal.record({"/config/evse": {"maxChargingCurrent": 10}, "/state": {"enabled": False}, "/time": 5})
    loaded = Journal.load("lab")
    assert loaded.values == {"/config": {"evse": {"maxChargingCurrent": 16}}, "/state": {"enabled": True}, "/time": 5}
    assert (loaded.device, loaded.origin, loaded.started) == ("esp32-evse", "http://192.0.2.1:80", journal.started)
    assert stat.S_IMODE(journal_file(tmp_path, "lab").stat().st_mode) == 0o600
    assert [p.name for p in journal_file(tmp_path, "lab").parent.iterdir()] == ["lab.json"]  # no half-written file left
