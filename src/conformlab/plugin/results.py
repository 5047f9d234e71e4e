"""The run's results for machines: `reports/<stem>.json`, beside the HTML and JUnit reports.

Format "conformlab-results", version 1, documented by `schemas/results-v1.schema.json` (JSON Schema
draft 2020-12): per target (sorted by name) its targets-file entry without secrets, what its device
said of itself (the identity answer, the firmware, the capabilities it declares), request count and
pacing, the verdict per requirement (sorted by id) with its checks, their outcomes and durations, the
CONFLICT entries and firmware rules applied, the notices and the security findings; then the checks
tied to no target or requirement. Readers ignore members they do not know; a change that old readers would misread
raises `version`.

Registered next to Reporting ("conformlab-results") on every process of an active run; it collects the
checks' durations and what the devices said of themselves from the reports (which reach the xdist controller), and
writes the file on the controller at the end of the session, after the exit status is known. Every
string is masked as it is written (conformlab.masking masks the file once more).

The document is built once (`Results.document`), when the verdicts are final, and shared: the file
is written from it, and with `--baseline OLD.json` it is compared with that earlier run's document
(conformlab.diff.compare) before pytest-html writes its report (which shows the comparison on top,
conformlab.plugin.html_report) and the terminal summary prints it. A regression against the baseline
makes the exit status 1 (`gated_exit_status`, applied here: the one place besides Reporting that sets it).

`results_document()` builds the document in memory; `load_results(path)` reads and validates one.
"""

from __future__ import annotations

import datetime
import functools
import json
import os
from collections import defaultdict
from importlib import metadata
from pathlib import Path

import jsonschema
import pytest

from conformlab import diff, secrets
from conformlab.plugin.parallel import is_controller
from conformlab.plugin.summary import properties
from conformlab.requirements import all_requirements
from conformlab.schema import project_root
from conformlab.targets import DESCRIPTIVE_FIELDS, IDENTITY_KEYS, Target
from conformlab.verdicts import VERDICTS, gate_failed

FORMAT = "conformlab-results"
VERSION = 1
SCHEMA_FILE = "results-v1.schema.json"
SET = "(set)"  # what a secret auth value is written as
KEY_FIELDS = ("name", "access", "permissions", "locations", "expired")  # DESCRIPTIVE_FIELDS, in this order
assert set(KEY_FIELDS) == DESCRIPTIVE_FIELDS


# -- the document -----------------------------------------------------------------------------------


def results_document(reporting, targets: list[Target], durations: dict[str, float], said: dict[str, dict],
                     started: datetime.datetime, finished: datetime.datetime, exit_status: int = 0,
                     requests: dict[str, int] | None = None) -> dict:
    """The results document (version 1) of a run, every string masked.

    `reporting`: the controller's conformlab.plugin.summary.Reporting (its book and notes);
    `durations`: check node id -> seconds (setup + call + teardown); `said`: target name -> what its
    device said of itself (DeviceUnderTest.said: "identity", "firmware", "capabilities");
    `started`/`finished`: aware UTC datetimes; `exit_status`: the run's; `requests`: target name -> API
    requests its checks sent, where a check recorded it ("api_requests")."""
    book = reporting.book
    known = all_requirements()
    rows: dict[str, list] = defaultdict(list)
    for row in book.rows():
        rows[row.target].append(row)
    notes = reporting.notes
    names = {t.name for t in targets}
    document = {
        "format": FORMAT,
        "version": VERSION,
        "run": {"started": _iso(started), "finished": _iso(finished),
                "seconds": round(max((finished - started).total_seconds(), 0.0), 3),
                "conformlab": _version(), "exit_status": int(exit_status)},
        "targets": [],
        "unattributed_checks": sorted((_check(o, durations, names) for o in book.plain), key=lambda c: c["id"]),
    }
    for target in sorted(targets, key=lambda t: t.name):
        requirements = []
        for row in sorted(rows.get(target.name, []), key=lambda r: r.rid):
            req = known.get(row.rid)
            checks = sorted((_check(o, durations, names) for o in book.outcomes[(row.target, row.rid)]), key=lambda c: c["id"])
            waiver = target.waiver(row.rid) if row.verdict.waived else None
            entry = {"id": row.rid, "verdict": row.verdict.word, "waived": bool(row.verdict.waived),
                     "waiver": _waiver(waiver) if waiver else None,
                     "section": req.section if req else "", "text": req.text if req else "",
                     "source": req.source if req else "", "checks": checks}
            if req is not None and req.conflict:  # a CONFLICT entry: both sentences, and the one followed
                followed = reporting.followed.get((row.target, row.rid), set())
                entry["conflict"] = {"readings": [{"name": r.name, "source": r.source, "text": r.text} for r in req.conflict],
                                     "follows": [r.name for r in req.conflict if r.name in followed]}
            if reporting.rules.get((row.target, row.rid)):
                entry["firmware_rules"] = list(reporting.rules[(row.target, row.rid)])
            requirements.append(entry)
        counts = {word: sum(1 for r in requirements if r["verdict"] == word) for word in VERDICTS}
        document["targets"].append({
            "name": target.name, "device": target.device, "title": target.profile.title,
            "document": target.profile.document, "entry": target_entry(target),
            "identity": said.get(target.name, {}).get("identity"),
            "requests": (requests or {}).get(target.name),  # the end-of-run check records it (None: not reached)
            "pacing": next((text for t, _, text in notes.get("pacing", []) if t == target.name), None),
            "counts": {word: n for word, n in counts.items() if n},
            "requirements": requirements,
            "notices": [text for t, _, text in notes.get("notice", []) if t == target.name],
            "security_findings": [text for t, _, text in notes.get("security_finding", []) if t == target.name],
            **{key: value for key, value in said.get(target.name, {}).items() if key != "identity"},  # firmware, capabilities
        })
    return secrets.mask_value(document)


