"""The official qiskit-ibm-runtime client against ``aqrt serve`` on 127.0.0.1.

The server runs on its own event loop in a background thread (``serve_in_thread``, asyncio
debug mode; blockbuster watches that loop); the synchronous official client (requests) runs in the test's thread, as a
user's script would.

``IAM_URL`` points the client's IAM token manager at the server's ``/identity/token``;
``QISKIT_FUNCTIONS_EXPERIMENTAL`` makes ``Account.list_instances`` return the given CRN instead of
asking IBM Cloud's Global Search, so ``QiskitRuntimeService(instance=crn)`` needs no IBM service;
``url_resolver`` sends every Runtime call to the server.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp
from qiskit.transpiler import generate_preset_pass_manager
from qiskit_ibm_runtime import Batch, EstimatorV2, SamplerV2, Session
from qiskit_ibm_runtime.exceptions import RuntimeInvalidStateError, RuntimeJobMaxTimeoutError, RuntimeJobNotFound

from aqrt.primitives import EngineEstimator, EngineSampler
from aqrt.server import serve_in_thread

from .server_support import make_config

pytestmark = [
    pytest.mark.filterwarnings("ignore:The (Estimator|Sampler)V2 class is deprecated:DeprecationWarning"),
]


def _isa(backend, circuit: QuantumCircuit) -> QuantumCircuit:
    return generate_preset_pass_manager(backend=backend, optimization_level=1, seed_transpiler=3).run(circuit)


def _bell(measure: bool = False) -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.ry(0.4, 1)
    if measure:
        circuit.measure_all()
    return circuit


def _slow_isa_circuit(num_qubits: int = 22, layers: int = 120) -> QuantumCircuit:
    """Seconds of engine work, written in the served basis (ISA as it stands, no transpiling)."""
    circuit = QuantumCircuit(num_qubits)
    for layer in range(layers):
        for qubit in range(num_qubits):
            circuit.rz(0.1 * (qubit + layer + 1), qubit)
            circuit.sx(qubit)
        for qubit in range(num_qubits - 1):
            circuit.cx(qubit, qubit + 1)
    return circuit


def _wait(predicate: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout  # the test thread runs no event loop: real time
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_backends_target_and_isa_checks(connect) -> None:
    service = connect(backend_qubits=5, max_shots=5000, max_pubs=40)
    assert [backend.name for backend in service.backends()] == ["aqrt_statevector"]
    backend = service.backend("aqrt_statevector")
    target = backend.target
    assert target.num_qubits == 5
    assert {"cx", "cz", "rz", "sx", "x", "measure"} <= set(target.operation_names)
    assert len(target.build_coupling_map().get_edges()) == 5 * 4  # full connectivity
    assert backend.status().operational and backend.status().status_msg == "active"
    assert backend.configuration().simulator is False
    assert backend.configuration().max_shots == 5000  # the server's limits, as advertised
    assert backend.configuration().max_experiments == 40
    with pytest.raises(Exception, match=r"not an ISA circuit|is not supported by the target"):
        EstimatorV2(mode=backend).run([(_bell(), SparsePauliOp("ZZ"))])  # 'h' is not in the basis


def test_dynamic_circuits_run_as_advertised(connect) -> None:
    """Every instruction the served target lists runs: reset, mid-circuit measurement, if_else, for_loop."""
    service = connect(backend_qubits=5)
    backend = service.backend("aqrt_statevector")
    assert {"reset", "if_else", "for_loop", "while_loop", "switch_case"} <= set(backend.target.operation_names)
    circuit = QuantumCircuit(3, 3)
    circuit.x(0)
    circuit.measure(0, 0)  # always 1
    with circuit.if_test((circuit.clbits[0], 1)) as otherwise:
        circuit.x(1)
    with otherwise:
        circuit.x(2)
    circuit.reset(0)
    with circuit.for_loop(range(3)):
        circuit.x(2)  # three flips: qubit 2 ends in 1
    circuit.measure([0, 1, 2], [0, 1, 2])
    result = SamplerV2(mode=backend).run([_isa(backend, circuit)], shots=50).result()
    assert result[0].data.c.get_counts() == {"110": 50}


def test_job_mode_estimator_and_sampler_equal_the_local_engine(connect) -> None:
    service = connect(backend_qubits=5)
    backend = service.backend("aqrt_statevector")
    isa = _isa(backend, _bell())
    observables = [SparsePauliOp(label).apply_layout(isa.layout) for label in ("ZZ", "XX", "IY")]
    estimator_job = EstimatorV2(mode=backend).run([(isa, observables)])
    measured = _isa(backend, _bell(measure=True))
    sampler = SamplerV2(mode=backend)
    sampler.options.simulator.seed_simulator = 1234
    sampler_job = sampler.run([measured], shots=500)

    got = estimator_job.result()
    expected = EngineEstimator().run([(isa, observables)]).result()
    np.testing.assert_array_equal(got[0].data.evs, expected[0].data.evs)
    sampled = sampler_job.result()
    expected_counts = EngineSampler(seed=1234).run([measured], shots=500).result()[0].data.meas.get_counts()
    assert sampled[0].data.meas.get_counts() == expected_counts
    assert estimator_job.status() == "DONE" and estimator_job.session_id is None
    assert estimator_job.metrics()["usage"]["status"] == "final"
    assert "Completed" in estimator_job.logs()
    assert service.job(sampler_job.job_id()).status() == "DONE"
    assert {job.job_id() for job in service.jobs(limit=10)} == {estimator_job.job_id(), sampler_job.job_id()}


def test_session_and_batch_run_and_close(connect) -> None:
    service = connect(backend_qubits=5)
    backend = service.backend("aqrt_statevector")
    isa = _isa(backend, _bell())
    observable = SparsePauliOp("ZY").apply_layout(isa.layout)
    expected = EngineEstimator().run([(isa, observable)]).result()[0].data.evs
    for mode_class, mode_name in ((Session, "dedicated"), (Batch, "batch")):
        with mode_class(backend=backend, max_time=600) as mode:
            jobs = [EstimatorV2(mode=mode).run([(isa, observable)]) for _ in range(3)]
            results = [job.result() for job in jobs]
            details = mode.details()
            assert details["mode"] == mode_name and details["max_time"] == 600
            assert mode.status() == "In progress, accepting new jobs"
        for job, result in zip(jobs, results, strict=True):
            assert job.session_id == mode.session_id
            np.testing.assert_array_equal(result[0].data.evs, expected)
        _wait(lambda: mode.status() == "Closed")  # leaving the block closed it
        assert mode.details()["accepting_jobs"] is False
        with pytest.raises(Exception, match="closed"):
            EstimatorV2(mode=mode).run([(isa, observable)])


def test_cancel_a_job_and_a_session(connect) -> None:
    service = connect(backend_qubits=22)
    backend = service.backend("aqrt_statevector")
    slow = _slow_isa_circuit()
    observable = SparsePauliOp("Z" * 22)

    job = EstimatorV2(mode=backend).run([(slow, observable)])
    _wait(lambda: job.status() == "RUNNING")
    job.cancel()
    _wait(lambda: job.status() == "CANCELLED")
    with pytest.raises(RuntimeInvalidStateError, match="cancelled"):
        job.result()

    session = Session(backend=backend)
    first = EstimatorV2(mode=session).run([(slow, observable)])
    queued = EstimatorV2(mode=session).run([(slow, observable)])
    _wait(lambda: first.status() == "RUNNING")
    session.cancel()
    _wait(lambda: first.status() == "CANCELLED" and queued.status() == "CANCELLED")
    _wait(lambda: session.status() == "Closed")


def test_job_tags_filter_the_listing(connect) -> None:
    service = connect(backend_qubits=5)
    backend = service.backend("aqrt_statevector")
    isa = _isa(backend, _bell(measure=True))
    tagged = SamplerV2(mode=backend)
    tagged.options.environment.job_tags = ["experiment-7"]
    tagged_job = tagged.run([isa], shots=10)
    other_job = SamplerV2(mode=backend).run([isa], shots=10)
    tagged_job.result(), other_job.result()
    assert {job.job_id() for job in service.jobs(pending=False)} == {tagged_job.job_id(), other_job.job_id()}
    assert [job.job_id() for job in service.jobs(job_tags=["experiment-7"])] == [tagged_job.job_id()]
    assert tagged_job.tags == ["experiment-7"]
    assert other_job.update_tags(["experiment-8"]) == ["experiment-8"]
    assert [job.job_id() for job in service.jobs(job_tags=["experiment-8"])] == [other_job.job_id()]
    service.delete_job(other_job.job_id())
    assert [job.job_id() for job in service.jobs()] == [tagged_job.job_id()]
    with pytest.raises(RuntimeJobNotFound):
        service.delete_job(other_job.job_id())


def test_the_readme_recipe_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("\n## aqrt serve") :]
    recipe = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    assert 'SERVER = "http://127.0.0.1:8765"' in recipe and "--api-key my-key=alice" in section
    monkeypatch.setenv("IAM_URL", "unset")  # restored after the test; the recipe sets both
    monkeypatch.setenv("QISKIT_FUNCTIONS_EXPERIMENTAL", "")
    with serve_in_thread(make_config(tmp_path, api_keys={"my-key": "alice"}), debug=True) as url:
        exec(compile(recipe.replace("http://127.0.0.1:8765", url), "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert abs(float(re.search(r"^<ZZ> = (\S+)$", printed, re.MULTILINE).group(1)) - 1.0) < 1e-12, printed
    counts = eval(re.search(r"^counts: (\{.*\})$", printed, re.MULTILINE).group(1))
    assert set(counts) <= {"00", "11"} and sum(counts.values()) == 1000


def test_a_job_past_its_max_execution_time_fails_as_ibm_reports_it(connect) -> None:
    service = connect(backend_qubits=22)
    backend = service.backend("aqrt_statevector")
    estimator = EstimatorV2(mode=backend)
    estimator.options.max_execution_time = 1
    job = estimator.run([(_slow_isa_circuit(), SparsePauliOp("Z" * 22))])
    with pytest.raises(RuntimeJobMaxTimeoutError, match="max_execution_time"):
        job.result()
    assert job.status() == "ERROR"
    assert "1305" in job.error_message()
    assert job.inputs["pubs"][0][0].num_qubits == 22  # the stored params, decoded by the client


def test_official_client_noise_model_and_resilience_through_the_server(connect) -> None:
    """``options.simulator.noise_model`` travels as the official client sends it (Aer's dict form)
    and runs on the server's engine; resilience level 1 (TREX) then removes the read-out bias."""
    from qiskit_aer.noise import NoiseModel, ReadoutError, depolarizing_error

    model = NoiseModel()
    model.add_all_qubit_quantum_error(depolarizing_error(0.01, 2), ["cx"])
    model.add_all_qubit_readout_error(ReadoutError([[0.95, 0.05], [0.1, 0.9]]))
    service = connect()
    backend = service.backend("aqrt_statevector")
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    isa = _isa(backend, circuit)
    observable = SparsePauliOp("ZZ").apply_layout(isa.layout)
    values = {}
    for level in (0, 1):
        estimator = EstimatorV2(mode=backend)
        estimator.options.simulator.noise_model = model
        estimator.options.simulator.seed_simulator = 5
        estimator.options.resilience_level = level
        estimator.options.default_precision = 0.01
        result = estimator.run([(isa, observable)]).result()
        values[level] = float(result[0].data.evs)
    # <ZZ> = 1 ideally; read-out errors take it to about (1 - 0.15)^2 and the CX's error a little more
    assert values[0] < 0.8
    assert abs(values[1] - 0.99) < 0.05  # TREX leaves only the CX's depolarizing error
