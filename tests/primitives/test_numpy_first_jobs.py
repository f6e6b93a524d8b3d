"""A process's first small jobs run inline on the numpy interpreter while the numba kernels are
not loaded (``aqrt.backends.local.warmup.numpy_fits``): a fresh process's Bell jobs never import
numba, and give the numba path's values and, seeded, its very samples; once the ``small`` tier
is loaded the numba serial kernels run them; wide, long, noisy and dynamic jobs keep their paths; a
process of small jobs only loads the small tier in the background after enough numpy work."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.containers.sampler_pub import SamplerPub

from aqrt import Estimator, LocalService, Sampler, Session
from aqrt._concurrency import CancelFlag, engine_executor
from aqrt.backends.base import NOT_INLINE, ExecutionContext
from aqrt.backends.local import backend as local_backend
from aqrt.backends.local import warmup as local_warmup
from aqrt.engine import kernels, numpy_interpreter, simulate, warmup
from aqrt.job import JobRequest
from aqrt.noise import NoiseModel, depolarizing_error
from aqrt.options import Options

# The jobs both processes run: (program, circuit name, observables or shots, seed).
_JOBS = """
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter


def bell(measured):
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    if measured:
        circuit.measure_all()
    return circuit


def ansatz(measured):
    circuit = QuantumCircuit(5)
    for q, angle in enumerate([0.3, 1.1, 0.7, 2.0, 0.4]):
        circuit.ry(angle, q)
    for q in range(4):
        circuit.cx(q, q + 1)
    circuit.rz(0.9, 2)
    circuit.cz(0, 4)
    circuit.swap(1, 3)
    circuit.ccx(0, 2, 4)
    if measured:
        circuit.measure_all()
    return circuit


def swept():
    circuit = QuantumCircuit(3)
    theta = Parameter("theta")
    circuit.h(0)
    circuit.ry(theta, 1)
    circuit.cx(0, 2)
    circuit.cx(1, 2)
    return circuit


async def run_jobs(aqrt):
    from qiskit.quantum_info import SparsePauliOp

    out = {}
    async with aqrt.Session(service=aqrt.LocalService(), max_time=60):
        bell_values = await aqrt.Estimator().run([(bell(False), [SparsePauliOp(p) for p in ("ZZ", "XX", "ZI", "YY")])])
        out["bell evs"] = bell_values[0].data.evs.tolist()
        observable = SparsePauliOp.from_list([("ZIIXZ", 0.5), ("YYIII", 1.0)])
        ansatz_values = await aqrt.Estimator().run([(ansatz(False), observable)])
        out["ansatz evs"] = float(ansatz_values[0].data.evs)
        sweep = await aqrt.Estimator().run([(swept(), SparsePauliOp("ZZI"), [[0.1], [0.9], [2.5]])])
        out["sweep evs"] = sweep[0].data.evs.tolist()
        sampled = await aqrt.Sampler(options={"seed": 5}).run([bell(True)], shots=4000)
        out["bell samples"] = sampled[0].data.meas.array.reshape(-1).tolist()
        sampled = await aqrt.Sampler(options={"seed": 11}).run([ansatz(True)], shots=3000)
        out["ansatz samples"] = sampled[0].data.meas.array.reshape(-1).tolist()
    return out
"""

_FRESH_PROCESS = """
import asyncio, json, sys
from blockbuster import blockbuster_ctx

import aqrt
import aqrt._concurrency

JOBS

with blockbuster_ctx():  # no blocking call on the loop: nothing imported there, no file read
    out = asyncio.run(run_jobs(aqrt))