def target_entry(target: Target) -> dict:
    """The targets-file entry as parsed, without secrets: a secret auth value is "(set)", the user's
    name stays, a structured credential (WisDM's keys) keeps only what describes it."""
    auth = {}
    for key, value in sorted(target.auth.items()):
        if key in IDENTITY_KEYS and isinstance(value, str):
            auth[key] = value
        elif isinstance(value, list):
            auth[key] = [{f: item[f] for f in KEY_FIELDS if f in item} if isinstance(item, dict) else SET for item in value]
        else:
            auth[key] = SET if value else ""
    return {"device": target.device, "base_url": target.base_url, "emulator": target.emulator,
            "faults": list(target.faults), "destructive": target.destructive, "timeout": target.timeout,
            "waive": [{"id": w.id, **_waiver(w)} if w.reason or w.until else w.id for w in target.waivers],
            "reading": target.reading, "tls": target.tls, "firmware": target.firmware, "auth": auth,
            "options": _plain(target.options)}


def _waiver(waiver) -> dict:
    return {"reason": waiver.reason, "until": waiver.until.isoformat() if waiver.until else None}


def _check(outcome, durations: dict[str, float], targets: set[str]) -> dict:
    """One check's entry; its id without the "@<target>" xdist's loadgroup adds (the same with and without workers)."""
    head, at, group = outcome.check.rpartition("@")
    return {"id": head if at and group in targets else outcome.check, "outcome": outcome.kind, "reason": outcome.reason,
            "seconds": round(durations.get(outcome.check, 0.0), 4)}


def _plain(value):
    """A targets-file value as JSON can hold it."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@functools.cache
def _version() -> str:
    try:
        return metadata.version("conformlab")
    except metadata.PackageNotFoundError:
        return "unknown"


# -- reading ----------------------------------------------------------------------------------------


def schema_path() -> Path:
    return project_root() / "schemas" / SCHEMA_FILE


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def validate(document, where: str = "results") -> None:
    """Raise ValueError (one line: where, and what is wrong) unless `document` is a valid results
    document of a version this conformlab reads."""
    if not isinstance(document, dict):
        raise ValueError(f"{where}: not a results file (a JSON object with \"format\": \"{FORMAT}\" expected)")
    if document.get("format") != FORMAT:
        raise ValueError(f"{where}: not a results file (\"format\" is {json.dumps(document.get('format'))}, "
                         f"expected \"{FORMAT}\")")
    version = document.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
        raise ValueError(f"{where}: results format version {version} is newer than this conformlab reads "
                         f"(version {VERSION}); update conformlab")
    error = jsonschema.exceptions.best_match(_validator().iter_errors(document))
    if error is not None:
        at = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path) or "the document"
        message = " ".join(error.message.split())
        if len(message) > 200:
            message = message[:197] + "..."
        raise ValueError(f"{where}: not a valid results file: at {at.lstrip('.')}: {message}")


def load_results(path) -> dict:
    """Read a results file and validate it against schemas/results-v1.schema.json. Raises ValueError
    with one line naming the file and the problem (unreadable, not JSON, not a results file, a newer
    version, a schema violation)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}") from None
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{path}: not JSON: {exc}") from None
    validate(document, str(path))
    return document


