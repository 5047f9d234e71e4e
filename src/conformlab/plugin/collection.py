"""Collection: only the selected targets' device suites; every check parametrized per target, its
requirement ids checked, kept with its target's other checks; markers turned into NOT VERIFIED skips
(destructive, emulator_only), in one place.

Test ids never carry a secret: the ids this plugin makes (the target's) and the ids pytest makes
from a parameter's value are masked where they are made, on every xdist worker alike (the
controller matches the workers' ids). The suites' own ids (ids=, pytest.param(id=)) come from the
documents and profiles, never from a target: a target reaches a check only through the `target`
fixture.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from conformlab import secrets, verdicts
from conformlab.client import DeviceWentAway
from conformlab.plugin.options import TARGETS, is_active
from conformlab.profiles import PROFILES
from conformlab.requirements import all_requirements
from conformlab.targets import Target

LAST_CHECK = "test_left_as_found"  # the end-of-run check runs after every other check of its target


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
    if not is_active(config):
        return None
    device = _device_of_path(collection_path)
    if device and device not in {t.device for t in config.stash[TARGETS]}:
        return True
    return None


def pytest_generate_tests(metafunc):
    config = metafunc.config
    if "target" not in metafunc.fixturenames or not is_active(config):
        return
    device = _device_of_path(metafunc.definition.path)
    targets = [t for t in config.stash[TARGETS] if not device or t.device == device]
    metafunc.parametrize("target", targets, ids=[_id_of(t) for t in targets], indirect=True, scope="session")
    per_target = metafunc.definition.get_closest_marker("per_target")
    if per_target is not None:
        # A shared check whose cases depend on the target's device (its schema's operations, its
        # profile's roles, its requirement IDs): cases(target) -> pytest.param(values..., id=, marks=).
        # Parametrized with every target's cases; collection then keeps each target's own with their
        # marks (the target stays one parameter of its own, so its session is one across all checks).
        argnames, cases = per_target.args
        union = {case.id: case for target in targets for case in cases(target)}
        if union:
            metafunc.parametrize(argnames, [pytest.param(*case.values, id=case.id) for case in union.values()])


def _own_cases(items: list) -> list:
    """per_target checks: mark each target's own cases with their requirements; the other pairings
    of the parametrization, which are no case of the target's device: returned, to deselect."""
    others, known = [], {}
    for item in items:
        mark = item.get_closest_marker("per_target")
        if mark is None:
            continue
        target, (argnames, cases) = target_of(item), mark.args
        names = [name.strip() for name in argnames.split(",")]
        values = tuple(item.callspec.params.get(name) for name in names)
        key = (id(cases), getattr(target, "name", None))
        if isinstance(target, Target) and key not in known:
            known[key] = {tuple(case.values): case for case in cases(target)}
        case = known.get(key, {}).get(values)
        if case is None:
            others.append(item)
            continue
        for case_mark in case.marks:
            item.add_marker(case_mark)
    return others


def _id_of(target: Target) -> str:
    """The target's part of a test id (and of xdist's "@group" suffix)."""
    return secrets.mask(target.name)


def pytest_make_parametrize_id(config, val, argname):
    """The id pytest makes from a str parameter given without ids=, masked if it holds a secret and
    escaped as pytest escapes it. None: pytest makes the id as usual."""
    if is_active(config) and isinstance(val, str) and secrets.mask(val) != val:
        return secrets.mask(val).encode("unicode_escape").decode("ascii")
    return None


def target_of(item) -> Target | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("target") if callspec else None


def requirement_ids(item) -> list[str]:
    ids = []
    for mark in item.iter_markers("req"):
        ids.extend(mark.args)
    return list(dict.fromkeys(ids))


@pytest.hookimpl(tryfirst=True)  # before xdist's, which reads the xdist_group marks added here
def pytest_collection_modifyitems(session, config, items):
    if not is_active(config):
        return
    others = _own_cases(items)  # a case of another device is no check of this target: no item, not a skip
    if others:
        config.hook.pytest_deselected(items=others)
        dropped = set(map(id, others))
        items[:] = [item for item in items if id(item) not in dropped]
    known = all_requirements()
    for item in items:
        target = target_of(item)
        ids = requirement_ids(item)
        if target is None:
            continue
        if not ids:
            raise pytest.UsageError(f"{item.nodeid}: a check must name its requirement with @pytest.mark.req(...)")
        for rid in ids:
            if rid not in known:
                raise pytest.UsageError(f"{item.nodeid}: requirement {rid} is not in any requirements.yaml")
        item.add_marker(pytest.mark.xdist_group(_id_of(target)))
        item.obj = _once_more_after_an_outage(item.obj, item)
        item.user_properties.append(("requirement", " ".join(ids)))
        item.user_properties.append(("target", target.name))
        # Waivers are applied per failure, to the requirement it belongs to (outcomes.py).
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
        target = target_of(item)
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
