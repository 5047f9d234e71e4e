"""Feedback while a run is silent: per target, how many of its checks are done, the requirement of
the running check, and what makes it wait and for how long (the pacer's rate budget, a device's
Retry-After: conformlab.client.on_wait). A paced WattWächter run is otherwise minutes of silence.

The process that runs a target's checks (an xdist worker, or the one process of `-n 0`) keeps where
the target stands in a small status file, in a run directory the controller made and handed to the
workers; a file is replaced whole (written beside it, then os.replace), never seen half written.
Workers never write to the terminal. The controller reads the files about once a second and, once
pytest has printed nothing for --progress-after seconds while a target still runs, says where each
running target stands, on the standard output pytest prints to (a duplicate of it: while a check runs
in the controller, with `-n 0`, pytest's capture holds file descriptor 1):

- on a terminal (--progress=auto): one status line, redrawn in place and erased before pytest prints
  its next result. When pytest's current line holds output (a row of dots, a check's name waiting for
  its result) the status goes on the line below, and erasing it puts the cursor back at that output's end.
- otherwise (CI logs, pipes, files; or --progress=lines): whole lines starting with "progress: ", at
  most one per target every --progress-after seconds of silence, each on a line of its own.

The controller writes under a lock that its hooks hold while pytest prints a check's start or result.
Every line passes through secrets.mask.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from conformlab import client, secrets
from conformlab.plugin.parallel import is_controller

PREFIX = "progress: "
MODES = ("auto", "lines", "off")
TICK = 1.0  # seconds between two looks at the status files
WORKER_INPUT = "conformlab_progress"  # the run directory, in each xdist worker's workerinput
ERASE_LINE = "\r\x1b[K"


def install(config) -> None:
    """The status files on every process of the run; the display on the controller."""
    if config.getoption("conformlab_progress") == "off":
        return
    after = config.getoption("conformlab_progress_after")
    if not (after > 0 and math.isfinite(after)):
        raise pytest.UsageError(f"--progress-after: a number of seconds > 0, not {after:g}")
    if is_controller(config):
        directory = Path(tempfile.mkdtemp(prefix="conformlab-progress-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)  # also after a run that broke off
        config.pluginmanager.register(Display(config, directory, after), "conformlab-progress")
    elif WORKER_INPUT in config.workerinput:
        directory = Path(config.workerinput[WORKER_INPUT])
    else:
        return
    config.pluginmanager.register(StatusFiles(directory), "conformlab-progress-status")


def describe(status: dict, now: float, brief: bool = False) -> str:
    """One target's progress: "ww-emulator: 12 of 30 checks done, checking WW-HISTORY-LOWRES,
    waiting 8 s: rate budget 25 requests per 10 s"; brief: "ww-emulator 12/30 WW-HISTORY-LOWRES waiting 8 s"."""
    wait = status["wait"]
    waiting = math.ceil(wait["until"] - now) if wait and wait["until"] > now else 0
    if brief:
        text = f"{status['target']} {status['done']}/{status['total']} {status['requirement']}"
        return secrets.mask(text + (f" waiting {waiting} s" if waiting else ""))
    text = f"{status['target']}: {status['done']} of {status['total']} checks done, checking {status['requirement']}"
    return secrets.mask(text + (f", waiting {waiting} s: {wait['why']}" if waiting else ""))


class StatusFiles:
    """Where each target this process runs stands, in its status file: {"target", "total", "done",
    "requirement" (the running check's first), "wait": {"why", "until" (epoch seconds)} or null}."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.lock = threading.Lock()  # waits are told from any thread of a check
        self.totals: Counter[str] = Counter()
        self.status: dict[str, dict] = {}  # target name -> its status
        self.paths: dict[str, Path] = {}  # target name -> its status file
        self.running: str | None = None  # the target of the running check

    def pytest_collection_finish(self, session):
        from conformlab.plugin.collection import target_of  # collection imports options, which imports this module

        self.totals = Counter(target.name for target in map(target_of, session.items) if target is not None)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session):
        client.on_wait = self.waiting
        try:
            return (yield)
        finally:
            client.on_wait = None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        from conformlab.plugin.collection import requirement_ids, target_of

        target = target_of(item)
        if target is None:
            return (yield)
        with self.lock:
            self.running = target.name
            status = self.status.setdefault(target.name, {"target": target.name, "total": self.totals[target.name],
                                                          "done": 0, "requirement": "", "wait": None})
            status["requirement"] = requirement_ids(item)[0]  # every check names one (collection)
            self._write(status)
        try:
            return (yield)
        finally:
            with self.lock:
                status["done"] += 1
                status["wait"] = None
                self._write(status)

    def waiting(self, seconds: float, why: str) -> None:
        """conformlab.client.on_wait: a request of the running check's target waits `seconds` ("" and 0: no more)."""
        with self.lock:
            status = self.status.get(self.running)
            if status is None:
                return
            status["wait"] = {"why": why, "until": time.time() + seconds} if seconds > 0 else None
            self._write(status)

    def _write(self, status: dict) -> None:
        name = status["target"]
        if name not in self.paths:  # the process id: each worker names its own files
            self.paths[name] = self.directory / f"{os.getpid()}-{len(self.paths)}.json"
        path = self.paths[name]
        draft = path.with_suffix(".draft")
        try:
            draft.write_text(json.dumps(status), encoding="utf-8")
            os.replace(draft, path)
        except OSError:
            pass  # progress is a courtesy: never a reason for a check to fail


