"""Feedback while a run is silent (conformlab.plugin.progress): per target, checks done of total, the
requirement being checked and how long the pacer or a Retry-After makes it wait, without garbling
pytest's own output.

Real runs of the WattWächter suites against its emulator, whose budget (25 requests per 10 s) makes
the client wait: 30 checks a target send more requests than one window allows, and the first history
check finds its target's budget spent (tests/progress_spent_budget.py: however busy the machine, a
wait of most of a window in the real pacer), and with --progress-after 1 the run says so. The runs of this module start together
(they spend most of their time waiting for the budget): with `-q` and `-v`, with xdist (`-n 2`, two
targets) and in one process (`-n 0`), with --progress=off, and one on a pseudo-terminal. A Retry-After
wait is heard from the client itself (an emulator whose heap protection answers 503 Retry-After: 5).
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import pytest

from conformlab import client as client_module
from conformlab.client import DeviceClient
from conformlab.emulators import start_emulator
from conformlab.profiles import PROFILES
from conformlab.requirements import all_requirements
from conformlab.schema import device_schema
from conformlab.targets import load_targets
from emulator_controls import control

ROOT = Path(__file__).resolve().parents[1]
SELECTION = "test_read_answer_matches or test_history"  # 30 checks a target; more requests than a window allows
CHECKS = 30
SPEND = "progress_spent_budget"  # tests/progress_spent_budget.py: a pacer wait in every run, whatever the load
BOTH = ["--target", "ww-emulator", "--target", "ww-emulator-auth"]
RUNS = {  # name -> arguments; "tty" runs on a pseudo-terminal
    "q-xdist": ["-q", "-n", "2", *BOTH],
    "v-xdist": ["-v", "-n", "2", *BOTH],
    "v-one-process": ["-v", "-n", "0", "--target", "ww-emulator"],
    "off": ["-q", "-n", "0", "--target", "ww-emulator", "--progress=off"],
    "tty": ["-q", "-n", "0", "--target", "ww-emulator"],
}
TTY_SIZE = (40, 100)  # rows, columns
PROGRESS = re.compile(r"^progress: (ww-emulator(?:-auth)?): (\d+) of (\d+) checks done, checking (\S+)"
                      r"(?:, waiting (\d+) s: (.+))?$")
BUDGET = "rate budget 25 requests per 10 s"
DOTS = re.compile(r"^\.+ *(\[ *\d+%\])?$")
RESULT_V = re.compile(r"^(suites/\S+::\S+.*?) PASSED +\[ *\d+%\]$")  # -v in one process
RESULT_V_XDIST = re.compile(r"^\[gw\d\] \[ *\d+%\] PASSED (suites/\S+::\S+.*)$")


@dataclass
class Run:
    returncode: int
    output: str
    xml: Path  # its JUnit report


def _command(tmp: Path, name: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "suites", *RUNS[name], "-k", SELECTION, "-p", "no:cacheprovider", "-p", SPEND,
            "--progress-after", "1", f"--html={tmp / name}.html", f"--junitxml={tmp / name}.xml",
            f"--results-json={tmp / name}.json"]


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}  # the terminal's size rules
    env["TERM"] = "xterm"
    # The first history check finds its target's budget spent: a wait of most of a window, however busy the machine.
    env.update({"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "tests"), env.get("PYTHONPATH")])),
                "CONFORMLAB_SPEND_BUDGET_AT": "test_history.py::"})
    return env


def _start_on_a_terminal(command: list[str]) -> tuple[subprocess.Popen, threading.Thread, list[bytes]]:
    """The command on a pseudo-terminal of TTY_SIZE; what it prints is read as it comes (a full
    terminal buffer would hold the run up)."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", *TTY_SIZE, 0, 0))
    process = subprocess.Popen(command, cwd=ROOT, env=_environment(), stdin=child, stdout=child, stderr=child)
    os.close(child)
    chunks: list[bytes] = []

    def read():
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the run ended and closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(main)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return process, reader, chunks


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Run]:
    tmp = tmp_path_factory.mktemp("runs")
    started, outputs = {}, {}
    try:
        for name in RUNS:
            if name == "tty":
                started[name], reader, chunks = _start_on_a_terminal(_command(tmp, name))
            else:
                outputs[name] = open(tmp / f"{name}.out", "w+b")  # a file, not a pipe: nobody has to drain it
                started[name] = subprocess.Popen(_command(tmp, name), cwd=ROOT, env=_environment(),
                                                 stdout=outputs[name], stderr=subprocess.STDOUT)
        for process in started.values():
            process.wait(timeout=300)
    finally:
        for process in started.values():
            if process.poll() is None:
                process.kill()
    reader.join(timeout=10)
    results = {"tty": Run(started["tty"].returncode, b"".join(chunks).decode("utf-8", "replace"), tmp / "tty.xml")}
    for name, output in outputs.items():
        output.seek(0)
        results[name] = Run(started[name].returncode, output.read().decode("utf-8", "replace"), tmp / f"{name}.xml")
        output.close()
    for name, run in results.items():
        assert run.returncode == 0, f"{name}:\n{run.output[-3000:]}"
    return results


