"""Fixtures: target -> device under test (emulator started, client, reachability, identity,
snapshot; put back and stopped at the end) -> device, and the report helpers a check is given
(notice, security_finding, report_extra).
"""

from __future__ import annotations

import json

import pytest

from conformlab import device_lock, secrets, verdicts
from conformlab.client import DeviceError, origin_of
from conformlab.dut import DeviceUnderTest, RestoreError, connect
from conformlab.targets import Target

EXCHANGES = pytest.StashKey[tuple]()  # on a check's item: (client, mark) where its exchanges begin
EXTRAS = pytest.StashKey[list]()  # on a check's item: evidence for its HTML report (name, html, text)


@pytest.fixture(scope="session")
def target(request) -> Target:
    return request.param


@pytest.fixture(scope="session")
def _device_session(target: Target):
    emulator = None
    held = None
    if target.emulator:
        from conformlab.emulators import start_emulator

        options = {**target.options, **({"firmware": target.firmware} if target.firmware else {})}  # it emulates that firmware
        emulator = start_emulator(target.device, faults=target.faults, auth=target.auth or None, options=options,
                                  reading=target.reading, boot_seconds=target.boot_seconds, tls=target.tls)
    dut = connect(target, emulator)
    client = dut.client
    try:
        try:
            if not target.emulator:
                held = device_lock.hold(origin_of(target.base_url), target.name)
            _identify(dut)
            dut.read_firmware()
            dut.read_capabilities()
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
    dut.identity = body  # what the device says it is: the results file records it (DeviceUnderTest.said)
    missing = [key for key in identity.keys if key not in body]
    if missing:
        raise _Unusable(f"target {target.name}: {what} 200 without the documented {', '.join(missing)}")


@pytest.fixture
def device(_device_session: DeviceUnderTest, request, notice) -> DeviceUnderTest:
    """The device under test; the exchanges of this check are kept for its report. A target that
    cannot be tested at all (unreachable, not this device, busy) fails its first check with one line
    (its one ERROR); a device that did not come back gets no more requests; the remaining checks of
    either are not run (ERROR, the same line each, collapsed into one in the summaries)."""
    if not getattr(_device_session, "said_recorded", False):  # once per target: for the results file
        _device_session.said_recorded = True
        request.node.user_properties.append(("device_said", secrets.mask(json.dumps(_device_session.said(), sort_keys=True))))
    if _device_session.unusable and not _device_session.unusable_reported:
        _device_session.unusable_reported = True
        pytest.fail(_device_session.unusable, pytrace=False)  # the target's one ERROR: one cause, one line
    if _device_session.client.gone:
        verdicts.unreachable(f"not run: {_device_session.client.gone}")
    request.node.stash[EXCHANGES] = (_device_session.client, _device_session.client.mark())
    _device_session.notice = notice
    _device_session.record = lambda name, value: request.node.user_properties.append((name, secrets.mask(str(value))))
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
