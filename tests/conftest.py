"""Test rules: asyncio debug mode (pyproject), warnings are errors (pyproject), every test
bounded (pytest-timeout), and no blocking call on the event loop (blockbuster)."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from blockbuster import BlockBuster, blockbuster_ctx


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile every kernel tier into numba's disk cache before the first test, both precisions
    at once in two processes. On a cold cache that is minutes of compiling (a few seconds when
    warm), which would otherwise fall on whichever test first loads a tier, inside its timeout.
    Only the disk cache is filled: each test process still loads its tiers itself."""
    code = "import sys; from aqrt.engine import warmup; warmup(sys.argv[1])"
    workers = [subprocess.Popen([sys.executable, "-c", code, dtype]) for dtype in ("complex128", "complex64")]
    failed = [worker.args[-1] for worker in workers if worker.wait(timeout=1800) != 0]
    if failed:
        raise pytest.UsageError(f"compiling the engine's kernels failed for {', '.join(failed)}")


@pytest.fixture(autouse=True)
def _numpy_work_counted_per_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test counts its own inline numpy work from zero: the process-wide count would start a
    background load of the small tier (``aqrt.backends.local.warmup.note_numpy_seconds``) in
    whichever test crossed it, possibly one that pretends no tier is loaded."""
    from aqrt.backends.local import warmup

    monkeypatch.setattr(warmup, "_numpy_seconds", {})
    monkeypatch.setattr(warmup, "_small_tier_requested", set())


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


@pytest.fixture(scope="module", autouse=True)
def _garbage_collected_after_each_module() -> Iterator[None]:
    """Collect each module's garbage before the next module starts, so that a resource a module
    leaks (an unclosed socket or transport: warnings are errors) is reported against that
    module's last test, not against whichever later test a collection happens to fall in."""
    yield
    gc.collect()


def _collect_garbage_allowing_sockets_to(peer: tuple[str, int]) -> None:
    """Collect garbage after a Dask cluster closed. distributed's client keeps its connections
    to the scheduler in tornado streams; one dropped without being closed (a close racing an
    in-flight request) is left for the collector and warns whenever a collection finds it. CI
    saw one once (a client socket made as tornado makes them, proto 0, where aiohttp's have 6),
    found by a collection two modules after the Dask tests; nine local runs did not reproduce
    it. Such a socket to the scheduler is distributed's, not aqrt's, and is let go here.
    Anything else collected here is still an error, named in this module."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    to_scheduler = f"raddr=('{peer[0]}', {peer[1]})"
    for warning in caught:
        text = str(warning.message)
        if warning.category is ResourceWarning and text.startswith("unclosed <socket") and to_scheduler in text:
            continue
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A real Dask cluster on 127.0.0.1 (:class:`aqrt.distributed.LocalProcessCluster`: a
    scheduler and 2 nanny-supervised worker processes, one thread each, in a process tree of its
    own); after the module, nothing of that tree may be left."""
    import os
    import platform

    import psutil

    from aqrt.distributed import LocalProcessCluster

    _ = platform.uname().processor  # distributed's client handshake asks; platform runs a subprocess once
    manager = LocalProcessCluster(n_workers=2, threads_per_worker=1)
    with manager:
        assert manager._process is not None
        pid = manager._process.pid
        assert manager.address is not None
        scheduler = manager.address.removeprefix("tcp://").rsplit(":", 1)
        yield manager
    _collect_garbage_allowing_sockets_to(peer=(scheduler[0], int(scheduler[1])))
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE

    def alive_in_group(process: psutil.Process) -> bool:
        try:
            return os.getpgid(process.pid) == pid and process.status() != psutil.STATUS_ZOMBIE
        except (ProcessLookupError, psutil.NoSuchProcess):
            return False

    # The cluster runs in a process group of its own (start_new_session): look only at that
    # group, so other runs on the same machine are not counted.
    assert not [process for process in psutil.process_iter() if alive_in_group(process)]


@pytest.fixture
def distributed_handshake_may_block(blockbuster: BlockBuster) -> None:
    """A Dask client's handshake reads package versions from disk (importlib.metadata) once
    per connection, on the loop; that is distributed's code, not aqrt's, so it is allowed."""
    for function in blockbuster.functions.values():
        function.can_block_in("distributed/versions.py", {"get_versions", "get_package_info"})