def _progress_lines(output: str) -> list[re.Match]:
    lines = [line for line in output.splitlines() if "progress:" in line]
    matches = [PROGRESS.match(line) for line in lines]
    assert all(matches), "a progress line not on a line of its own, or not as described:\n" + "\n".join(
        line for line, match in zip(lines, matches) if not match)
    return matches


@pytest.mark.parametrize("name", ["q-xdist", "v-xdist", "v-one-process"])
def test_silence_is_filled_with_checks_done_the_requirement_and_the_wait(runs, name):
    run = runs[name]
    assert "\x1b" not in run.output, "escape codes in output that is not a terminal"
    matches = _progress_lines(run.output)
    targets = {"ww-emulator", "ww-emulator-auth"} if "xdist" in name else {"ww-emulator"}
    assert {m.group(1) for m in matches} == targets, run.output[-3000:]
    known = all_requirements()
    for match in matches:
        done, total, requirement = int(match.group(2)), int(match.group(3)), match.group(4)
        assert total == CHECKS and 0 <= done < total, match.group(0)
        assert requirement in known and requirement.startswith("WW-"), match.group(0)
    for target in targets:  # the pacer's wait, with its figure and its reason
        waits = [m for m in matches if m.group(1) == target and m.group(5)]
        assert waits, f"{target}: no progress line says it waits:\n" + "\n".join(m.group(0) for m in matches)
        assert all(1 <= int(m.group(5)) <= 10 and m.group(6) == BUDGET for m in waits), "\n".join(m.group(0) for m in waits)
    secrets = load_targets(ROOT / "targets.toml", ["ww-emulator-auth"])[0].secrets()
    assert secrets and not any(secret in run.output for secret in secrets)
    assert "progress:" not in run.xml.read_text(encoding="utf-8"), "progress went into a check's captured output"


def _pytest_part(output: str) -> list[str]:
    """The lines from the first check's to the end of the checks' lines (a blank line or a summary's rule)."""
    lines = output.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(("suites/", "[gw", ".")))
    end = next(i for i in range(first, len(lines)) if not lines[i] or lines[i].startswith(("=", "-")))
    return lines[first:end]


def test_the_rows_of_dots_stay_whole(runs):
    lines = _pytest_part(runs["q-xdist"].output)
    assert any(PROGRESS.match(line) for line in lines)
    rows = [line for line in lines if not PROGRESS.match(line)]
    assert all(DOTS.match(row) for row in rows), "\n".join(lines)
    assert sum(row.split()[0].count(".") for row in rows) == 2 * CHECKS, "\n".join(lines)
    # The last row's [100%] at the right edge (80 columns: no terminal): pytest knows its row went on below.
    assert rows[-1].endswith("[100%]") and len(rows[-1]) == 79, "\n".join(lines)


def test_verbose_result_lines_stay_whole(runs):
    # One process: a check's name is printed when it starts and its result appended; a progress line in
    # between leaves the name alone on its line, and the name comes again with its result.
    lines = _pytest_part(runs["v-one-process"].output)
    results = [RESULT_V.match(line) for line in lines]
    assert len([r for r in results if r]) == CHECKS, "\n".join(lines)
    for index, line in enumerate(lines):
        if not results[index] and not PROGRESS.match(line):
            assert line.startswith("suites/") and PROGRESS.match(lines[index + 1]), f"line {index}: {line!r}\n" + "\n".join(lines)
    # xdist: whole result lines; a check's start is a line of its own.
    lines = _pytest_part(runs["v-xdist"].output)
    results = [line for line in lines if RESULT_V_XDIST.match(line)]
    assert len(results) == 2 * CHECKS, "\n".join(lines)
    others = [line for line in lines if not RESULT_V_XDIST.match(line) and not PROGRESS.match(line)]
    assert all(re.fullmatch(r"suites/\S+::\S+.*@ww-emulator(-auth)? ", line) for line in others), "\n".join(others)


