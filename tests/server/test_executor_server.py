"""IBM's ``executor`` program served by ``aqrt serve``: qiskit-ibm-runtime's executor-based
Sampler and Estimator (which compile PUBs into a ``QuantumProgram``, submit it as program
``executor`` and post-process the bits client-side) against a real server on 127.0.0.1
(issue #13 item 1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Gate
from qiskit.quantum_info import SparsePauliOp, Statevector
from qiskit.transpiler import generate_preset_pass_manager
from qiskit_ibm_runtime.executor_estimator import Estimator
from qiskit_ibm_runtime.executor_sampler import Sampler
from qiskit_ibm_runtime.quantum_program import QuantumProgram
from scipy.stats import chi2

from aqrt.wire.quantum_program import encode_executor_params

from ..executor.support import ghz_isa
from .server_support import make_config, running_server

DEVICES = ("aqrt_statevector", "fake_manila")
SEEDED = {"experimental": {"aqrt_seed": 3}}  # the server's draws, fixed (aqrt's option)


def estimate(backend: Any, circuit: QuantumCircuit, label: str, level: int, seed: int = 9) -> tuple[float, float]:
    """The executor Estimator's value and std; ``seed`` fixes the server's draws (aqrt's
    ``experimental`` option ``aqrt_seed``, which the client sends on)."""
    estimator = Estimator(mode=backend, options={"resilience_level": level, "experimental": {"aqrt_seed": seed}})
    observable = SparsePauliOp(label).apply_layout(circuit.layout)
    data = estimator.run([(circuit, observable)]).result()[0].data
    return float(data.evs), float(data.stds)


def test_executor_estimator_levels_on_a_noisy_device(connect, manila) -> None:
    """GHZ-4 <ZZZZ> on fake_manila with its noise; the official local mode (Aer) gives 0.677 +-
    0.012 at level 0, 0.957 +- 0.016 at level 1, 0.971 +- 0.019 at level 2 (h5's figures)."""
    service = connect(backends=DEVICES)
    backend = service.backend("fake_manila")
    circuit = ghz_isa(backend.target)
    values = {level: estimate(backend, circuit, "ZZZZ", level) for level in (0, 1, 2)}
    (level0, std0), (level1, std1), (level2, _) = values[0], values[1], values[2]
    # Bounds >= 5 sigma from the values measured unseeded (about 0.66, 0.95, 0.97, sigmas 0.012,
    # 0.016, 0.03), so other seeds pass too; a run without the device's noise (1, 1, 1) or
    # without mitigation (0.66 at every level) fails them.
    assert 0.55 < level0 < 0.8, values  # the device's noise shows (noiseless: 1)
    assert abs(level1 - 1) < 0.15 and abs(level2 - 1) < 0.2, values  # TREX; ZNE with it
    assert level1 - level0 > 0.15, values
    assert abs(level2 - 1) < abs(level0 - 1) - 0.1, values
    assert 0 < std0 < 0.05 and 0 < std1 < 0.05, values
    assert estimate(backend, circuit, "ZZZZ", 0) == values[0]  # one seed, the same draws
    assert estimate(backend, circuit, "ZZZZ", 0, seed=10) != values[0]


def test_executor_estimator_level_0_on_the_noiseless_simulator_is_exact(connect) -> None:
    service = connect(backends=DEVICES)
    backend = service.backend("aqrt_statevector")
    angle = 1.0
    circuit = ghz_isa(backend.target, angle=angle)
    logical = QuantumCircuit(4)
    logical.ry(angle, 0)
    for qubit in range(3):
        logical.cx(qubit, qubit + 1)
    for label in ("XXXX", "ZZZZ"):
        exact = Statevector(logical).expectation_value(SparsePauliOp(label)).real  # sin(1), 1
        value, std = estimate(backend, circuit, label, 0)
        assert std < 0.05
        assert abs(value - exact) < 5 * std + 1e-9, (label, value, std, exact)


def test_executor_sampler_counts_follow_the_exact_distribution(connect) -> None:
    service = connect(backends=DEVICES)
    backend = service.backend("aqrt_statevector")
    angle = 1.0
    circuit = ghz_isa(backend.target, angle=angle, measure=True)
    shots = 4000
    counts = Sampler(mode=backend, options=SEEDED).run([circuit], shots=shots).result()[0].data.meas.get_counts()
    assert sum(counts.values()) == shots and set(counts) <= {"1000", "0111"}, counts
    expected = {"1000": np.cos(angle / 2) ** 2 * shots, "0111": np.sin(angle / 2) ** 2 * shots}
    statistic = sum((counts.get(key, 0) - value) ** 2 / value for key, value in expected.items())
    assert statistic < chi2.ppf(0.999, 1), (counts, expected)


def test_executor_sampler_on_the_noisy_device_breaks_correlations(connect, manila) -> None:
    service = connect(backends=DEVICES)
    backend = service.backend("fake_manila")
    circuit = ghz_isa(backend.target, measure=True)
    shots = 4000
    counts = Sampler(mode=backend, options=SEEDED).run([circuit], shots=shots).result()[0].data.meas.get_counts()
    ideal = counts.get("1000", 0) + counts.get("0111", 0)
    assert sum(counts.values()) == shots
    # h5 measured the official local mode's counts within TV 0.026 of aqrt's; noiseless: all ideal
    assert 0.75 * shots < ideal < 0.99 * shots, counts  # about 0.83
    assert counts["1000"] > 0.35 * shots and counts["0111"] > 0.35 * shots, counts  # about 0.41 each


def _raw_program(circuit: QuantumCircuit, shots: int = 100, meas_level: str = "classified") -> dict[str, Any]:
    program = QuantumProgram(shots=shots, meas_level=meas_level)
    program.append_circuit_item(circuit)
    return json.loads(json.dumps(encode_executor_params(program)))


@pytest.fixture(scope="module")
def bell_programs(manila) -> dict[str, dict[str, Any]]:
    """Executor params (as the client posts them) of a Bell circuit: not ISA for fake_manila,
    ISA, and ISA asking kerneled data; made off the event loop."""
    bell = QuantumCircuit(2)
    bell.h(0)  # h is not in fake_manila's basis
    bell.cx(0, 1)
    bell.measure_all()
    isa = generate_preset_pass_manager(optimization_level=1, target=manila.target, seed_transpiler=1).run(bell)
    opaque = QuantumCircuit(1, 1)
    opaque.append(Gate("mystery", 1, []), [0])  # no definition: nothing can run it
    opaque.measure(0, 0)
    return {
        "opaque": _raw_program(opaque),
        "non_isa": _raw_program(bell),
        "isa": _raw_program(isa),
        "kerneled": _raw_program(isa, meas_level="kerneled"),
    }


@pytest.mark.asyncio
async def test_non_isa_fails_with_1517_and_kerneled_is_refused(tmp_path: Path, bell_programs) -> None:
    async with running_server(make_config(tmp_path, backends=DEVICES)) as client:
        token = await client.token()
        body = {"program_id": "executor", "backend": "fake_manila", "params": bell_programs["non_isa"]}
        status, answer = await client.call("POST", "/jobs", token, body=body)
        assert status == 200, answer  # accepted, then Failed, as IBM does
        job = await client.wait_final(token, answer["id"])
        assert job["state"]["status"] == "Failed" and job["state"]["reason_code"] == 1517, job
        assert "The instruction h on qubits (0,) is not supported" in job["state"]["reason"]
        body["params"] = bell_programs["kerneled"]
        status, answer = await client.call("POST", "/jobs", token, body=body)
        assert status == 400 and "meas_level='kerneled'" in str(answer), answer
        body["params"] = bell_programs["isa"]
        status, answer = await client.call("POST", "/jobs", token, body=body)
        assert status == 200, answer
        job = await client.wait_final(token, answer["id"])
        assert job["state"]["status"] == "Completed" and job["program"]["id"] == "executor", job
        status, text = await client.call("GET", f"/jobs/{answer['id']}/results", token)
        assert status == 200 and text["schema_version"] == "v2.0", text
        assert len(text["data"]) == 1 and set(text["data"][0]["results"]) == {"meas"}, text
        opaque = {"program_id": "executor", "backend": "aqrt_statevector", "params": bell_programs["opaque"]}
        status, answer = await client.call("POST", "/jobs", token, body=opaque)
        assert status == 400 and "mystery" in str(answer), answer  # checked off the loop, before a job exists
        seeded = json.loads(json.dumps(bell_programs["isa"]))
        seeded["options"]["experimental"] = {"aqrt_seed": "seven"}
        status, answer = await client.call("POST", "/jobs", token, body={**body, "params": seeded})
        assert status == 400 and "aqrt_seed" in str(answer), answer
        body["params"] = {"schema_version": "v2.0", "quantum_program": "not a program"}
        status, answer = await client.call("POST", "/jobs", token, body=body)
        assert status == 400, answer


def test_executor_jobs_run_in_a_session(connect) -> None:
    from qiskit_ibm_runtime import Session

    service = connect(backends=DEVICES)
    backend = service.backend("aqrt_statevector")
    circuit = ghz_isa(backend.target, measure=True)
    with Session(backend=backend) as session:
        sampler = Sampler(mode=session)
        first = sampler.run([circuit], shots=500).result()[0].data.meas.get_counts()
        job = sampler.run([circuit], shots=300)
        assert job.session_id == session.session_id
        second = job.result()[0].data.meas.get_counts()
    assert set(first) | set(second) == {"1000", "0111"}
    assert sum(first.values()) == 500 and sum(second.values()) == 300


@pytest.mark.slow
def test_a_127_qubit_device_s_isa_circuit_costs_its_active_qubits(connect) -> None:
    """fake_sherbrooke: the client measures all 127 qubits (twirled); the server runs the GHZ-4's
    group and the lone qubits apart (the official local mode runs out of memory). h5 measured
    0.82 +- 0.01 at level 0 and 0.96 +- 0.01 at level 1 through aqrt."""
    service = connect(backends=("aqrt_statevector", "fake_sherbrooke"))
    backend = service.backend("fake_sherbrooke")
    assert backend.num_qubits == 127
    circuit = ghz_isa(backend.target)
    assert circuit.num_qubits == 127
    unmitigated, std0 = estimate(backend, circuit, "ZZZZ", 0)
    mitigated, std1 = estimate(backend, circuit, "ZZZZ", 1)
    assert 0.6 < unmitigated < 0.95, (unmitigated, std0)
    assert abs(mitigated - 1) < 0.1, (mitigated, std1)
    assert mitigated - unmitigated > 3 * np.hypot(std0, std1)


@pytest.mark.asyncio
async def test_a_restart_reruns_an_unfinished_executor_job(tmp_path: Path, bell_programs) -> None:
    from .server_support import slow_circuit

    config = make_config(tmp_path, backends=DEVICES)
    async with running_server(config) as client:
        token = await client.token()
        _, session = await client.call("POST", "/sessions", token, body={"mode": "batch", "backend": "fake_manila"})
        slow = await client.submit(token, "estimator", [(slow_circuit(20, 30), "Z" * 20)])
        await client.wait_status(token, slow, "Running")
        body = {"program_id": "executor", "params": bell_programs["isa"], "session_id": session["id"]}
        status, answer = await client.call("POST", "/jobs", token, body=body)
        assert status == 200, answer
        _, job = await client.call("GET", f"/jobs/{answer['id']}", token)
        assert job["state"]["status"] == "Queued"  # behind the slow job, for the one engine
    # stopped with the executor job unfinished: re-decoded from its stored params at the restart
    async with running_server(config) as client:
        job = await client.wait_final(token, answer["id"])
        assert job["state"]["status"] == "Completed", job
        status, result = await client.call("GET", f"/jobs/{answer['id']}/results", token)
        assert status == 200 and result["schema_version"] == "v2.0"
        assert result["data"][0]["results"]["meas"]["shape"] == [100, 2], result