class Display:
    """On the controller: says where the running targets stand when the terminal has been silent."""

    def __init__(self, config, directory: Path, after: float):
        self.config = config
        self.directory = directory
        self.after = after
        self.lock = threading.Lock()  # held while pytest prints a check's start or result, and while this prints
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.reporter = None  # pytest's terminal reporter, while the checks run
        self.out: int | None = None  # the duplicate of the standard output written to, while the checks run
        self.encoding = "utf-8"
        self.redraw = False  # a status line redrawn in place (a terminal), or whole lines
        self.distributed = False  # xdist runs the checks (its controller prints whole result lines)
        self.last_output = 0.0  # when pytest last printed a check's start or result (monotonic)
        self.last_lines = 0.0  # when progress lines were last printed
        self.back: str | None = None  # a status line is shown: how to erase it and return to pytest's place

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node):
        node.workerinput[WORKER_INPUT] = str(self.directory)  # xdist: where the worker writes

    @pytest.hookimpl(wrapper=True, trylast=True)  # inside the terminal reporter's: stopped before it prints [100%]
    def pytest_runtestloop(self, session):
        self._start()
        try:
            return (yield)
        finally:
            self._stop()

    @contextlib.contextmanager
    def _pytest_prints(self):
        """Around pytest printing a check's start or result: the status erased first, under the lock,
        and the silence counted from its end."""
        with self.lock:
            self._erase()
            try:
                yield
            finally:
                self.last_output = time.monotonic()

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_logstart(self, nodeid, location):
        with self._pytest_prints():
            return (yield)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_logreport(self, report):
        with self._pytest_prints():
            return (yield)

    def _start(self) -> None:
        self.reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if self.reporter is None:
            return
        try:  # here pytest's capture is suspended: descriptor 1 is the terminal, file or pipe the run prints to
            self.out = os.dup(sys.__stdout__.fileno())
        except (AttributeError, OSError, ValueError):
            return  # no standard output to say it on
        self.encoding = getattr(sys.__stdout__, "encoding", None) or "utf-8"
        self.redraw = (self.config.getoption("conformlab_progress") == "auto" and os.isatty(self.out)
                       and os.environ.get("TERM") != "dumb")
        self.distributed = self.config.pluginmanager.has_plugin("dsession")
        self.last_output = time.monotonic()
        self.thread = threading.Thread(target=self._run, name="conformlab-progress", daemon=True)
        self.thread.start()

    def _stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
        with self.lock:
            self._erase()
            if self.out is not None:
                os.close(self.out)
                self.out = None

    def _run(self) -> None:
        while not self.stopping.wait(TICK):
            running = self._running()
            with self.lock:
                now = time.monotonic()
                if self.stopping.is_set():
                    return
                if not running or now - self.last_output < self.after:
                    self._erase()
                elif self.redraw:
                    self._draw(running)
                elif now - self.last_lines >= self.after:
                    self._print(running)
                    self.last_lines = now

    def _running(self) -> list[dict]:
        """The status of each target that has begun and has checks left, by target name."""
        statuses = []
        for path in self.directory.glob("*.json"):
            try:
                statuses.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue  # gone or not yet there: the next look sees it
        return sorted((s for s in statuses if s["done"] < s["total"]), key=lambda s: s["target"])

    def _print(self, running: list[dict]) -> None:
        """Whole lines, in one write, starting on a line of their own. pytest goes on below them: its
        record of its current line is kept in step (TerminalWriter has no public way to say it)."""
        writer = self.config.get_terminal_writer()
        now = time.time()
        text = "".join(f"{PREFIX}{describe(status, now)}\n" for status in running)
        if writer.width_of_current_line:
            text = "\n" + text
        resumed = ""
        pending = self.reporter.currentfspath  # -v: a str or -2 while pytest's line is open
        if isinstance(pending, str) and not self.distributed:
            resumed = pending  # the running check's name, waiting for its result word: written again below
        elif isinstance(pending, str) or pending == -2:
            self.reporter.currentfspath = None  # a line these ended: pytest must not end it again
        self._write(text + resumed)
        writer._current_line = resumed  # a row of dots goes on from the start of the line: its [ NN%] where it belongs

    def _draw(self, running: list[dict]) -> None:
        """The status line, redrawn in place; never wider than the terminal (a wrapped line cannot be erased)."""
        writer = self.config.get_terminal_writer()
        width = writer.fullwidth
        now = time.time()
        text = PREFIX + " | ".join(describe(status, now) for status in running)
        if len(text) >= width:
            text = PREFIX + " | ".join(describe(status, now, brief=True) for status in running)
        text = text[:max(width - 1, 1)]
        start = "\r"
        if self.back is None:
            used = writer.width_of_current_line
            if used:  # below pytest's output, and back to its end (the column its last row ends at)
                column = used % width  # 0: the row is full and the terminal moves on to the next anyway
                start, self.back = "\n", f"\x1b[A\x1b[{column + 1}G" if column else ""
            else:
                self.back = ""
        self._write(start + text + "\x1b[K")

    def _erase(self) -> None:
        if self.back is not None:
            self._write(ERASE_LINE + self.back)
            self.back = None

    def _write(self, text: str) -> None:
        data = secrets.mask(text).encode(self.encoding, "replace")
        try:
            while data:
                data = data[os.write(self.out, data):]
        except OSError:
            pass  # the terminal or pipe is gone: pytest will find out for itself
