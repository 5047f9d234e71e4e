"""The pytest plugin: targets in, per-requirement verdicts and an HTML report out.

Loaded with `-p conformlab.plugin` (pyproject addopts) so that `--target NAME` is known before pytest
looks for test paths. It is active only when the run collects from suites/ (the harness's own tests
in tests/ run without targets).

- configure: read targets.toml (one clear line and exit 4 on any problem), default report paths.
- collection: only the selected targets' device suites; every check parametrized per target; markers
  turned into NOT VERIFIED skips (destructive, emulator_only), in one place.
- fixtures: target -> device under test (emulator started, client, reachability, snapshot) -> device.
- reports: each check's outcome and the requirement its failure belongs to (a failure of a waived
  requirement becomes an expected failure), transcripts of failing checks, secrets masked; the
  per-requirement verdicts, summaries and exit status are in verdicts.py and reporting.py.
"""

from __future__ import annotations

import datetime
import functools
import os
import sys
from pathlib import Path

import pytest

from conformlab import device_lock, interrupt, journal, masking, secrets, verdicts
from conformlab.client import DeviceError, DeviceWentAway, curl_line, origin_of, render_exchange
from conformlab.dut import DeviceUnderTest, RestoreError, connect
from conformlab.profiles import PROFILES
from conformlab.reporting import SUMMARY_NOTES, HtmlReport, Reporting  # noqa: F401 -- SUMMARY_NOTES: re-exported
from conformlab.requirements import all_requirements
from conformlab.targets import Target, TargetsError, load_targets

TARGETS = pytest.StashKey[list]()
ACTIVE = pytest.StashKey[bool]()
EXCHANGES = pytest.StashKey[tuple]()
EXTRAS = pytest.StashKey[list]()
LAST_CHECK = "test_left_as_found"  # the end-of-run check runs after every other check of its target
# Without -n, one worker per target, at most this many: a worker is a process with its own emulator
# and threads; more targets share workers, one target after the other (-n N sets the cap).
MAX_DEFAULT_WORKERS = 8


def pytest_addoption(parser):
    group = parser.getgroup("conformlab", "conformance targets")
    group.addoption("--target", action="append", dest="conformlab_targets", default=[], metavar="NAME",
                    help="run against this target of the targets file (repeatable); default: every emulator target")
    group.addoption("--targets-file", dest="conformlab_targets_file", default="targets.toml", metavar="PATH",
                    help="the targets file (default: ./targets.toml)")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    _restart_with_project_ini(early_config)


def _restart_with_project_ini(config) -> None:
    """pytest picks its rootdir and ini file from the arguments before any plugin is loaded, so in
    `--targets-file /elsewhere/lab.toml` it takes the file for a test path and looks for its
    configuration in /elsewhere. When that happened, start once more naming the project's ini."""
    ns = config.known_args_namespace
    ours = ns.conformlab_targets or ns.conformlab_targets_file != "targets.toml"
    if config.inipath is not None or not ours or os.environ.get("CONFORMLAB_RESTARTED"):
        return
    if tuple(sys.argv[1:]) != tuple(config.invocation_params.args):
        return  # pytest.main() from another program: not ours to restart
    for folder in (config.invocation_params.dir, *config.invocation_params.dir.parents):
        ini = folder / "pyproject.toml"
        if ini.is_file() and (folder / "suites").is_dir() and "conformlab.plugin" in ini.read_text(errors="replace"):
            os.environ["CONFORMLAB_RESTARTED"] = "1"
            capture = config.pluginmanager.getplugin("capturemanager")
            if capture is not None:
                capture.stop_global_capturing()  # give the new process the real stdout/stderr
            sys.stdout.flush()
            sys.stderr.flush()
            os.execv(sys.executable, [sys.executable, "-m", "pytest", "-c", str(ini), *sys.argv[1:]])


def _runs_suites(config) -> bool:
    suites = (config.rootpath / "suites").resolve()
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        if path == suites or suites in path.parents or path in suites.parents:
            return True
    return False


