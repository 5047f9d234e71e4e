"""Gateway operations: reboot, password, firmware upgrade and battery monitoring (each "204 No Content",
its validation 400s; destructive: only with destructive = true), network priority, LAN, WAN and syslog
(read, written as read, changed and put back, their validation 400s, "Ethernet LAN configuration changes
are restricted"), and the syslog download URLs (at most maxFiles files, 1 to 200, default 20).

Writing a setting as it was read changes nothing and runs everywhere; a change, and a request the cloud
must refuse (which would reconfigure a gateway in the field if it were taken), only where the target
allows changes; whatever such a request changed is put back."""

from __future__ import annotations

import pytest

from conformlab.checks import answer
from conformlab.verdicts import not_applicable, requirement
from suites.wisdm.wisdm import (
    LAN, PREFIX, PRIORITY, SETTING_NAMES, SETTINGS, SYSLOG, WAN, auth_of, body_of, call, changed_setting, comparable, conforms,
    download_params, gateway, json_of, made_secret, operation, password_reset, read_setting, requirement_of,
    run_scope, setting_body, setting_kept, writer,
)


def no_content(response, why: str) -> None:
    """The page's "Response Example 204 No Content"."""
    assert response.status_code == 204, f"{why}: expected 204 No Content, got {answer(response)}"
    assert not response.content.strip(), f"{why}: a 204 answer has no content: {answer(response)}"


def _action(device, path: str, status: str = "ONLINE"):
    """(key, sn) for an action in the field: a key holding the operation's grants, a gateway of the
    run key's organization in `status`."""
    op = operation("POST", path)
    key = writer(device, *op.access)
    role = "action" if status == "ONLINE" else status.lower()
    return op, key, gateway(device, run_scope(device), role, status)[1]


# -- reboot, password, firmware, battery monitoring ---------------------------------------------------


@pytest.mark.destructive("reboots a gateway")
@pytest.mark.req("WISDM-REBOOT")
def test_reboot_answers_204(device):
    op, key, sn = _action(device, "/gateway/{sn}/reboot")
    response = call(device, "POST", f"/gateway/{sn}/reboot", key=key)
    no_content(response, f"POST {PREFIX}/gateway/{sn}/reboot of an ONLINE gateway")


@pytest.mark.destructive("sends a reboot to a gateway (offline: it cannot take it)")
@pytest.mark.req("WISDM-REBOOT", "WISDM-ANSWERS")
def test_reboot_of_an_offline_gateway_answers_500(device):
    """"500 | Gateway offline or unable to receive command"."""
    op, key, sn = _action(device, "/gateway/{sn}/reboot", "OFFLINE")
    response = call(device, "POST", f"/gateway/{sn}/reboot", key=key)
    assert response.status_code == 500, f"POST {PREFIX}/gateway/{sn}/reboot of an OFFLINE gateway: expected 500, got {answer(response)}"
    conforms(device, op, response)


@pytest.mark.destructive("replaces a gateway's local root password")
@pytest.mark.req("WISDM-PASSWORD")
def test_password_reset_answers_204(device):
    op, key, sn = _action(device, "/gateway/{sn}/password")
    password = made_secret("Conformlab!")
    response = call(device, "POST", f"/gateway/{sn}/password", key=key, json={"password": password})
    if 200 <= response.status_code < 300:
        password_reset(device, sn, password)
    no_content(response, f"POST {PREFIX}/gateway/{sn}/password")


@pytest.mark.destructive("a password the cloud took by mistake replaces the gateway's")
@pytest.mark.req("WISDM-PASSWORD", "WISDM-ANSWERS")
@pytest.mark.parametrize("body", [{}, {"password": ""}, {"password": 12345678}], ids=["omitted", "empty", "not-a-string"])
def test_password_omitted_or_invalid_refused_400(device, body):
    """"400 | The password field was omitted or invalid"."""
    op, key, sn = _action(device, "/gateway/{sn}/password")
    response = call(device, "POST", f"/gateway/{sn}/password", key=key, json=body)
    if 200 <= response.status_code < 300:  # taken: the gateway's password is now whatever the cloud made of it
        password_reset(device, sn, str(body.get("password", "(none sent)")))
    assert response.status_code == 400, f"POST {PREFIX}/gateway/{sn}/password with {body}: expected 400, got {answer(response)}"
    conforms(device, op, response)


