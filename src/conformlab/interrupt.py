"""Interruption is a verdict of its own: Ctrl-C or SIGTERM (a CI job cancelled) stops the run, puts
back what the checks changed, prints "interrupted" and exits with pytest's interrupted status (2);
never 0, and never a FAIL of the device.

- The first SIGINT or SIGTERM raises KeyboardInterrupt in the main thread (SIGTERM would otherwise
  end Python without running a single `finally`). The running check stops where it is; its `finally`
  blocks, `preserved()` and the fixtures' teardown put back what it changed, and the target's session
  checks the device against its journal (conformlab.journal) before it ends.
- Whatever a check does with that KeyboardInterrupt (a library that swallows it, a restore that fails
  and raises its own error instead), the run stops after that check, no other check starts, and a
  failure seen after the signal is "not verified: interrupted", never a failure of the device.
- Under pytest-xdist the controller passes the interruption on to its workers (a terminal's Ctrl-C
  reaches them anyway; a CI job's SIGTERM may reach the controller alone) and waits while they put
  things back. A worker ends its session as stopped rather than interrupted: xdist takes an
  interrupted worker for a crashed one and reports the check it was running as failed.
- A second signal ends the process at once (os._exit(2)) with one line; whatever was not put back
  stays in the target's journal for `conformlab restore TARGET` (or the next run against it).
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path

import pytest

from conformlab import secrets
from conformlab.verdicts import NOT_VERIFIED_TAG

PASS_ON = signal.SIGUSR1  # the controller to its workers: "the run is interrupted" (a repeat is ignored)
RUN_DIR = "conformlab_run_dir"  # workerinput key: where workers leave their pids for the controller
FLAG = "interrupted"  # in the run dir: the run was interrupted (for workers that start after that)

_current: Interruption | None = None


def install(config) -> None:
    """Take over SIGINT and SIGTERM for this pytest process (a run without xdist, the xdist controller
    or a worker) until pytest_unconfigure. Signal handlers belong to the main thread."""
    global _current
    if threading.current_thread() is not threading.main_thread():
        return
    _current = Interruption(config)
    config.pluginmanager.register(_current, "conformlab-interrupt")


def interrupted() -> str | None:
    """The signal that interrupted this run ("SIGINT", "SIGTERM"), or None."""
    return _current.signal_name if _current else None


def tell(line: str) -> None:
    """Write one line (masked) on the terminal at once, past pytest's output capture. An xdist
    worker's stderr is the controller's terminal."""
    fd = _current.terminal if _current else 2
    try:
        os.write(fd, (secrets.mask(line).rstrip("\n") + "\n").encode("utf-8", "replace"))
    except OSError:
        pass


class Interruption:
    """The signal handlers and the hooks of one pytest process (registered as "conformlab-interrupt")."""

    def __init__(self, config):
        self.config = config
        self.worker = hasattr(config, "workerinput")
        self.signal_name: str | None = None
        self.terminal = os.dup(2)  # capture is suspended while plugins configure: this is the terminal
        self.run_dir: Path | None = None
        self.previous = {}
        for signum in (signal.SIGINT, signal.SIGTERM, *((PASS_ON,) if self.worker else ())):
            self.previous[signum] = signal.signal(signum, self._on_signal)
        if self.worker and RUN_DIR in config.workerinput:
            self.run_dir = Path(config.workerinput[RUN_DIR])
            # The pid first, then the flag: a controller that signals after the pid is here reaches
            # this worker; one that signalled before left the flag (it writes the flag first).
            (self.run_dir / config.workerinput["workerid"]).write_text(str(os.getpid()))
            if (self.run_dir / FLAG).exists():  # interrupted before this worker started: run nothing
                self.signal_name = (self.run_dir / FLAG).read_text() or "SIGINT"

    @property
    def reason(self) -> str:
        return f"interrupted ({self.signal_name})"

    # -- the signals ----------------------------------------------------------------------------

    def _on_signal(self, signum, frame) -> None:
        if self.signal_name is not None:
            if signum == PASS_ON:
                return  # the controller passing on the Ctrl-C this worker had from the terminal too
            self._stop_at_once()
        self.signal_name = signal.Signals(signum).name if signum != PASS_ON else self._controller_signal()
        if not self.worker:
            tell(f"{self.reason}: stopping; what the checks changed is being put back "
                 "(interrupt again to stop at once, without that)")
        if not self.worker and self.config.pluginmanager.has_plugin("dsession"):
            self._pass_on(PASS_ON)
            return  # the workers stop and put back; xdist ends the run once they have
        raise KeyboardInterrupt

    def _controller_signal(self) -> str:
        try:
            return (self.run_dir / FLAG).read_text() or "SIGINT"
        except (OSError, TypeError):
            return "SIGINT"

    def _stop_at_once(self) -> None:
        if not self.worker:
            if self.config.pluginmanager.has_plugin("dsession"):
                self._pass_on(signal.SIGTERM)  # the workers' second signal: they stop at once too
            tell("interrupted again: stopped without restoring" + self._restore_hint())
        os._exit(pytest.ExitCode.INTERRUPTED)

    def _restore_hint(self) -> str:
        from conformlab.plugin.options import TARGETS  # the plugin imports this module

        names = [t.name for t in self.config.stash.get(TARGETS, []) if not t.emulator]
        if not names:
            return " (emulator targets only: nothing to put back)"
        file = self.config.getoption("conformlab_targets_file")
        option = "" if file == "targets.toml" else f" --targets-file {file}"
        return "; run " + " and ".join(f"`conformlab restore {name}{option}`" for name in names)

    def _pass_on(self, signum) -> None:
        """Signal every worker that has started (a worker that starts later finds the flag)."""
        run_dir = self._run_dir()
        if not (run_dir / FLAG).exists():
            (run_dir / FLAG).write_text(self.signal_name or "SIGINT")
        for entry in run_dir.iterdir():
            if entry.name != FLAG:
                try:
                    os.kill(int(entry.read_text()), signum)
                except (OSError, ValueError):
                    pass  # gone already

    def _run_dir(self) -> Path:
        if self.run_dir is None:
            self.run_dir = Path(tempfile.mkdtemp(prefix="conformlab-run-"))
        return self.run_dir

    # -- xdist: where the controller finds its workers ----------------------------------------------

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node) -> None:
        node.workerinput[RUN_DIR] = str(self._run_dir())

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        if self.run_dir is not None:
            (self.run_dir / str(node.workerinput.get("workerid"))).unlink(missing_ok=True)

    # -- the run after the signal -----------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item, nextitem):
        """After the signal no check starts."""
        if self.signal_name is None:
            return None
        item.session.shouldstop = self.reason
        return True

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        """A check that ends after the signal stops the run, and its failure (a swallowed
        KeyboardInterrupt, a restore cut short) is "not verified: interrupted"."""
        if self.signal_name is not None:
            item.session.shouldstop = self.reason
            excinfo = call.excinfo
            if excinfo is not None and not isinstance(excinfo.value, pytest.skip.Exception):
                try:
                    pytest.skip(f"{NOT_VERIFIED_TAG}{self.reason} while it ran")
                except pytest.skip.Exception:
                    call.excinfo = pytest.ExceptionInfo.from_current()
        return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session):
        try:
            return (yield)
        except KeyboardInterrupt:
            if not self.worker:
                raise
            # A worker stops instead: xdist would take "interrupted" for a crash of the check it ran.
            self.signal_name = self.signal_name or "SIGINT"
            session.shouldstop = self.reason
            return True

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self, session):
        result = yield
        if self.signal_name is not None and not self.worker:
            session.exitstatus = pytest.ExitCode.INTERRUPTED  # also when the signal came after the last check
        return result

    def pytest_terminal_summary(self, terminalreporter, exitstatus):
        if self.signal_name is not None or exitstatus == pytest.ExitCode.INTERRUPTED:
            terminalreporter.write_line(f"{self.reason if self.signal_name else 'interrupted'}: the run stopped before "
                                        "its end; no verdict (exit status 2)", red=True, bold=True)

    def pytest_unconfigure(self, config) -> None:
        global _current
        for signum, previous in self.previous.items():
            signal.signal(signum, previous)
        if self.run_dir is not None:
            if self.worker:
                (self.run_dir / config.workerinput["workerid"]).unlink(missing_ok=True)
            else:
                shutil.rmtree(self.run_dir, ignore_errors=True)
        os.close(self.terminal)
        _current = None