def test_progress_off_says_nothing_in_the_same_silence(runs):
    run = runs["off"]
    assert "progress:" not in run.output, run.output[-3000:]
    slowest = max(float(case.get("time", 0)) for case in ElementTree.parse(run.xml).iter("testcase"))
    assert slowest > 2, f"no check waited long enough for progress to be shown (slowest {slowest} s)"


def _screen(raw: str, width: int) -> list[str]:
    """What a terminal of `width` columns shows after `raw`: text, carriage return, line feed, erase to
    the end of the line, cursor up, cursor to a column; colours and other controls change nothing shown."""
    rows: list[list[str]] = [[]]
    row = column = 0
    for match in re.finditer(r"\x1b\[([0-9;?]*)([A-Za-z])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b.|(.)", raw, re.S):
        command, char = match.group(2), match.group(3)
        if command:
            count = int(match.group(1)) if match.group(1).isdigit() else 1
            if command == "A":
                row = max(row - count, 0)
            elif command == "G":
                column = count - 1
            elif command == "K":
                del rows[row][column:]
        elif char == "\r":
            column = 0
        elif char == "\n":
            row += 1
        elif char is not None and char.isprintable():
            if column >= width:  # the terminal wraps when the next character comes
                row, column = row + 1, 0
            while len(rows) <= row:
                rows.append([])
            line = rows[row]
            line.extend(" " * (column - len(line)))
            line[column:column + 1] = [char]
            column += 1
        while len(rows) <= row:
            rows.append([])
    return ["".join(line).rstrip() for line in rows]


def test_on_a_terminal_one_status_line_is_redrawn_and_erased(runs):
    raw = runs["tty"].output
    drawn = re.findall(r"\rprogress: ([^\r\n\x1b]*)\x1b\[K", raw)
    assert len(drawn) >= 2, f"no status line redrawn in place: {raw[-2000:]!r}"
    assert all(text.startswith("ww-emulator") for text in drawn) and any("waiting" in text for text in drawn), drawn
    assert "\n" not in "".join(drawn) and all(len("progress: " + text) < TTY_SIZE[1] for text in drawn)
    screen = _screen(raw, TTY_SIZE[1])
    assert not any("progress:" in line for line in screen), "\n".join(screen)
    end = next(i for i, line in enumerate(screen) if "requirements" in line)
    rows = [line for line in screen[:end] if line.startswith(".")]
    # As without progress: the one row of dots, its [100%] at the right edge.
    assert rows == [f"{'.' * CHECKS}{'[100%]':>{TTY_SIZE[1] - 1 - CHECKS}}"], "\n".join(screen)


def test_a_retry_after_wait_is_told_with_its_seconds_and_reason(monkeypatch):
    """The client tells conformlab.client.on_wait how long it waits and why, and when it goes on."""
    ww = PROFILES["wattwaechter"]
    told = []
    with start_emulator("wattwaechter") as emulator:
        control(emulator, "heap", {"free": 0})  # heap protection: every request answered 503 Retry-After: 5

        def on_wait(seconds, why):
            told.append((seconds, why))
            if seconds:
                control(emulator, "heap", {"free": None})  # it recovers while the client waits

        monkeypatch.setattr(client_module, "on_wait", on_wait)
        client = DeviceClient(emulator.url, ww.prefix, name="ww")  # no budget: nothing else to wait for
        answer = client.get("/system/alive")
    assert answer.status_code == 200
    assert told == [(5.0, "the device answered 503 with Retry-After: 5"), (0.0, "")]


def test_a_restart_wait_is_told_with_its_longest_and_reason(monkeypatch):
    """A restart the client waits out (POST /restart: the schema marks it) is told to on_wait with the
    longest it may take (restart_timeout) and what it waits for, and its end."""
    told = []
    monkeypatch.setattr(client_module, "on_wait", lambda seconds, why: told.append((seconds, why)))
    with start_emulator("esp32-evse", boot_seconds=1.0) as emulator:
        evse = PROFILES["esp32-evse"]
        client = DeviceClient(emulator.url, evse.prefix, probe_path="/info", restart_timeout=20.0, name="evse")
        client.restarting = device_schema("esp32-evse").restarting
        assert client.post("/restart").status_code == 200
    [(seconds, why), end] = told
    assert 15 < seconds <= 20 and why == "at most, until the device answers again (POST /api/v1/restart restarts it)"
    assert end == (0.0, "")