def _is_controller(config) -> bool:
    return not hasattr(config, "workerinput")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    for line in ("req(*ids): documented requirements the check verifies",
                 "destructive(why): runs only on targets with destructive = true",
                 "emulator_only(why): needs emulator-only controls; skipped on real hardware",
                 "slow(why): takes minutes on real hardware (deselect with -m 'not slow')"):
        config.addinivalue_line("markers", line)
    config.stash[ACTIVE] = _runs_suites(config)
    if not config.stash[ACTIVE]:
        return
    interrupt.install(config)  # Ctrl-C and SIGTERM: stop, put back, exit 2 (conformlab.interrupt)
    path = Path(config.getoption("conformlab_targets_file"))
    if not path.is_absolute():
        path = config.invocation_params.dir / path
    try:
        targets = load_targets(path, config.getoption("conformlab_targets"))
        _check_waivers(targets)
    except TargetsError as exc:
        raise pytest.UsageError(str(exc)) from None
    for target in targets:
        if target.auth:
            PROFILES[target.device].make_auth(target.auth)  # registers the secrets it holds
        secrets.register(*target.secrets())
    config.stash[TARGETS] = targets
    config.pluginmanager.register(Reporting(config, targets), "conformlab-reporting")
    if config.pluginmanager.hasplugin("html"):
        config.pluginmanager.register(HtmlReport(config, targets), "conformlab-html")

    if _is_controller(config):
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        names = "_".join(t.name for t in targets)
        if len(names) > 100:  # file names have a length limit; the report itself lists every target
            names = f"{targets[0].name}-and-{len(targets) - 1}-more"
        reports = config.rootpath / "reports"
        if config.option.htmlpath is None and config.pluginmanager.hasplugin("html"):
            config.option.htmlpath = str(reports / f"{names}-{stamp}.html")
            config.option.self_contained_html = True
        if getattr(config.option, "xmlpath", None) is None:
            config.option.xmlpath = str(reports / f"{names}-{stamp}.xml")
        try:
            from pytest_metadata.plugin import metadata_key

            meta = config.stash[metadata_key]
            meta["Targets"] = {t.name: t.describe() for t in targets}
        except (ImportError, KeyError):
            pass
    _keep_targets_together(config, len(targets))
    masking.install(config)  # last step before any output: terminal, logs, report files (before the terminal reporter exists)


def _keep_targets_together(config, target_count: int) -> None:
    """A target's checks must stay together on one worker: its state and its rate budget are shared.
    Several targets are independent devices, so without `-n` they run side by side, one worker each
    up to MAX_DEFAULT_WORKERS (a device paced by its rate budget then does not hold up the others);
    `-n N` caps the workers, `-n 0` runs the targets in turn, `--tx` (xdist's remote execution)
    places the workers.

    The controller schedules by xdist_group; a worker tags its items with their group only when it
    knows the run is a loadgroup run, and xdist resets a worker's `dist` option before this hook
    runs, so the worker reads the option as it was given."""
    if _is_controller(config):
        if (target_count > 1 and config.pluginmanager.hasplugin("xdist") and config.option.numprocesses is None
                and not getattr(config.option, "tx", None) and not config.option.usepdb and not config.option.collectonly):
            workers = min(target_count, MAX_DEFAULT_WORKERS)
            config.option.numprocesses = workers
            config.option.tx = ["popen"] * workers  # what xdist derives from -n, before this hook
        if getattr(config.option, "numprocesses", None) or getattr(config.option, "tx", None):
            dist = getattr(config.option, "dist", "no")
            if dist in ("load", "no"):
                config.option.dist = "loadgroup"
            elif dist != "loadgroup":
                raise pytest.UsageError(f"--dist {dist} would spread one target's checks over several workers (its "
                                        "state and rate budget are shared); leave --dist out: loadgroup is used")
    elif getattr(config.known_args_namespace, "dist", "no") in ("load", "no", "loadgroup"):
        config.option.loadgroup = True


def _check_waivers(targets: list[Target]) -> None:
    known = all_requirements()
    for target in targets:
        for rid in target.waive:
            if rid not in known or known[rid].device not in (target.device, None):
                raise TargetsError(f'target "{target.name}": key "waive": no requirement "{rid}" for {target.device}')


def _device_of_path(path: Path) -> str | None | bool:
    """The device whose suite holds `path`; None for shared suites; False outside suites/."""
    parts = path.parts
    if "suites" not in parts:
        return False
    folder = parts[parts.index("suites") + 1] if len(parts) > parts.index("suites") + 1 else ""
    for profile in PROFILES.values():
        if profile.suite == folder:
            return profile.name
    return None


def pytest_ignore_collect(collection_path, config):
    if not config.stash.get(ACTIVE, False):
        return None
    device = _device_of_path(collection_path)
    if device and device not in {t.device for t in config.stash[TARGETS]}:
        return True
    return None


def pytest_generate_tests(metafunc):
    config = metafunc.config
    if "target" not in metafunc.fixturenames or not config.stash.get(ACTIVE, False):
        return
    device = _device_of_path(metafunc.definition.path)
    targets = [t for t in config.stash[TARGETS] if not device or t.device == device]
    metafunc.parametrize("target", targets, ids=[t.name for t in targets], indirect=True, scope="session")


def _target_of(item) -> Target | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("target") if callspec else None


