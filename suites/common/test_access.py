"""The access matrix of every device (the model: access.py): every operation of the schema with every
role of the profile, and the near misses of the target's credentials.

Which cases run depends on the target: without credentials a device whose authentication is
optional must serve everything; with them, it must serve each role what its grants cover and
refuse the rest its documented way, with no effect. Each case carries the requirements of its
device (the plugin pairs each target with its own cases: per_target).

The checks run in the order the device suites had them (refusals before the served restarts): on
the rate-limited WattWächter, the client sees an emulated restart only when the budget lets its
first probe out in time, and the old order is the one known to leave it room.
"""

from __future__ import annotations

from conformlab.verdicts import not_applicable
from suites.common import access
from suites.common.access import matrix_check


@matrix_check("auth_off", "op")
def test_every_operation_accepted_without_credentials_when_none_are_set(device, op):
    """A target without credentials: the device's authentication is off, every request is served."""
    if device.has_credentials:
        not_applicable("the target has credentials set; the refusal and acceptance checks apply instead")
    access.assert_served(device, access.operation(device, op), {"auth": None},
                         "no credentials are set, so every request must be served", device.profile.access.auth_off)


@matrix_check("refused", "op, role")
def test_operation_refused_with_missing_or_wrong_credentials(device, op, role):
    """No credential, or one the device does not know, on an operation that needs one: refused with
    the documented status and form, no data, and no effect."""
    access.require_credentials(device)
    access.assert_refused(device, access.operation(device, op), access.role_of(device, role), device.profile.access.refused)


@matrix_check("near_miss", "name")
def test_near_miss_credentials_refused_like_wrong_ones(device, name, notice):
    """Credentials that are almost the target's (conformlab.near_miss) are refused exactly like a
    wrong one: the same status, the documented form, no data, and no effect."""
    access.assert_near_miss_refused(device, name, notice)


@matrix_check("lacking", "op, role")
def test_operation_refused_to_a_credential_without_its_grant(device, op, role):
    """A credential the device knows, without a grant the operation needs (e.g. a READ token on a
    WRITE endpoint): refused with the documented status, no data, and no effect."""
    access.require_credentials(device)
    access.assert_refused(device, access.operation(device, op), access.role_of(device, role), device.profile.access.lacking)


@matrix_check("served", "op, role")
def test_operation_accepted_with_the_right_credentials(device, op, role):
    """A credential holding every grant the operation needs is served."""
    access.require_credentials(device)
    op, role = access.operation(device, op), access.role_of(device, role)
    access.assert_served(device, op, access.presented(device, role), f"{op} {access.describe(role)} must be served",
                         access.served_by(role, op)[0])


@matrix_check("open", "op")
def test_open_operation_accepted_without_credentials(device, op):
    """An operation that needs no grant is served without credentials while authentication is on."""
    if device.profile.access.auth_off and not device.has_credentials:
        not_applicable("the target has no credentials (authentication off): the check of every operation applies instead")
    access.assert_served(device, access.operation(device, op), {"auth": None},
                         "an operation that needs no credential must be served without one",
                         device.profile.access.open_operations)
