"""Test rules: asyncio debug mode (pyproject), warnings are errors (pyproject), every test
bounded (pytest-timeout), and no blocking call on the event loop (blockbuster)."""

from __future__ import annotations

import asyncio
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from blockbuster import BlockBuster, blockbuster_ctx


@pytest.fixture(autouse=True)
def blockbuster() -> Iterator[BlockBuster]:
    """Fail any test that makes a blocking call (sleep, file or socket I/O) on the event loop."""
    with blockbuster_ctx() as detector:
        yield detector


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def thread_baseline() -> Iterator[set[str]]:
    """Names of the threads alive before the test; after it, nothing new may remain but the
    one engine worker."""
    before = {t.name for t in threading.enumerate()}
    yield before
    extra = {t.name for t in threading.enumerate()} - before
    assert all(name.startswith("aqrt-engine") for name in extra), f"threads leaked: {extra}"


@pytest.fixture(autouse=True)
def _close_stray_event_loop(request: pytest.FixtureRequest) -> Iterator[None]:
    """looptime asks the event-loop policy for a loop even in sync tests (trio, hypothesis),
    which creates one that nobody closes; close it so its ResourceWarning cannot fire later."""
    yield
    if request.node.get_closest_marker("asyncio") is not None:
        return
    policy = asyncio.get_event_loop_policy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            loop = policy.get_event_loop()
        except RuntimeError:
            return
    if not loop.is_running():
        loop.close()
        policy.set_event_loop(None)


@pytest.fixture(scope="session")
def manila() -> Any:
    """FakeManilaV2, its target read once here (its files are read off the event loop): a 5-qubit
    device on a line (0-1-2-3-4); basis cx, id, rz, sx, x."""
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    device = FakeManilaV2()
    _ = device.target
    return device
