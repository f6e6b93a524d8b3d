"""Fake devices for the device tests, made (and their targets built) outside the event loop:
a device reads its JSON files when made and when its target is first built, and blockbuster
fails a test that reads files on the loop."""

from __future__ import annotations

import pytest
from qiskit_ibm_runtime.fake_provider import FakeSherbrooke

from aqrt.backends.local.devices import fake_devices


@pytest.fixture(scope="session", autouse=True)
def provider_devices() -> None:
    """The process's fake devices (what names resolve to), the ones the tests name prepared."""
    devices = fake_devices()
    for name in ("fake_manila", "fake_sherbrooke", "fake_lima"):
        _ = devices[name].target


@pytest.fixture(scope="session")
def sherbrooke() -> FakeSherbrooke:
    """A 127-qubit heavy-hex device; basis ecr, id, rz, sx, x."""
    device = FakeSherbrooke()
    _ = device.target
    return device
