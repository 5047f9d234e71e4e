"""Bundled device emulators: real HTTP/1.1 servers on loopback with named faults.

    with start_emulator("esp32-evse", faults=["wrong_auth_realm"]) as emu:
        requests.get(emu.url + "/api/v1/state")

Each emulator behaves as its vendor document says, keeps state across requests, and can switch
on named faults (`EMULATORS[device].FAULTS`: fault name -> the documented sentence it breaks).
Emulator-only controls live under /__emulator__/ (see the device modules).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Iterable, Mapping

from conformlab.profiles import PROFILES

from .core import FORM, JSON, NONE, RAW, ControlError, DeviceEmulator, Refused, Route
from .server import Request, Response, RunningEmulator, loopback_host, serve

__all__ = ["EMULATORS", "ControlError", "DeviceEmulator", "FORM", "JSON", "NONE", "RAW", "Refused", "Request",
           "Response", "Route", "RunningEmulator", "emulator_class", "start_emulator"]


class _Emulators(Mapping[str, type[DeviceEmulator]]):
    """device -> emulator class, derived from the registry (conformlab.profiles: a device's profile
    names its emulator); a module is imported when its device is first asked for."""

    def __getitem__(self, device: str) -> type[DeviceEmulator]:
        module, _, name = PROFILES[device].emulator.partition(":")
        return getattr(importlib.import_module(f"{__name__}.{module}"), name)

    def __iter__(self):
        return iter(PROFILES)

    def __len__(self) -> int:
        return len(PROFILES)


EMULATORS: Mapping[str, type[DeviceEmulator]] = _Emulators()


def emulator_class(device: str) -> type[DeviceEmulator]:
    try:
        return EMULATORS[device]
    except KeyError:
        raise ValueError(f"unknown device {device!r}; known devices: {', '.join(EMULATORS)}") from None


def start_emulator(device: str, *, faults: Iterable[str] = (), auth: Mapping[str, Any] | None = None,
                   options: Mapping[str, Any] | None = None, host: str = "127.0.0.1", port: int = 0,
                   verbose: bool = False, reading: str = "default", boot_seconds: float | None = None,
                   tls: bool = False) -> RunningEmulator:
    """Start `device`'s emulator on loopback in a daemon thread; returns once it accepts
    connections. `options` are the target's device-specific keys (the emulator takes those its
    constructor names as keyword parameters); `reading`, `boot_seconds` and `tls` (HTTPS with a
    throwaway test CA: the handle's `ca_file`) are the target's (see DeviceEmulator). ValueError for an unknown device, fault, auth key or reading, or a
    non-loopback host; OSError if the port cannot be bound."""
    cls = emulator_class(device)
    loopback_host(host)  # refuse a non-loopback host before anything else
    if reading not in ("default", "alternative"):
        raise ValueError(f"unknown reading {reading!r}: 'default' or 'alternative'")
    taken = inspect.signature(cls).parameters
    kwargs = {key: value for key, value in (options or {}).items() if key in taken and key not in ("faults", "auth")}
    emulator = cls(faults=faults, auth=auth, **kwargs)
    emulator.reading = reading
    if boot_seconds is not None:
        emulator.boot_seconds = boot_seconds
    return serve(emulator, host=host, port=port, verbose=verbose, tls=tls)
