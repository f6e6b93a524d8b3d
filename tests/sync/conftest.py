"""Each test of the facade ends with its event loop stopped, so no test sees another's loop."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import aqrt.sync


@pytest.fixture(autouse=True)
def _stop_the_facade_loop() -> Iterator[None]:
    yield
    aqrt.sync.shutdown()
