"""HTTPS devices: TLS is always verified, against the system's CAs or the target's `ca_bundle`; a
certificate that cannot be verified ends the target with one line that says so. (A WisDM emulator
served over HTTPS as a "real" cloud at its https base_url.)"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from conformlab.emulators import start_emulator

ROOT = Path(__file__).resolve().parents[1]


def run_against(tmp_path, url: str, extra: str = "") -> subprocess.CompletedProcess:
    targets = tmp_path / "targets.toml"
    targets.write_text(textwrap.dedent(f'''
        [targets.cloud]
        device = "wisdm"
        base_url = "{url}"
        {extra}
        [targets.cloud.auth]
        keys = [ {{ name = "admin", key = "tls-test-admin-key", access = "write", permissions = [] }} ]
    '''))
    return subprocess.run([sys.executable, "-m", "pytest", "suites", f"--targets-file={targets}", "--target=cloud",
                           "-p", "no:cacheprovider", "-q", "-n", "0", "-k", "test_version_answers or test_organization_of",
                           f"--junitxml={tmp_path / 'r.xml'}", f"--html={tmp_path / 'r.html'}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_a_certificate_of_an_unknown_ca_ends_the_target_with_one_line(tmp_path):
    with start_emulator("wisdm", tls=True, auth={"keys": [{"name": "admin", "key": "tls-test-admin-key",
                                                             "access": "write", "permissions": []}]}) as emu:
        result = run_against(tmp_path, emu.url)
    assert result.returncode != 0
    assert "its TLS certificate cannot be verified" in result.stdout and "ca_bundle" in result.stdout, result.stdout[-2000:]


def test_ca_bundle_verifies_a_private_ca(tmp_path):
    with start_emulator("wisdm", tls=True, auth={"keys": [{"name": "admin", "key": "tls-test-admin-key",
                                                             "access": "write", "permissions": []}]}) as emu:
        result = run_against(tmp_path, emu.url, f'ca_bundle = "{emu.ca_file}"')
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout and "cannot be verified" not in result.stdout