@pytest.mark.destructive("flashes a firmware on a gateway")
@pytest.mark.req("WISDM-UPGRADE")
def test_upgrade_answers_204(device):
    op, key, sn = _action(device, "/gateway/{sn}/upgrade")
    response = call(device, "POST", f"/gateway/{sn}/upgrade", key=key, json={"version": "2.2.15"})
    no_content(response, f"POST {PREFIX}/gateway/{sn}/upgrade to 2.2.15")


@pytest.mark.destructive("a firmware request the cloud took by mistake would flash the gateway")
@pytest.mark.req("WISDM-UPGRADE", "WISDM-ANSWERS")
@pytest.mark.parametrize("body", [{}, {"version": "latest"}, {"version": 2215}], ids=["omitted", "not-a-version", "not-a-string"])
def test_upgrade_invalid_version_refused_400(device, body):
    """"400 | Invalid serial number or firmware version"."""
    op, key, sn = _action(device, "/gateway/{sn}/upgrade")
    response = call(device, "POST", f"/gateway/{sn}/upgrade", key=key, json=body)
    assert response.status_code == 400, f"POST {PREFIX}/gateway/{sn}/upgrade with {body}: expected 400, got {answer(response)}"
    conforms(device, op, response)


@pytest.mark.destructive("switches a gateway's solar battery monitoring (no answer shows the switch)")
@pytest.mark.req("WISDM-BATTERY-MON")
def test_battery_monitoring_answers_204(device):
    op, key, sn = _action(device, "/gateway/{sn}/battery")
    response = call(device, "POST", f"/gateway/{sn}/battery", key=key, json={"enabled": True})
    no_content(response, f"POST {PREFIX}/gateway/{sn}/battery enabling the monitoring")


@pytest.mark.destructive("a switch the cloud took by mistake changes the gateway's battery monitoring")
@pytest.mark.req("WISDM-BATTERY-MON", "WISDM-ANSWERS")
@pytest.mark.parametrize("body", [{}, {"enabled": "yes"}], ids=["omitted", "not-a-boolean"])
def test_battery_monitoring_invalid_refused_400(device, body):
    """`enabled | boolean`; "400 | Invalid Parameters"."""
    op, key, sn = _action(device, "/gateway/{sn}/battery")
    response = call(device, "POST", f"/gateway/{sn}/battery", key=key, json=body)
    assert response.status_code == 400, f"POST {PREFIX}/gateway/{sn}/battery with {body}: expected 400, got {answer(response)}"
    conforms(device, op, response)


# -- settings: priority, LAN, WAN, syslog -------------------------------------------------------------


def _setting_params():
    return [pytest.param(template, id=SETTING_NAMES[template],
                         marks=pytest.mark.req(requirement_of(operation("POST", template)), "WISDM-ANSWERS"))
            for template in SETTINGS]


def _setting(device, template: str):
    """(key that may write the setting, sn of the run key's settings gateway)."""
    key = writer(device, *operation("POST", template).access)
    return key, gateway(device, run_scope(device))[1]


@pytest.mark.parametrize("template", _setting_params())
def test_setting_written_as_read_is_kept(device, template):
    """GET answers the setting (its documented shape); POSTing back what it holds answers 204 and
    changes nothing. Harmless: runs on every target."""
    key, sn = _setting(device, template)
    path = template.format(sn=sn)
    with setting_kept(device, template, sn) as before:
        response = call(device, "GET", path, key=key)
        with requirement(requirement_of(operation("GET", template))):
            body_of(device, response, f"GET {PREFIX}{path}")
        conforms(device, operation("GET", template), response)
        written = call(device, "POST", path, key=key, json=setting_body(template, before))
        with requirement(requirement_of(operation("POST", template))):
            no_content(written, f"POST {PREFIX}{path} with the value just read")
            after = read_setting(device, template, sn, key)
            assert comparable(template, after) == comparable(template, before), (
                f"{PREFIX}{path} written as read must hold what it held: {comparable(template, before)} -> "
                f"{comparable(template, after)}")


@pytest.mark.destructive("changes a gateway's setting (put back afterwards)")
@pytest.mark.parametrize("template", _setting_params())
def test_setting_change_takes_effect_and_is_put_back(device, template):
    key, sn = _setting(device, template)
    path = template.format(sn=sn)
    with setting_kept(device, template, sn) as before:
        changed = changed_setting(template, before)
        if changed is None:
            not_applicable(f"{PREFIX}{path} holds nothing this check changes harmlessly")
        response = call(device, "POST", path, key=key, json=changed)
        with requirement(requirement_of(operation("POST", template))):
            no_content(response, f"POST {PREFIX}{path} with a changed value")
            after = setting_body(template, read_setting(device, template, sn, key))
            for name, value in changed.items():
                assert after.get(name) == value, f"{PREFIX}{path}: {name} was set to {value}, reads back {after.get(name)}"


