"""The pytest plugin: targets in, per-requirement verdicts and reports out.

Loaded with `-p conformlab.plugin` (pyproject addopts) so that `--target NAME` is known before pytest
looks for test paths. It is active only when the run collects from suites/ (the harness's own tests
in tests/ run without targets). pytest takes its hooks and fixtures from the names of this module;
each is written in the module of its concern:

- options: --target/--targets-file, the restart with the project's ini file, and configure: the
  targets file read (one clear line and exit 4 on any problem), secrets registered, default report
  paths.
- parallel: one pytest-xdist worker per target, each target's checks together on one worker.
- progress: while the terminal is silent, each running target's checks done of total, the requirement
  being checked and how long it waits (rate budget, Retry-After); --progress, --progress-after.
- collection: only the selected targets' device suites; every check parametrized per target; markers
  turned into NOT VERIFIED skips (destructive, emulator_only), in one place; test ids masked.
- fixtures: target -> device under test (emulator started, client, reachability, snapshot) -> device.
- outcomes: each check's report: its outcome and the requirement its failure belongs to (a failure
  of a waived requirement becomes an expected failure), transcripts of failing checks, secrets masked.
- summary, html_report: the per-requirement verdicts (conformlab.verdicts) in the terminal, the JUnit
  report and the exit status, with the CONFLICT entries and the firmware rules applied; the pytest-html
  additions (a report that can be mailed).
- annotated: the documents, annotated with the verdicts, and their coverage (end of the HTML report).
- results: reports/<name>.json for machines, and the comparison with --baseline.
"""

from conformlab.plugin.collection import (
    pytest_collection_modifyitems, pytest_generate_tests, pytest_ignore_collect, pytest_make_parametrize_id,
)
from conformlab.plugin.fixtures import _device_session, device, notice, report_extra, security_finding, target
from conformlab.plugin.options import ACTIVE, TARGETS, pytest_addoption, pytest_configure, pytest_load_initial_conftests
from conformlab.plugin.outcomes import pytest_runtest_makereport, pytest_runtest_setup

__all__ = [
    # hooks
    "pytest_addoption", "pytest_load_initial_conftests", "pytest_configure", "pytest_ignore_collect",
    "pytest_generate_tests", "pytest_make_parametrize_id", "pytest_collection_modifyitems",
    "pytest_runtest_setup", "pytest_runtest_makereport",
    # fixtures
    "target", "_device_session", "device", "notice", "security_finding", "report_extra",
    # stash keys other modules read (conformlab.interrupt: TARGETS)
    "TARGETS", "ACTIVE",
]
