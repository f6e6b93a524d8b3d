"""The facade from a thread that runs an event loop (a Jupyter cell), from many threads at once,
and its shutdown: explicit, and at interpreter exit."""

from __future__ import annotations

import asyncio
import contextvars
import re
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from blockbuster import BlockBuster
from qiskit.circuit import Parameter, QuantumCircuit

import aqrt
import aqrt.sync
from aqrt.sync import Estimator, Sampler, Session


def _ry_circuit() -> tuple[QuantumCircuit, Parameter]:
    theta = Parameter("theta")
    circuit = QuantumCircuit(1)
    circuit.ry(theta, 0)
    return circuit, theta


def _blocking_cell() -> float:
    """What a notebook cell runs: plain synchronous code, no await."""
    circuit, _ = _ry_circuit()
    with Session() as session:
        return float(Estimator(mode=session).run([(circuit, "Z", [np.pi / 3])]).result()[0].data.evs)


def test_blocking_calls_work_in_a_thread_that_runs_an_event_loop(blockbuster: BlockBuster) -> None:
    # Jupyter runs each cell in a task of its running loop; the facade's loop is another thread,
    # so blocking on it from here works (and blocks this loop meanwhile, as any sync call does).
    blockbuster.deactivate()

    async def notebook() -> float:
        assert asyncio.get_running_loop().is_running()
        return _blocking_cell()

    loop = asyncio.new_event_loop()  # not asyncio.run: that would drop the loop the test plugins set
    try:
        assert loop.run_until_complete(notebook()) == pytest.approx(0.5, abs=1e-12)
    finally:
        loop.close()


def test_many_threads_share_one_loop_and_one_session() -> None:
    circuit, _ = _ry_circuit()
    values = np.linspace(0, np.pi, 12)
    with Session() as session:
        estimator = Estimator(mode=session)

        def one(value: float) -> float:
            return float(estimator.run([(circuit, "Z", [value])]).result()[0].data.evs)

        with ThreadPoolExecutor(max_workers=6) as pool:
            got = list(pool.map(one, values))
    np.testing.assert_allclose(got, np.cos(values), atol=1e-12)
    assert session.statistics()["done"] == len(values)


def test_threads_each_with_their_own_session_and_job_mode() -> None:
    circuit, _ = _ry_circuit()
    measured = circuit.copy()
    measured.measure_all()
    results: dict[str, object] = {}

    def in_session(name: str, value: float) -> None:
        with Session() as session:
            results[name] = (
                session.session_id,
                Estimator().run([(circuit, "Z", [value])]).result()[0].data.evs,  # the thread's own session
            )

    def job_mode() -> None:
        results["sampler"] = Sampler().run([(measured, [np.pi])], shots=50).result()[0].data.meas.get_counts()

    threads = [threading.Thread(target=in_session, args=(f"s{i}", 0.5 * i)) for i in range(3)]
    threads.append(threading.Thread(target=job_mode))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results["sampler"] == {"1": 50}
    ids = {results[f"s{i}"][0] for i in range(3)}  # type: ignore[index]
    assert len(ids) == 3
    for i in range(3):
        assert results[f"s{i}"][1] == pytest.approx(np.cos(0.5 * i), abs=1e-12)  # type: ignore[index]


def test_shutdown_cancels_what_is_unfinished_and_a_later_call_starts_afresh() -> None:
    from aqrt.testing import FakeBackend

    circuit, _ = _ry_circuit()
    session = Session(backend=FakeBackend(duration=60))
    job = Estimator(mode=session).run([(circuit, "Z", [0.1])])
    assert any(thread.name == "aqrt-sync-loop" for thread in threading.enumerate())
    started = time.monotonic()
    aqrt.sync.shutdown()
    assert time.monotonic() - started < 5
    assert job.status() == "CANCELLED"
    assert not any(thread.name == "aqrt-sync-loop" for thread in threading.enumerate())
    with pytest.raises(RuntimeError, match=r"aqrt\.sync was shut down"):
        session.status()
    with pytest.raises(RuntimeError, match=r"aqrt\.sync was shut down"):
        job.result()
    aqrt.sync.shutdown()  # nothing running: does nothing
    with Session(backend=FakeBackend(duration=60)) as inside:
        job = Estimator().run([(circuit, "Z", [0.1])])
        aqrt.sync.shutdown()  # inside the block: the block's exit has nothing left to do
    assert job.status() == "CANCELLED"
    with pytest.raises(RuntimeError, match=r"aqrt\.sync was shut down"):
        inside.details()
    assert Estimator().run([(circuit, "Z", [0.0])]).result()[0].data.evs == pytest.approx(1.0)