def _wifi(before: dict, **changes) -> dict:
    wifi = dict(before.get("wifi") or {})
    wifi.update(changes)
    return {"wifi": wifi}


def _wan(before: dict, interface: str, **changes) -> dict:
    body = setting_body(WAN, before)
    config = {k: v for k, v in dict(body.get(interface) or {}).items() if k not in ("staticAddress", "dhcpClient", "pppoe")}
    config.update(enabled=True, **changes)
    return {**body, interface: config}


# case -> (setting, body from the value read, the document settles the refusal: 400 from its table)
INVALID = {
    "priority-missing": (PRIORITY, lambda before: {}, True),
    "priority-no-order": (PRIORITY, lambda before: {"priority": "conformlab"}, True),
    "priority-interface-twice": (PRIORITY, lambda before: {"priority": "ETH_ETH_WIFI"}, False),
    "lan-ssid-33-characters": (LAN, lambda before: _wifi(before, ssid="conformlab-ssid-" + "x" * 17), True),
    "lan-key-7-characters": (LAN, lambda before: _wifi(before, encryption="WPA2-PSK", key="short7!"), True),
    "lan-key-64-characters": (LAN, lambda before: _wifi(before, encryption="WPA2-PSK", key="k" * 64), True),
    "lan-encryption-unknown": (LAN, lambda before: _wifi(before, encryption="WEP"), True),
    "lan-no-wifi": (LAN, lambda before: {}, False),
    "wan-dhcp-without-dhcpClient": (WAN, lambda before: _wan(before, "ethernet", protocol="dhcp"), True),
    "wan-static-without-address": (WAN, lambda before: _wan(before, "ethernet", protocol="static"), True),
    "wan-pppoe-without-pppoe": (WAN, lambda before: _wan(before, "ethernet", protocol="pppoe"), True),
    "wan-protocol-unknown": (WAN, lambda before: _wan(before, "ethernet", protocol="ftp", dhcpClient={"useDNS": True}), True),
    "wan-wifi-pppoe": (WAN, lambda before: _wan(before, "wifi", protocol="pppoe", ssid="conformlab", pppoe={"username": "x"}), True),
    "syslog-external-without-server": (SYSLOG, lambda before: {"shareLogs": "external"}, None),
    "syslog-shareLogs-unknown": (SYSLOG, lambda before: {"shareLogs": "everything"}, None),
}


@pytest.mark.destructive("a setting the cloud took by mistake reconfigures the gateway (put back afterwards)")
@pytest.mark.parametrize("case", [pytest.param(case, marks=pytest.mark.req(requirement_of(operation("POST", setting)),
                                                                           "WISDM-ANSWERS"))
                                  for case, (setting, _, _) in INVALID.items()])
def test_invalid_setting_refused_and_nothing_changes(device, case):
    """The setting's documented rules: "400 | Missing priority field or incorrect syntax", "400 | JSON
    syntax error or missing required field" with ssid at most 32 characters, key 8-63, the four
    encryptions; "400 | Invalid Parameters" with staticAddress / pppoe "Required when protocol is ...";
    syslog: "externalLogServer ... Required when shareLogs includes external", shareLogs one of four (no
    error table there: not served, 400 by the reading). The setting is unchanged afterwards. Rules the
    page only hints at (an interface named twice, a body without wifi) are the reading."""
    template, make, documented = INVALID[case]
    key, sn = _setting(device, template)
    path = template.format(sn=sn)
    op = operation("POST", template)
    with setting_kept(device, template, sn) as before:
        body = make(before)
        response = call(device, "POST", path, key=key, json=body)
        why = f"POST {PREFIX}{path} ({case})"
        if documented is True:
            assert response.status_code == 400, f"{why}: expected 400, got {answer(response)}"
        elif documented is None:
            assert not 200 <= response.status_code < 300, f"{why}: must not be taken: {answer(response)}"
            device.reading(response.status_code == 400, f"{why}: {answer(response)}; the reading expects 400")
        else:
            device.reading(response.status_code == 400, f"{why}: {answer(response)}; the reading expects 400")
        after = read_setting(device, template, sn, key)
        if documented is not False:
            assert comparable(template, after) == comparable(template, before), (
                f"{why}: the refused write changed the setting: {comparable(template, before)} -> {comparable(template, after)}")
        conforms(device, op, response)


