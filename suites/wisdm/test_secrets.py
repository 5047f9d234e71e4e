"""Secrets in answers: the cloud returns Wi-Fi keys (LAN, status, WAN), APN passwords and SIM PINs (WAN),
tokens and TLS client keys, and pre-signed download URLs. Each one an answer carries must be a secret the
harness masks in every report, log and test id, like the API keys themselves (conformlab.secrets: a
value registered when the answer arrives is replaced by *** wherever it is shown)."""

from __future__ import annotations

import pytest

from conformlab import secrets
from conformlab.verdicts import not_applicable
from suites.wisdm.wisdm import (
    LAN, PREFIX, WAN, all_gateways, call, download_params, gateway, json_of, run_scope, secret_fields,
)


@pytest.mark.req("WISDM-SECRETS-MASKED")
def test_secrets_in_answers_are_masked(device, report_extra):
    of = run_scope(device)
    found: list[tuple[str, str]] = []
    for _, gw in all_gateways(device, of):
        for template in ("/gateway/{sn}/status", LAN, WAN):
            path = template.format(sn=gw["sn"])
            response = call(device, "GET", path, key=of.key)
            if response.status_code == 200:
                found += [(f"GET {PREFIX}{path}: {where}", value) for where, value in secret_fields(json_of(response))]
    sn = gateway(device, of)[1]
    response = call(device, "GET", f"/gateway/{sn}/syslog/download", key=of.key, params=download_params(2))
    if response.status_code == 200:
        found += [(f"GET {PREFIX}/gateway/{sn}/syslog/download: {where}", value)
                  for where, value in secret_fields(json_of(response))]
    names = sorted({where.rsplit("/", 1)[-1] for where, _ in found})
    report_extra(text=f"{len(found)} secret values in answers, fields: {', '.join(names) or '(none)'}",
                 name="secrets in answers")
    if not found:
        device.reading(False, "no answer carried a Wi-Fi key, an APN password, a SIM PIN or a download URL")
        not_applicable("no answer of the organization carried a secret")
    shown = [where for where, value in found if secrets.mask(value) == value]
    assert not shown, (f"{len(shown)} secret value(s) in answers would be shown unmasked in reports and logs (field "
                       f"names only here): {'; '.join(shown[:6])}")