out["numba imported"] = "numba" in sys.modules
out["engine worker started"] = aqrt._concurrency._worker is not None
print(json.dumps(out))
"""


def _jobs_namespace() -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(textwrap.dedent(_JOBS), namespace)  # the very jobs the fresh process runs
    return namespace


@pytest.mark.asyncio
@pytest.mark.timeout(180)
async def test_a_fresh_process_runs_its_first_small_jobs_without_numba() -> None:
    """A fresh process's Bell Estimator and Sampler jobs (and a 5-qubit ansatz with a SWAP and
    a CCX, a 3-binding sweep) run inline on numpy: numba stays unimported, the engine worker
    never starts, nothing blocks the loop. The values are the numba path's (this process,
    kernels loaded) to 1e-12, the seeded samples are identical."""
    script = _FRESH_PROCESS.replace("JOBS", textwrap.dedent(_JOBS))
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    fresh = json.loads(done.stdout.splitlines()[-1])
    assert fresh.pop("numba imported") is False
    assert fresh.pop("engine worker started") is False
    await asyncio.to_thread(warmup, "complex128", ["small", "ops", "sweep", "sampling"])  # off the loop
    assert kernels.tier_loaded("small", "complex128")
    import aqrt

    loaded = await _jobs_namespace()["run_jobs"](aqrt)
    assert fresh["bell evs"] == pytest.approx([1.0, 1.0, 0.0, -1.0], abs=1e-12)
    for name in ("bell evs", "ansatz evs", "sweep evs"):
        np.testing.assert_allclose(fresh[name], loaded[name], rtol=0, atol=1e-12, err_msg=name)
    for name in ("bell samples", "ansatz samples"):
        assert fresh[name] == loaded[name], name
    bell_outcomes = np.array(fresh["bell samples"])
    assert set(bell_outcomes.tolist()) == {0, 3} and abs(np.mean(bell_outcomes == 3) - 0.5) < 0.03


@pytest.fixture
def nothing_loaded(monkeypatch: pytest.MonkeyPatch) -> set[tuple[str, str]]:
    """A process in which no tier is loaded yet (the kernels themselves stay compiled)."""
    for dtype in ("complex128", "complex64"):
        warmup(dtype, ["small", "ops"])  # for the comparisons
    loaded: set[tuple[str, str]] = set()
    monkeypatch.setattr(kernels, "_loaded", loaded)
    return loaded


def _bell(measured: bool = False, num_qubits: int = 2) -> QuantumCircuit:
    circuit = QuantumCircuit(num_qubits)
    circuit.h(0)
    circuit.cx(0, 1)
    if measured:
        circuit.measure_all()
    return circuit


def _estimate(*pubs: Any, options: Options | None = None) -> JobRequest:
    return JobRequest("job", "estimator", [EstimatorPub.coerce(pub) for pub in pubs], options or Options(), None)


def _sample(circuit: QuantumCircuit, shots: int, seed: int | None = 3) -> JobRequest:
    return JobRequest("job", "sampler", [SamplerPub.coerce(circuit, shots)], Options(seed=seed), None)


def _refuse(*_: Any, **__: Any) -> Any:
    raise AssertionError("this path must not run")


@pytest.mark.parametrize("dtype", ["complex128", "complex64"])
def test_numpy_runs_until_the_small_tier_loads_then_numba_does(
    nothing_loaded: set[tuple[str, str]], monkeypatch: pytest.MonkeyPatch, dtype: str
) -> None:
    backend = LocalService(dtype=dtype).backend()
    context = ExecutionContext({}, CancelFlag())
    estimate = _estimate((_bell(), ["ZZ", "XX", "ZI"]))
    sample = _sample(_bell(True), 1000)  # within the numba inline budget too
    with monkeypatch.context() as patch:  # nothing loaded: numpy runs them, numba's serial paths never
        patch.setattr(simulate, "run_serial", _refuse)
        patch.setattr(simulate, "serial_probabilities", _refuse)
        by_numpy = backend.run_inline(estimate, context)
        samples_by_numpy = backend.run_inline(sample, context)
    assert by_numpy is not NOT_INLINE and samples_by_numpy is not NOT_INLINE
    kernels.mark_loaded("small", dtype)  # what a warm-up leaves
    with monkeypatch.context() as patch:  # loaded: numba's serial paths run them, numpy never
        patch.setattr(numpy_interpreter, "term_values", _refuse)
        patch.setattr(numpy_interpreter, "probabilities", _refuse)
        by_numba = backend.run_inline(estimate, context)
        samples_by_numba = backend.run_inline(sample, context)
    assert by_numba is not NOT_INLINE and samples_by_numba is not NOT_INLINE
    tolerance = 1e-12 if dtype == "complex128" else 1e-6
    np.testing.assert_allclose(by_numpy[0].data.evs, [1.0, 1.0, 0.0], rtol=0, atol=tolerance)
    np.testing.assert_allclose(by_numpy[0].data.evs, by_numba[0].data.evs, rtol=0, atol=tolerance)
    assert np.array_equal(samples_by_numpy[0].data.meas.array, samples_by_numba[0].data.meas.array)
    assert samples_by_numpy[0].data.meas.get_counts().keys() == {"00", "11"}


def test_only_small_statevector_jobs_run_on_numpy(nothing_loaded: set[tuple[str, str]]) -> None:
    """Before the kernels load: a Bell job and a 4096-shot Bell Sampler job run inline; a circuit
    declaring more than NUMPY_MAX_QUBITS qubits, one of many gates, a million shots, a noisy job
    and a dynamic circuit go to the worker as before (NOT_INLINE), and so does every job after
    the small tier loads if it is over the numba inline budget (65536 shots of a Bell circuit)."""
    backend = LocalService().backend()
    context = ExecutionContext({}, CancelFlag())
    wide = _bell(num_qubits=local_warmup.NUMPY_MAX_QUBITS + 1)
    long = QuantumCircuit(10)
    for _ in range(20):
        long.ry(0.2, range(10))
        long.cx(range(9), range(1, 10))
    model = NoiseModel()
    model.add_quantum_error(depolarizing_error(0.01, 1), ["h"])
    noisy = _estimate((_bell(), "ZZ"), options=Options(simulator={"noise_model": model}))
    dynamic = QuantumCircuit(2, 1)
    dynamic.h(0)
    dynamic.measure(0, 0)
    with dynamic.if_test((dynamic.clbits[0], 1)):
        dynamic.x(1)
    inline = [_estimate((_bell(), "ZZ")), _sample(_bell(True), 4096)]
    refused = [
        _estimate((wide, "Z" * wide.num_qubits)),
        _estimate((long, "Z" * 10)),
        _sample(_bell(True), 1_000_000),
        noisy,
        _sample(dynamic, 100),
    ]
    for request in inline:
        assert local_warmup.numpy_fits(request)
        assert backend.run_inline(request, context) is not NOT_INLINE
    for request in refused:
        assert backend.run_inline(request, context) is NOT_INLINE
    assert [local_warmup.numpy_fits(request) for request in refused] == [False, False, False, True, True]
    assert not nothing_loaded  # nothing was loaded on the way
    kernels.mark_loaded("small", "complex128")
    assert backend.run_inline(_sample(_bell(True), 65536), context) is NOT_INLINE  # over numba's inline budget


@pytest.mark.asyncio
async def test_a_sessions_first_small_jobs_never_reach_the_worker(
    nothing_loaded: set[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through a Session, on the loop (blockbuster watching): the kernels are never asked for."""
    monkeypatch.setattr(local_backend, "warm_engine", _refuse)
    monkeypatch.setattr(local_backend.LocalBackend, "run_job", _refuse)
    theta = Parameter("theta")
    circuit = _bell()
    circuit.rz(theta, 1)
    async with Session(service=LocalService(), max_time=60):
        values = await Estimator().run([(circuit, "XX", [[0.0], [np.pi]])])
        counts = (await Sampler().run([_bell(True)], shots=100))[0].data.meas.get_counts()
    np.testing.assert_allclose(values[0].data.evs, [1.0, -1.0], rtol=0, atol=1e-12)
    assert counts.keys() <= {"00", "11"} and sum(counts.values()) == 100
    assert not nothing_loaded