@pytest.mark.req("WISDM-LAN", "WISDM-ANSWERS")
def test_lan_malformed_json_refused_400(device):
    """"400 | JSON syntax error or missing required field": a body that is no JSON (nothing to apply:
    runs on every target)."""
    key, sn = _setting(device, LAN)
    path = LAN.format(sn=sn)
    with setting_kept(device, LAN, sn):
        response = device.client.request("POST", path, body=b'{"wifi": {"enabled": ', content_type="application/json",
                                         auth=auth_of(key))
        assert response.status_code == 400, f"POST {PREFIX}{path} with broken JSON: expected 400, got {answer(response)}"
        conforms(device, operation("POST", LAN), response)


@pytest.mark.destructive("an Ethernet LAN change the cloud took by mistake could cut the gateway off (put back afterwards)")
@pytest.mark.req("WISDM-LAN-ETH")
def test_ethernet_lan_change_is_restricted(device):
    """"Ethernet LAN configuration changes are restricted to prevent accidental disconnection from
    WisDM": a request to switch the Ethernet LAN interface leaves it as it was (refused with 400 by the
    reading)."""
    key, sn = _setting(device, LAN)
    path = LAN.format(sn=sn)
    with setting_kept(device, LAN, sn) as before:
        ethernet = before.get("ethernet")
        if not isinstance(ethernet, dict) or not isinstance(ethernet.get("enabled"), bool):
            not_applicable(f"GET {PREFIX}{path} shows no Ethernet LAN state: {before}")
        response = call(device, "POST", path, key=key, json={"ethernet": {"enabled": not ethernet["enabled"]}})
        after = read_setting(device, LAN, sn, key)
        assert after.get("ethernet") == ethernet, (
            f"POST {PREFIX}{path} switching the Ethernet LAN: it changed from {ethernet} to {after.get('ethernet')} "
            f"({answer(response)})")
        device.reading(response.status_code == 400, f"POST {PREFIX}{path} with an Ethernet change: {answer(response)}; "
                                                    "the reading expects 400")


# -- syslog download URLs -----------------------------------------------------------------------------


@pytest.mark.req("WISDM-SYSLOG-DOWNLOAD", "WISDM-ANSWERS")
@pytest.mark.parametrize("max_files", [1, 200, None], ids=["1", "200", "default"])
def test_download_urls_at_most_max_files(device, max_files):
    """"maxFiles | Maximum number of files to return (1–200, default 20)"; totalFiles counts every
    matching file. Over the last 30 days, so that there are more files than one."""
    of = run_scope(device)
    _, sn = gateway(device, of)
    path = f"/gateway/{sn}/syslog/download"
    response = call(device, "GET", path, key=of.key, params=download_params(max_files))
    body = body_of(device, response, f"GET {PREFIX}{path} (maxFiles {max_files})")
    files = body.get("files")
    assert isinstance(files, list), f"`files` is the list of log files: {body}"
    limit = max_files if max_files is not None else 20
    assert len(files) <= limit, f"maxFiles {max_files or '(default 20)'}: {len(files)} files returned"
    total = body.get("totalFiles")
    assert isinstance(total, int) and total >= len(files), f"totalFiles (all matching) {total!r} < {len(files)} files returned"
    for item in files:
        assert isinstance(item, dict) and isinstance(item.get("downloadUrl"), str) and item["downloadUrl"], (
            f"each file carries its pre-signed download URL: {list(item) if isinstance(item, dict) else item}")
    conforms(device, operation("GET", "/gateway/{sn}/syslog/download"), response)
    if max_files == 1:
        device.reading(total > 1, f"gateway {sn} has {total} log file(s) over 30 days: maxFiles 1 limits nothing here")


@pytest.mark.req("WISDM-SYSLOG-DOWNLOAD")
@pytest.mark.parametrize("max_files", [0, 201], ids=["0", "201"])
def test_download_max_files_out_of_range_refused(device, max_files):
    """maxFiles outside 1–200: 400 by the reading (the section has no error table); served, the answer
    holds at most 200 files."""
    of = run_scope(device)
    _, sn = gateway(device, of)
    path = f"/gateway/{sn}/syslog/download"
    response = call(device, "GET", path, key=of.key, params=download_params(max_files))
    files = (json_of(response) or {}).get("files") if response.status_code == 200 else []
    assert not isinstance(files, list) or len(files) <= 200, f"maxFiles {max_files}: {len(files)} files returned"
    device.reading(response.status_code == 400, f"GET {PREFIX}{path}?maxFiles={max_files}: {answer(response)}; "
                                                "the reading expects 400 (1 to 200)")