def requirement_ids(item) -> list[str]:
    ids = []
    for mark in item.iter_markers("req"):
        ids.extend(mark.args)
    return list(dict.fromkeys(ids))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    if not config.stash.get(ACTIVE, False):
        return
    known = all_requirements()
    for item in items:
        # Masked here, once, where every xdist worker does the same: a report's id must be its item's.
        item._nodeid = secrets.mask(item._nodeid)
        target = _target_of(item)
        ids = requirement_ids(item)
        if target is None:
            continue
        if not ids:
            raise pytest.UsageError(f"{item.nodeid}: a check must name its requirement with @pytest.mark.req(...)")
        for rid in ids:
            if rid not in known:
                raise pytest.UsageError(f"{item.nodeid}: requirement {rid} is not in any requirements.yaml")
        item.add_marker(pytest.mark.xdist_group(target.name))
        item.obj = _once_more_after_an_outage(item.obj, item)
        item.user_properties.append(("requirement", " ".join(ids)))
        item.user_properties.append(("target", target.name))
        # Waivers are applied per failure, to the requirement it belongs to (pytest_runtest_makereport).
        for mark in item.iter_markers("destructive"):
            if not target.destructive:
                item.add_marker(verdicts.not_verified_mark(f"destructive ({mark.args[0] if mark.args else 'changes the device'}); "
                                                           f"target {target.name} has destructive = false"))
        for mark in item.iter_markers("emulator_only"):
            if not target.emulator:
                item.add_marker(verdicts.not_verified_mark(f"needs an emulator-only control ({mark.args[0] if mark.args else ''}); "
                                                           f"{target.name} is real hardware"))
    # A target's checks stay together (one session, one emulator at a time on a worker that runs
    # several targets), and its end-of-run check goes last among them.
    order = {target.name: index for index, target in enumerate(config.stash[TARGETS])}

    def place(item):
        target = _target_of(item)
        return (order[target.name] if target is not None else -1, getattr(item, "originalname", "") == LAST_CHECK)

    items.sort(key=place)