def write_results(path: Path, document: dict) -> None:
    """Write the document (a new file renamed over the old: never half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fresh.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(fresh, path)


# -- the plugin -------------------------------------------------------------------------------------


def gated_exit_status(status: int, comparison: diff.Comparison | None) -> int:
    """The run's exit status with the baseline's gate: 1 when something regressed against it and the
    verdicts gave 0 (or NO_VERDICT: a failure outranks an error, as in conformlab.verdicts); pytest's
    own 2 (interrupted), 3, 4 and 5 are kept."""
    return gate_failed(status) if comparison is not None and diff.regressed(comparison) else status


class Results:
    """Collects durations and what the devices said of themselves from the checks' reports; writes the
    results file on the controller at the end of the session."""

    def __init__(self, config, reporting, targets: list[Target], baseline: dict | None = None, baseline_name: str = ""):
        self.config = config
        self.reporting = reporting
        self.targets = targets
        self.baseline = baseline  # --baseline: the earlier run's document (validated at configure time)
        self.baseline_name = baseline_name  # its file name, for the headings
        self.comparison: diff.Comparison | None = None  # the baseline against this run, at the end (controller)
        self._document: dict | None = None
        self.exit_status: int | None = None  # the run's, after the baseline's gate (controller, at the end)
        self.started = datetime.datetime.now(datetime.timezone.utc)
        self.durations: dict[str, float] = defaultdict(float)
        self.said: dict[str, dict] = {}  # target -> what its device said of itself (DeviceUnderTest.said)
        self.requests: dict[str, int] = {}  # target -> "api_requests" its end-of-run check recorded
        self.path: Path | None = None  # where the file was written (conformlab.masking masks it again)

    def pytest_runtest_logreport(self, report):
        if report.when not in ("setup", "call", "teardown"):
            return
        self.durations[report.nodeid] += max(float(getattr(report, "duration", 0.0) or 0.0), 0.0)
        props = properties(report)
        name = str(props["target"][0]) if props.get("target") else ""
        if name and props.get("api_requests") and str(props["api_requests"][-1]).isdigit():
            self.requests[name] = max(self.requests.get(name, 0), int(props["api_requests"][-1]))
        if name and props.get("device_said") and name not in self.said:
            try:
                self.said[name] = json.loads(str(props["device_said"][0]))
            except ValueError:
                pass  # not this run's JSON (masking cannot break it; a foreign plugin could): nothing said

    def results_path(self) -> Path | None:
        """--results-json, else the JUnit report's (or else the HTML report's) path with .json."""
        config = self.config
        option = config.getoption("conformlab_results_json", None)
        if option:
            path = Path(os.path.expandvars(option)).expanduser()
            return path if path.is_absolute() else config.invocation_params.dir / path
        for name in ("xmlpath", "htmlpath"):
            report = config.getoption(name, None)
            if report:  # resolved as junitxml and pytest-html do: against the working directory
                return Path(os.path.abspath(os.path.expanduser(os.path.expandvars(report)))).with_suffix(".json")
        return None

    def document(self, session) -> dict:
        """The run's results document, built once (the first call, in pytest_sessionfinish: the verdicts
        and Reporting's exit status are final) and shared by the file and the baseline comparison."""
        if self._document is None:
            finished = datetime.datetime.now(datetime.timezone.utc)
            self._document = results_document(self.reporting, self.targets, self.durations, self.said,
                                              self.started, finished, int(session.exitstatus), self.requests)
        return self._document

    @pytest.hookimpl(tryfirst=True)  # before pytest-html's (trylast) writes the report that shows the comparison
    def pytest_sessionfinish(self, session):
        # Inside Reporting's wrapper (which set the exit status) and conformlab.masking's (which masks the file).
        if not is_controller(self.config) or self.config.getoption("collectonly", False):
            return
        path = self.results_path()
        if path is None and self.baseline is None:
            return
        document = self.document(session)
        if self.baseline is not None:
            self.comparison = diff.compare(self.baseline, document)
            session.exitstatus = gated_exit_status(session.exitstatus, self.comparison)
            document["run"]["exit_status"] = int(session.exitstatus)  # the file records the status the run exits with
        self.exit_status = int(session.exitstatus)
        if path is not None:
            write_results(path, document)
            self.path = path

    @pytest.hookimpl(trylast=True)  # after the requirements, next to "Generated html report"
    def pytest_terminal_summary(self, terminalreporter):
        if self.comparison is not None:
            self._write_comparison(terminalreporter)
        if self.path is not None:
            terminalreporter.write_sep("-", f"results file: {self.path}")

    def _write_comparison(self, tr) -> None:
        """The baseline section: conformlab diff's text, and what it does to the exit status."""
        comparison = self.comparison
        worse = diff.regressed(comparison)
        tr.write_sep("=", "baseline", red=worse, bold=worse)
        tr.write_line(secrets.mask(f"compared with {self.baseline_name}"))
        for line in diff.render_text(comparison).rstrip("\n").splitlines():
            tr.write_line(secrets.mask(line), red=line.startswith(diff.REGRESSED))
        if worse:
            n = len(comparison.of(diff.REGRESSED))
            tr.write_line(f"{n} requirement{'s' if n != 1 else ''} regressed against the baseline "
                          f"{secrets.mask(self.baseline_name)}: exit status {self.exit_status}",
                          red=True, bold=True)
