"""The `conformlab` console command.

    conformlab emulate DEVICE [--host 127.0.0.1] [--port 8080] [--fault NAME ...] [--auth KEY=VALUE ...]
                      [--reading default|alternative] [--boot-seconds S] [--tls]
    conformlab faults DEVICE
    conformlab restore TARGET [--targets-file PATH]
    conformlab diff OLD.json NEW.json [--markdown]
    conformlab check-report REPORT.html [--viewport 1366x768] [--timeout S] [--screenshot PNG]

`emulate` prints one line `READY http://HOST:PORT` once the emulator accepts connections (with
--tls: `READY https://HOST:PORT CA=PATH`, the throwaway test CA's certificate to verify it with), then
serves until SIGINT/SIGTERM and exits 0. Errors print one line on stderr and exit 2.

`restore` puts back what a run that was killed (kill -9, a second Ctrl-C, a power cut of the test
host) recorded in the target's journal (~/.conformlab/journal/TARGET.json, see conformlab.journal)
through the device's documented API, one line per path, removes the journal and exits 0; with no
journal it says so and exits 0. A device that cannot be reached, or a value that cannot be put back,
gives one line on stderr and exit status 1, and the journal is kept.

`diff` compares two runs' results files (reports/<name>.json, see conformlab.diff): per target and
requirement what regressed, was fixed, changed verdict otherwise, appeared or disappeared, and the
device identity values that differ; `--markdown` gives a pull-request comment. Exit status 1 when
anything regressed, 0 otherwise, 2 (one line on stderr) for a file that is no valid results file.

`check-report` opens an HTML report in headless Chromium (conformlab.report_check) and prints one
line per problem a reader would meet (console or page errors, requests beyond the file, the verdict
summary not in the first screen) and a summary line: size, render time, errors, where the verdict
summary stands. Exit status 1 when anything is wrong, 0 otherwise, 2 (one line on stderr) for a
missing file or a missing browser (which package to install).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Sequence

from conformlab.emulators import emulator_class, start_emulator


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="conformlab", description="Conformance harness for field-device HTTP APIs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    emulate = commands.add_parser("emulate", help="serve one bundled device emulator on loopback")
    emulate.add_argument("device", metavar="DEVICE", help="device profile, e.g. esp32-evse")
    emulate.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)")
    emulate.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 = a free port)")
    emulate.add_argument("--fault", action="append", default=[], metavar="NAME",
                         help="switch on a named fault (repeatable); see `conformlab faults DEVICE`")
    emulate.add_argument("--auth", action="append", default=[], metavar="KEY=VALUE",
                         help="set a credential, e.g. --auth username=admin --auth password=secret")
    emulate.add_argument("--reading", choices=("default", "alternative"), default="default",
                         help="alternative: every choice the document leaves open made the other way a conforming device may")
    emulate.add_argument("--boot-seconds", type=float, default=None, metavar="S",
                         help="seconds the emulated device is off the network while it restarts (default 2)")
    emulate.add_argument("--tls", action="store_true", help="serve HTTPS with a certificate of a throwaway test CA")
    emulate.add_argument("--verbose", "-v", action="store_true", help="log one line per request on stderr")

    faults = commands.add_parser("faults", help="list a device emulator's faults and the sentences they break")
    faults.add_argument("device", metavar="DEVICE")

    restore = commands.add_parser("restore", help="put back what a killed run recorded in a target's journal")
    restore.add_argument("target", metavar="TARGET", help="a target of the targets file")
    restore.add_argument("--targets-file", default="targets.toml", metavar="PATH",
                         help="the targets file (default: ./targets.toml)")

    diff = commands.add_parser("diff", help="compare two runs' results files (exit 1 when anything regressed)")
    diff.add_argument("old", metavar="OLD.json", help="the earlier run's results file")
    diff.add_argument("new", metavar="NEW.json", help="the later run's results file")
    diff.add_argument("--markdown", action="store_true", help="a summary fit for a pull-request comment")

    check = commands.add_parser("check-report", help="open an HTML report in headless Chromium: what is wrong")
    check.add_argument("report", metavar="REPORT.html", help="a pytest-html report of a run")
    check.add_argument("--viewport", type=parse_viewport, default=(1366, 768), metavar="WxH",
                       help="the first screen the verdict summary must be in (default 1366x768)")
    check.add_argument("--timeout", type=float, default=120.0, metavar="S",
                       help="seconds for the whole check (default 120)")
    check.add_argument("--screenshot", metavar="PNG", help="save the first screen as a PNG file")
    return parser


def parse_viewport(text: str) -> tuple[int, int]:
    width, sep, height = text.partition("x")
    if not (sep and width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 1366x768, not {text!r}")
    return int(width), int(height)


def parse_auth(items: Sequence[str]) -> dict[str, str] | None:
    auth: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            # never echo the argument: it may hold a secret
            raise CliError("malformed --auth argument: expected KEY=VALUE, e.g. --auth username=admin")
        auth[key] = value
    return auth or None


def cmd_faults(args: argparse.Namespace) -> int:
    try:
        cls = emulator_class(args.device)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    for name, sentence in cls.FAULTS.items():
        print(f"{name}: {sentence}")
    return 0


def cmd_emulate(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise CliError(f"port {args.port} out of range 0..65535")
    auth = parse_auth(args.auth)
    stop = threading.Event()
    previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            running = start_emulator(args.device, faults=args.fault, auth=auth, host=args.host,
                                     port=args.port, verbose=args.verbose, reading=args.reading,
                                     boot_seconds=args.boot_seconds, tls=args.tls)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        except OSError as exc:
            raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
        try:
            print(f"READY {running.url}" + (f" CA={running.ca_file}" if running.ca_file else ""), flush=True)
            while not stop.wait(0.1):
                pass
        finally:
            running.stop()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    import requests

    from conformlab import device_lock, journal, secrets
    from conformlab.client import DeviceError, origin_of
    from conformlab.dut import RestoreError, connect
    from conformlab.targets import TargetsError, load_targets

    try:
        [target] = load_targets(Path(args.targets_file), [args.target])
    except TargetsError as exc:
        raise CliError(str(exc)) from None
    if target.emulator:
        print(f"{target.name}: an emulator target starts fresh each run; there is nothing to restore")
        return 0
    secrets.register(*target.secrets())
    try:
        found = journal.Journal.load(target.name)
    except journal.JournalError as exc:
        raise CliError(str(exc)) from None
    if found is None:
        print(f"{target.name}: nothing to restore (no journal at {journal.file_for(target.name)})")
        return 0

    def fail(text: str) -> int:
        print(secrets.mask(f"conformlab: {target.name}: {text}").replace("\n", " "), file=sys.stderr)
        return 1

    try:
        held = device_lock.hold(origin_of(target.base_url), target.name)
    except device_lock.DeviceBusy as exc:
        return fail(f"{exc}; the journal is kept")
    dut = connect(target)
    try:
        lines = dut.put_back_journal()
    except (RestoreError, DeviceError, requests.RequestException) as exc:
        return fail(str(exc))
    finally:
        dut.close()
        held.close()
    for line in lines:
        print(secrets.mask(f"{target.name}: {line}"))
    print(f"{target.name}: the device holds what the interrupted run found; its journal is removed")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from conformlab import diff, secrets

    documents = []
    for path in (args.old, args.new):
        try:
            documents.append(diff.load(path))
        except ValueError as exc:
            raise CliError(secrets.mask(str(exc)).replace("\n", " ")) from None
    for document in documents:  # the files are masked already; a value under a secret-looking key stays so
        for target in document["targets"]:
            secrets.register_fields(target.get("identity"))
    comparison = diff.compare(*documents)
    print(diff.render_markdown(comparison) if args.markdown else diff.render_text(comparison), end="")
    return 1 if diff.regressed(comparison) else 0


def cmd_check_report(args: argparse.Namespace) -> int:
    from conformlab import secrets
    from conformlab.report_check import BrowserUnavailable, check_report

    try:
        check = check_report(args.report, viewport=args.viewport, timeout=args.timeout, screenshot=args.screenshot)
    except (FileNotFoundError, BrowserUnavailable) as exc:
        raise CliError(str(exc)) from None
    except TimeoutError as exc:  # a report too big to load in time is a problem of the report
        print(secrets.mask(str(exc)))
        return 1
    problems = check.problems()
    for line in problems:  # texts of the page: masked like every other output, one line each
        print(secrets.mask(line).replace("\n", " "))
    print(check.summary())
    return 1 if problems else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {"faults": cmd_faults, "emulate": cmd_emulate, "restore": cmd_restore, "diff": cmd_diff,
                "check-report": cmd_check_report}
    try:
        return commands[args.command](args)
    except CliError as exc:
        print(f"conformlab: error: {exc}", file=sys.stderr)
        return 2