def _once_more_after_an_outage(function, item):
    """A check during which the device went away by itself (a reboot the harness did not cause)
    saw the outage, not the device's behaviour: once the device answers again it is run once more,
    and the report says so. A second outage in the same check ends it as ERROR (DeviceWentAway)."""

    @functools.wraps(function)
    def check(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except DeviceWentAway as outage:
            item.user_properties.append(("notice", f"{outage}: the check ran once more after it was back"))
            device = item.funcargs.get("device")
            if device is not None:
                device.outages.append(outage.seconds)
            return function(*args, **kwargs)

    return check


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def target(request) -> Target:
    return request.param


@pytest.fixture(scope="session")
def _device_session(target: Target):
    emulator = None
    held = None
    if target.emulator:
        from conformlab.emulators import start_emulator

        emulator = start_emulator(target.device, faults=target.faults, auth=target.auth or None, options=target.options,
                                  reading=target.reading, boot_seconds=target.boot_seconds)
    dut = connect(target, emulator)
    client = dut.client
    try:
        try:
            if not target.emulator:
                held = device_lock.hold(origin_of(target.base_url), target.name)
            _identify(dut)
            dut.recover_journal()  # a run that died left values to put back: first of all
            dut.take_snapshot()
        except _Unusable as exc:
            dut.unusable = str(exc)
        except device_lock.DeviceBusy as exc:
            dut.unusable = f"target {target.name}: {exc}"
        except RestoreError as exc:
            dut.unusable = (f"target {target.name}: could not put back what an interrupted run recorded ({exc}); "
                            f"see `conformlab restore {target.name}`")
        except (AssertionError, DeviceError) as exc:
            dut.unusable = f"target {target.name}: cannot read the state to restore at the end: {exc}"
        if dut.unusable:
            client.gone = client.gone or dut.unusable  # nothing more is sent to it
        yield dut
    finally:
        if not dut.unusable:
            dut.finish_journal()
        dut.close()  # logs out where the auth holds a login session (MC252)
        if emulator:
            emulator.stop()
        if held:
            held.close()


class _Unusable(Exception):
    """The target cannot be tested at all: one line, reported once as its ERROR."""


def _identify(dut: DeviceUnderTest) -> None:
    """Is the device there, and is it the device the target names? Its documented version or info
    endpoint must answer a JSON object with the keys the document gives it."""
    target, profile, client = dut.target, dut.profile, dut.client
    identity = profile.identity
    path = identity.path if identity else profile.probe_path
    try:
        answer = client.get(path)
    except DeviceError as exc:
        raise _Unusable(f"target {target.name}: {str(exc).removeprefix(f'{target.name}: ')}") from None
    if answer.status_code in (401, 403):
        raise _Unusable(f"target {target.name}: the device refused the configured credentials ({answer.status_code} on "
                        f"GET {profile.prefix}{path}); check [targets.{target.name}.auth]")
    if identity is None:
        return
    article = "an" if profile.title[:1].upper() in "AEIOU" else "a"
    what = f"the device at {client.origin} is not {article} {profile.title}: GET {profile.prefix}{path} answered"
    if answer.status_code != 200:
        raise _Unusable(f"target {target.name}: {what} {answer.status_code}")
    try:
        body = answer.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        kind = answer.headers.get("Content-Type", "no Content-Type").split(";")[0]
        raise _Unusable(f"target {target.name}: {what} 200 with {kind}, not a JSON object")
    missing = [key for key in identity.keys if key not in body]
    if missing:
        raise _Unusable(f"target {target.name}: {what} 200 without the documented {', '.join(missing)}")


@pytest.fixture
def device(_device_session: DeviceUnderTest, request, notice) -> DeviceUnderTest:
    """The device under test; the exchanges of this check are kept for its report. A target that
    cannot be tested at all (unreachable, not this device, busy) fails its first check with one line
    (its one ERROR); a device that did not come back gets no more requests; the remaining checks of
    either are not run (ERROR, the same line each, collapsed into one in the summaries)."""
    if _device_session.unusable and not _device_session.unusable_reported:
        _device_session.unusable_reported = True
        pytest.fail(_device_session.unusable, pytrace=False)  # the target's one ERROR: one cause, one line
    if _device_session.client.gone:
        verdicts.unreachable(f"not run: {_device_session.client.gone}")
    request.node.stash[EXCHANGES] = (_device_session.client, _device_session.client.mark())
    _device_session.notice = notice
    return _device_session


@pytest.fixture
def security_finding(record_property):
    """Report a security finding: the check passes (the behaviour is documented) but the report shows it."""
    def report(text: str) -> None:
        record_property("security_finding", text)
    return report


@pytest.fixture
def notice(record_property):
    """Tell the user something the run did or could not do (e.g. "heap protection was not
    triggered", "the device was re-keyed"): shown in the terminal summary and at the top of the report."""
    def report(text: str) -> None:
        record_property("notice", text)
    return report


@pytest.fixture
def report_extra(request):
    """Attach evidence to this check's HTML report: report_extra(html=...) or report_extra(text=..., name=...)."""
    def attach(*, html: str | None = None, text: str | None = None, name: str = "") -> None:
        request.node.stash.setdefault(EXTRAS, []).append((name, html, text))
    return attach


# -- reports ------------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True, tryfirst=True)  # pytest-html's wrapper is outside it: masking.py masks again later
def pytest_runtest_makereport(item, call):
    report = yield
    if not item.config.stash.get(ACTIVE, False):
        return report
    recorded = item.stash.get(EXCHANGES, None)
    if recorded and report.failed:
        client, mark = recorded
        exchanges = client.since(mark)
        if exchanges:
            shown = exchanges[-12:]
            text = "\n\n".join(render_exchange(ex) for ex in shown)
            if len(exchanges) > len(shown):
                text = f"({len(exchanges) - len(shown)} earlier exchanges not shown)\n\n" + text
            report.sections.append(("device exchanges", text))
            report.sections.append(("reproduce the last request", curl_line(shown[-1])))
    # The check's outcome, the requirement a failure belongs to, and waivers (per requirement).
    verdicts.judge_phase(item, call, report, requirement_ids(item), _target_of(item), cite=_cite)
    if call.when == "call":
        _attach_extras(item, report)
    _scrub(report)
    return report


def _cite(rid: str) -> str:
    req = all_requirements().get(rid)
    return req.cite() if req else rid


def _attach_extras(item, report) -> None:
    try:
        from pytest_html import extras
    except ImportError:
        return
    for name, html_text, text in item.stash.get(EXTRAS, []):
        if html_text is not None:
            report.extras = [*getattr(report, "extras", []), extras.html(secrets.mask(html_text))]
        if text is not None:
            report.extras = [*getattr(report, "extras", []), extras.text(secrets.mask(text), name=name or "evidence")]


def _scrub(report) -> None:
    """Mask every registered secret in what the report carries (longrepr of any kind, sections,
    properties, extras). Plugins that write later are masked again by conformlab.masking."""
    masking.mask_report(report)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    """What a target's journal recovery put back (in the session set up with this check) goes into
    the report as notices of this check (conformlab.journal)."""
    try:
        return (yield)
    finally:
        while journal.NOTICES:
            item.user_properties.append(("notice", journal.NOTICES.pop(0)))
