"""Test rules: asyncio debug mode (pyproject), warnings are errors (pyproject), every test
bounded (pytest-timeout), and no blocking call on the event loop (blockbuster)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

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