class _RecordingExecutor:
    """The engine worker's stand-in: records what is submitted, runs nothing."""

    def __init__(self) -> None:
        self.submitted: list[tuple[Any, ...]] = []
        self.futures: list[concurrent.futures.Future[Any]] = []

    def submit(self, func: Any, *args: Any) -> concurrent.futures.Future[Any]:
        self.submitted.append((func, *args))
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.futures.append(future)
        return future


def test_seconds_on_numpy_past_the_threshold_load_the_small_tier_once_per_precision(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Below NUMPY_SECONDS_BEFORE_LOADING of numpy work nothing is loaded; the job that crosses
    it submits the small tier's load for its precision to the engine worker, once (later jobs do
    not submit it again), each precision counted apart; a failed load is logged, not raised."""
    executor = _RecordingExecutor()
    monkeypatch.setattr(local_warmup, "engine_executor", lambda: executor)  # counts start at zero (conftest)
    threshold = local_warmup.NUMPY_SECONDS_BEFORE_LOADING
    assert 0.5 <= threshold <= 10  # past a short script's worth of small jobs, well before an hour's
    local_warmup.note_numpy_seconds("complex128", 0.75 * threshold)
    local_warmup.note_numpy_seconds("complex64", 0.75 * threshold)
    assert executor.submitted == []
    local_warmup.note_numpy_seconds("complex128", 0.3 * threshold)
    assert executor.submitted == [(local_warmup.warm_engine, "complex128", ("small",))]
    for _ in range(3):
        local_warmup.note_numpy_seconds("complex128", threshold)
    assert len(executor.submitted) == 1
    local_warmup.note_numpy_seconds("complex64", 0.3 * threshold)
    assert executor.submitted[1] == (local_warmup.warm_engine, "complex64", ("small",))
    with caplog.at_level(logging.WARNING, logger="aqrt.engine"):
        executor.futures[0].set_result(None)
        executor.futures[1].set_exception(RuntimeError("no space left on device"))
    assert [record.getMessage() for record in caplog.records] == [
        "loading the engine's small tier in the background failed: RuntimeError('no space left on device')"
    ]


@pytest.mark.parametrize("dtype", ["complex128", "complex64"])
def test_a_process_of_small_jobs_moves_to_numba_after_enough_numpy(
    nothing_loaded: set[tuple[str, str]], monkeypatch: pytest.MonkeyPatch, dtype: str
) -> None:
    """Inline jobs on numpy count their time; past the threshold the small tier loads on the
    engine worker (for real) while the job that crossed it has its numpy result; the jobs after
    the load run on numba's serial kernels, with the numpy path's values."""
    monkeypatch.setattr(local_warmup, "NUMPY_SECONDS_BEFORE_LOADING", 1e-9)  # the first numpy job crosses it
    backend = LocalService(dtype=dtype).backend()
    context = ExecutionContext({}, CancelFlag())
    estimate = _estimate((_bell(), ["ZZ", "XX", "ZI"]))
    with monkeypatch.context() as patch:
        patch.setattr(simulate, "run_serial", _refuse)
        by_numpy = backend.run_inline(estimate, context)
    assert by_numpy is not NOT_INLINE
    assert local_warmup._numpy_seconds[dtype] > 0
    engine_executor().submit(lambda: None).result(timeout=120)  # one worker: the load ran before this
    assert ("small", dtype) in nothing_loaded
    with monkeypatch.context() as patch:
        patch.setattr(numpy_interpreter, "term_values", _refuse)
        by_numba = backend.run_inline(estimate, context)
    assert by_numba is not NOT_INLINE
    tolerance = 1e-12 if dtype == "complex128" else 1e-6
    np.testing.assert_allclose(by_numba[0].data.evs, by_numpy[0].data.evs, rtol=0, atol=tolerance)
    assert local_warmup._small_tier_requested == {dtype}
