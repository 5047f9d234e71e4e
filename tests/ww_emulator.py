"""The WattWächter emulator as the harness's own tests start it: its test tokens, a certificate, and
the two fixtures (authentication off, and on with the test tokens). Import the fixtures by name."""

from __future__ import annotations

import pytest

from conformlab.emulators import start_emulator

READ_TOKEN, WRITE_TOKEN = "READ0123456789ABCDEF", "WRITE0123456789ABCDE"
TOKENS = {"read_token": READ_TOKEN, "write_token": WRITE_TOKEN}
PEM = ("-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ29uZm9ybWxhYiB0ZXN0IENBMAoGCCqGSM49BAMCMBYx\n"
       "FDASBgNVBAMMC2NvbmZvcm1sYWIwHhcNMjUwMTAxMDAwMDAwWhcNMzUwMTAxMDAw\n-----END CERTIFICATE-----\n")


@pytest.fixture
def emu():
    """Authentication off (the device's default)."""
    with start_emulator("wattwaechter") as running:
        yield running


@pytest.fixture
def authed():
    """Authentication on, with TOKENS."""
    with start_emulator("wattwaechter", auth=TOKENS) as running:
        yield running
