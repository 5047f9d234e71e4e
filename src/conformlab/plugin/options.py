"""Options and configuration: --target/--targets-file, the restart with the project's ini file, and
what pytest_configure sets up for a run of the suites (targets read, secrets registered, reports,
masking, interruption, workers).

Reading the targets file fails with one clear line and exit status 4 (pytest's usage error).
"""

from __future__ import annotations

import datetime
import os
import sys
from pathlib import Path

import pytest

from conformlab import interrupt, masking, secrets
from conformlab.plugin.annotated import AnnotatedDocuments
from conformlab.plugin.html_report import HtmlReport
from conformlab.plugin import progress
from conformlab.plugin.parallel import is_controller, keep_targets_together
from conformlab.diff import load as load_baseline
from conformlab.plugin.results import Results
from conformlab.plugin.summary import Reporting
from conformlab.profiles import PROFILES
from conformlab.requirements import all_requirements
from conformlab.targets import Target, TargetsError, load_targets

TARGETS = pytest.StashKey[list]()  # the selected targets, in the order of the command line
ACTIVE = pytest.StashKey[bool]()  # the run collects from suites/ (the own tests in tests/ run without targets)
TARGETS_FILE = "targets.toml"
MARKERS = ("req(*ids): documented requirements the check verifies",
           "destructive(why): runs only on targets with destructive = true",
           "emulator_only(why): needs emulator-only controls; skipped on real hardware",
           "slow(why): takes minutes on real hardware (deselect with -m 'not slow')")


def is_active(config) -> bool:
    return config.stash.get(ACTIVE, False)


def pytest_addoption(parser):
    group = parser.getgroup("conformlab", "conformance targets")
    group.addoption("--target", action="append", dest="conformlab_targets", default=[], metavar="NAME",
                    help="run against this target of the targets file (repeatable); default: every emulator target")
    group.addoption("--targets-file", dest="conformlab_targets_file", default=TARGETS_FILE, metavar="PATH",
                    help="the targets file (default: ./targets.toml)")
    group.addoption("--results-json", dest="conformlab_results_json", default=None, metavar="PATH",
                    help="write the machine-readable results here (default: beside the JUnit/HTML report, same stem, .json)")
    group.addoption("--baseline", dest="conformlab_baseline", default=None, metavar="PATH",
                    help="compare this run's results with an earlier run's results file (as `conformlab diff` does): "
                         "shown on top of the HTML report and in the terminal; a regression makes the exit status 1")
    group.addoption("--progress", dest="conformlab_progress", choices=progress.MODES, default="auto",
                    help="while the terminal is silent, say per target how many checks are done, the requirement being "
                         "checked and what it waits for: auto (a status line redrawn on a terminal, else lines), "
                         "lines (lines starting with 'progress: '), off (default: auto)")
    group.addoption("--progress-after", dest="conformlab_progress_after", type=float, default=10.0, metavar="SECONDS",
                    help="the silence after which progress is shown (default: 10)")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    _restart_with_project_ini(early_config, parser.parse_known_args(args))


def _restart_with_project_ini(config, options) -> None:
    """pytest picks its rootdir and ini file from the arguments before any plugin is loaded, so in
    `--targets-file /elsewhere/lab.toml` it takes the file for a test path and looks for its
    configuration in /elsewhere. When that happened, start once more naming the project's ini."""
    ours = options.conformlab_targets or options.conformlab_targets_file != TARGETS_FILE
    if config.inipath is not None or not ours or os.environ.get("CONFORMLAB_RESTARTED"):
        return
    if tuple(sys.argv[1:]) != tuple(config.invocation_params.args):
        return  # pytest.main() from another program: not ours to restart
    for folder in (config.invocation_params.dir, *config.invocation_params.dir.parents):
        ini = folder / "pyproject.toml"
        if ini.is_file() and (folder / "suites").is_dir() and "conformlab.plugin" in ini.read_text(errors="replace"):
            os.environ["CONFORMLAB_RESTARTED"] = "1"
            # pytest's capture holds fds 1 and 2 while initial conftests load; the new process needs the
            # real ones. No public hook hands them back: the capture plugin's own method does.
            capture = config.pluginmanager.getplugin("capturemanager")
            if capture is not None:
                capture.stop_global_capturing()
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


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    config.stash[ACTIVE] = _runs_suites(config)
    if not is_active(config):
        return
    interrupt.install(config)  # Ctrl-C and SIGTERM: stop, put back, exit 2 (conformlab.interrupt)
    targets = _read_targets(config)
    config.stash[TARGETS] = targets
    reporting = Reporting(config, targets)
    config.pluginmanager.register(reporting, "conformlab-reporting")
    config.pluginmanager.register(Results(config, reporting, targets, *_read_baseline(config)), "conformlab-results")
    if config.pluginmanager.hasplugin("html"):
        config.pluginmanager.register(HtmlReport(reporting, targets), "conformlab-html")
        config.pluginmanager.register(AnnotatedDocuments(reporting, targets), "conformlab-annotated")
    if is_controller(config):
        _default_report_paths(config, targets)
        _describe_targets_in_metadata(config, targets)
    keep_targets_together(config, len(targets))
    progress.install(config)  # where each target stands, while the terminal is silent
    masking.install(config)  # last step before any output: terminal, logs, report files (before the terminal reporter exists)


def _read_targets(config) -> list[Target]:
    """The selected targets, their waivers checked and their secrets registered for masking."""
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
    return targets


def _read_baseline(config) -> tuple[dict | None, str]:
    """--baseline: the earlier run's results document (validated) and the file's name, on the controller;
    a missing or invalid file is a usage error (one line naming the file and what is wrong)."""
    option = config.getoption("conformlab_baseline", None)
    if not option or not is_controller(config):
        return None, ""
    path = Path(os.path.expandvars(option)).expanduser()
    if not path.is_absolute():
        path = config.invocation_params.dir / path
    try:
        document = load_baseline(path)
    except ValueError as exc:
        raise pytest.UsageError(f"--baseline: {exc}") from None
    return document, path.name


def _check_waivers(targets: list[Target]) -> None:
    known = all_requirements()
    for target in targets:
        for rid in (w.id for w in target.waivers):
            if rid not in known or known[rid].device not in (target.device, None):
                raise TargetsError(f'target "{target.name}": key "waive": no requirement "{rid}" for {target.device}')


def _default_report_paths(config, targets: list[Target]) -> None:
    """reports/<targets>-<time>.html and .xml where --html and --junitxml were not given, and the HTML
    report self-contained either way: set here, before pytest-html and junitxml read their options in
    their own pytest_configure."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    names = "_".join(t.name for t in targets)
    if len(names) > 100:  # file names have a length limit; the report itself lists every target
        names = f"{targets[0].name}-and-{len(targets) - 1}-more"
    reports = config.rootpath / "reports"
    if config.pluginmanager.hasplugin("html"):
        config.option.self_contained_html = True  # always one file to mail, --html given or not (no assets/ beside it)
        if config.getoption("htmlpath") is None:
            config.option.htmlpath = str(reports / f"{names}-{stamp}.html")
    if config.getoption("xmlpath", None) is None:
        config.option.xmlpath = str(reports / f"{names}-{stamp}.xml")


def _describe_targets_in_metadata(config, targets: list[Target]) -> None:
    """The targets in pytest-html's environment table (pytest-metadata's documented stash key)."""
    try:
        from pytest_metadata.plugin import metadata_key

        meta = config.stash[metadata_key]
    except (ImportError, KeyError):
        return
    meta["Targets"] = {secrets.mask(t.name): t.describe() for t in targets}  # masking.py masks the values, not keys
