"""The machine-readable results file: reports/<stem>.json beside the HTML and JUnit reports, valid
against schemas/results-v1.schema.json, the same verdicts as the JUnit report, the devices' identity
answers, the targets' entries without secrets, durations; --results-json; the schema's refusals."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from leaks import secret_pieces_in
from test_reports_and_waivers import global_properties

from conformlab.plugin.results import load_results, validate
from conformlab.targets import load_targets
from conformlab.verdicts import CHECK_KINDS, VERDICTS

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ["wcc-emulator", "wisdm-emulator"]
CHECKS = "left_as_found or version"  # a handful of quick checks on both targets


def run_suites(*args):
    command = [sys.executable, "-m", "pytest", "suites", "--targets-file=targets.toml", "-p", "no:cacheprovider",
               "-k", CHECKS, *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def default_run():
    """One run with the default report paths: the three files' texts (the files are removed)."""
    result = run_suites(*(f"--target={name}" for name in TARGETS))
    match = re.search(r"Generated html report: file://(\S+\.html)", result.stdout)
    assert match, result.stdout[-3000:] + result.stderr[-2000:]
    html_path = Path(match.group(1))
    paths = {suffix: html_path.with_suffix(suffix) for suffix in (".html", ".xml", ".json")}
    try:
        assert result.returncode == 0, result.stdout[-3000:]
        assert html_path.parent == ROOT / "reports"
        assert paths[".json"].is_file(), "the JSON file must be written beside the HTML and XML, same stem"
        assert f"results file: {paths['.json']}" in result.stdout
        document = load_results(paths[".json"])
        yield {"document": document, "text": paths[".json"].read_text(), "xml": paths[".xml"],
               "properties": global_properties(paths[".xml"]), "stdout": result.stdout}
    finally:
        for path in paths.values():
            path.unlink(missing_ok=True)


def targets_of(document) -> dict:
    return {t["name"]: t for t in document["targets"]}


def test_the_file_is_beside_the_reports_and_valid(default_run):
    document = default_run["document"]
    assert document["format"] == "conformlab-results" and document["version"] == 1
    assert [t["name"] for t in document["targets"]] == sorted(TARGETS)
    assert document["run"]["exit_status"] == 0 and document["run"]["started"].endswith("Z")
    for target in document["targets"]:
        ids = [r["id"] for r in target["requirements"]]
        assert ids and ids == sorted(ids)
        assert target["counts"] == {word: n for word in VERDICTS
                                    if (n := sum(1 for r in target["requirements"] if r["verdict"] == word))}


def test_verdicts_equal_the_junit_reports(default_run):
    written = {f"verdict {t['name']} {r['id']}": r["verdict"]
               for t in default_run["document"]["targets"] for r in t["requirements"]}
    junit = {name: value for name, value in default_run["properties"].items() if name.startswith("verdict ")}
    assert written == junit


def test_checks_have_outcomes_and_durations(default_run):
    checks = [c for t in default_run["document"]["targets"] for r in t["requirements"] for c in r["checks"]]
    assert checks
    for check in checks:
        assert check["outcome"] in CHECK_KINDS
        assert isinstance(check["seconds"], (int, float)) and check["seconds"] >= 0
        assert "@" not in check["id"].rsplit("]", 1)[-1], "xdist's group suffix is left out"
    assert any(c["seconds"] > 0 for c in checks)
    assert any(c["id"].startswith("suites/common/test_left_as_found.py::") for c in checks)


def test_identity_answers_of_each_target(default_run):
    targets = targets_of(default_run["document"])
    wcc = targets["wcc-emulator"]["identity"]
    assert wcc["path"] == "/version"
    assert {"api_version", "api_patch", "sync_version"} <= set(wcc["answer"])
    wisdm = targets["wisdm-emulator"]["identity"]
    assert wisdm["path"] == "/version" and {"version", "commitId"} <= set(wisdm["answer"])
    assert targets["wisdm-emulator"]["title"] == "WisDM" and targets["wcc-emulator"]["device"] == "wcc-lite"


def test_the_targets_entry_holds_no_secret(default_run):
    secrets = [s for t in load_targets(ROOT / "targets.toml", TARGETS) for s in t.secrets()]
    assert len(secrets) >= 6  # WisDM's keys
    for secret in secrets:
        assert secret not in default_run["text"]
    # A piece of a key with its random part: "-partner" of "wisdm-partner-6a0d..." is the key's name in check ids.
    assert not [piece for piece in secret_pieces_in(default_run["text"], *secrets) if any(c.isdigit() for c in piece)]
    entry = targets_of(default_run["document"])["wisdm-emulator"]["entry"]
    assert entry["emulator"] is True and entry["base_url"] is None and entry["options"] == {"other_organization": ["partner"]}
    keys = entry["auth"]["keys"]
    assert [k["name"] for k in keys] == ["reader", "ops", "admin", "partner", "factory-a", "lapsed"]
    for key in keys:
        assert set(key) <= {"name", "access", "permissions", "locations", "expired"} and "key" not in key
    assert keys[0] == {"name": "reader", "access": "read", "permissions": []}
    assert keys[-1]["expired"] is True


def test_results_json_option_and_explicit_report_paths(tmp_path):
    xml, page = tmp_path / "x" / "r.xml", tmp_path / "h" / "page.html"
    result = run_suites("--target=wcc-emulator", f"--junitxml={xml}", f"--html={page}")
    assert result.returncode == 0, result.stdout[-3000:]
    assert (tmp_path / "x" / "r.json").is_file(), "next to the JUnit report given, same stem"
    assert not (tmp_path / "h" / "page.json").exists()
    elsewhere = tmp_path / "elsewhere" / "results.json"
    result = run_suites("--target=wcc-emulator", f"--junitxml={xml}", f"--html={page}", f"--results-json={elsewhere}")
    assert result.returncode == 0, result.stdout[-3000:]
    document = load_results(elsewhere)
    assert [t["name"] for t in document["targets"]] == ["wcc-emulator"]
    assert not (tmp_path / "h" / "page.json").exists()


def refused(tmp_path, document) -> str:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError) as caught:
        load_results(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


def test_the_schema_refuses_what_is_not_version_1(tmp_path, default_run):
    good = default_run["document"]
    validate(good)
    missing = copy.deepcopy(good)
    del missing["version"]
    assert "version" in refused(tmp_path, missing)
    unknown = copy.deepcopy(good)
    unknown["targets"][0]["requirements"][0]["verdict"] = "SORT OF"
    assert "targets[0].requirements[0].verdict" in refused(tmp_path, unknown)
    newer = dict(good, version=2)
    assert "newer" in refused(tmp_path, newer)
    assert "not a results file" in refused(tmp_path, ["a list"])
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="not JSON"):
        load_results(tmp_path / "bad.json")