def test_the_result_of_a_finished_job_is_read_without_the_loop(blockbuster: BlockBuster) -> None:
    # result() waits on an event the job sets as it settles: once the job is final, the answer
    # comes from the calling thread even while the loop is busy with something else.
    blockbuster.deactivate()  # the test blocks the facade's loop on purpose
    circuit, _ = _ry_circuit()
    job = Estimator().run([(circuit, "Z", [0.0])])
    job.wait_for_final_state(timeout=30)
    runtime = aqrt.sync._current_runtime()
    loop_busy, release = threading.Event(), threading.Event()

    def hold_the_loop() -> None:
        loop_busy.set()
        release.wait(30)  # blocks the loop thread on purpose

    holder = threading.Thread(target=runtime.portal.call, args=(hold_the_loop,))
    holder.start()
    try:
        assert loop_busy.wait(30)
        started = time.monotonic()
        assert job.result()[0].data.evs == pytest.approx(1.0)
        assert job.result(timeout=0)[0].data.evs == pytest.approx(1.0)
        assert time.monotonic() - started < 1  # the loop is held for 30 s
    finally:
        release.set()
        holder.join(timeout=30)


def test_shutdown_wakes_threads_that_wait_on_the_loop() -> None:
    from aqrt.testing import FakeBackend

    circuit, _ = _ry_circuit()
    session = Session(backend=FakeBackend(duration=60), max_pending=1)
    estimator = Estimator(mode=session)
    running = estimator.run([(circuit, "Z", [0.1])])
    outcomes: dict[str, BaseException | None] = {}
    calling = [threading.Event(), threading.Event()]

    def wait_for_result() -> None:
        calling[0].set()
        try:
            running.result()
            outcomes["result"] = None
        except BaseException as exc:
            outcomes["result"] = exc

    def submit_into_a_full_session() -> None:
        calling[1].set()
        try:
            estimator.run([(circuit, "Z", [0.2])])  # waits for room that never comes
            outcomes["run"] = None
        except BaseException as exc:
            outcomes["run"] = exc

    threads = [threading.Thread(target=wait_for_result), threading.Thread(target=submit_into_a_full_session)]
    for thread in threads:
        thread.start()
    assert all(event.wait(30) for event in calling)
    time.sleep(0.3)  # both are blocked by now: their jobs take 60 s
    started = time.monotonic()
    aqrt.sync.shutdown()
    for thread in threads:
        thread.join(timeout=30)
    assert time.monotonic() - started < 10
    assert not any(thread.is_alive() for thread in threads)
    assert isinstance(outcomes["result"], aqrt.JobCancelledError)  # its job was cancelled at shutdown
    run_error = outcomes["run"]  # its session was cancelled at shutdown (or, on a slow machine, the loop was gone)
    assert isinstance(run_error, aqrt.SessionClosedError) or "aqrt.sync was shut down" in str(run_error), run_error


def test_a_call_runs_on_the_loop_without_the_calling_threads_context() -> None:
    # Context variables set in the calling thread (an async session of a notebook's own loop,
    # say) stay there: the facade's loop code runs in a fresh context.
    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")
    marker.set("caller")
    runtime = aqrt.sync._current_runtime()
    assert runtime.call(marker.get) == "unset"

    async def read_marker() -> str:
        return marker.get()

    assert runtime.call(read_marker) == "unset"


def test_calling_the_facade_on_its_own_loop_is_refused() -> None:
    circuit, _ = _ry_circuit()
    estimator = Estimator()
    job = estimator.run([(circuit, "Z", [0.0])])
    job.result()
    errors: list[BaseException] = []

    def from_the_loop() -> None:
        try:
            estimator.run([(circuit, "Z", [0.0])])
        except RuntimeError as exc:
            errors.append(exc)

    runtime = aqrt.sync._current_runtime()
    runtime.portal.call(from_the_loop)
    assert len(errors) == 1 and "use the async API there" in str(errors[0])


SLOW_STEP = re.compile(r"^Executing <.*> took \d+\.\d+ seconds$")

SCRIPT = """
import sys
from qiskit import QuantumCircuit
from aqrt.sync import Estimator, Session
from aqrt.testing import FakeBackend

circuit = QuantumCircuit(2)
circuit.h(0)
circuit.cx(0, 1)
with Session() as session:
    print(Estimator(mode=session).run([(circuit, "ZZ")]).result()[0].data.evs)
{tail}
"""


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param("", id="finished"),
        # left running at exit: a job on a slow backend, and a session never closed
        pytest.param(
            "Estimator(mode=FakeBackend(duration=600)).run([(circuit, 'ZZ')])\n"
            "open_session = Session(backend=FakeBackend(duration=600))\n"
            "Estimator(mode=open_session).run([(circuit, 'ZZ')])",
            id="unfinished",
        ),
    ],
)
def test_a_script_exits_cleanly_and_quickly(tail: str, tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(SCRIPT).format(tail=tail))
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-W", "error", "-X", "dev", str(script)], capture_output=True, text=True, timeout=120
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    # -X dev also logs any loop step over 0.1 s ("Executing <Task ...> took 0.114 seconds"), which a
    # loaded machine produces on its own (first use imports); anything else on stderr fails the test
    complaints = [line for line in done.stderr.splitlines() if not SLOW_STEP.match(line)]
    assert complaints == []
    assert float(done.stdout) == pytest.approx(1.0)
    assert elapsed < 60
