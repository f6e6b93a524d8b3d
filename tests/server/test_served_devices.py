"""``aqrt serve --backend fake_...``: fake devices served with their own documents and noise, and
IBM's ISA rule on the server (code 1517), with the official client and over raw HTTP (issue #13)."""

from __future__ import annotations

from pathlib import Path

import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp
from qiskit.transpiler import generate_preset_pass_manager
from qiskit_ibm_runtime import EstimatorV2, SamplerV2, Session
from qiskit_ibm_runtime.fake_provider import FakeManilaV2

from aqrt.backends.local import LocalService

from .server_support import bell, make_config, running_server

pytestmark = [
    pytest.mark.filterwarnings("ignore:The (Estimator|Sampler)V2 class is deprecated:DeprecationWarning"),
]

DEVICES = ("aqrt_statevector", "fake_manila")


def _ghz(n: int) -> QuantumCircuit:
    circuit = QuantumCircuit(n)
    circuit.h(0)
    for qubit in range(n - 1):
        circuit.cx(qubit, qubit + 1)
    return circuit


def test_the_official_client_sees_the_device_s_target_and_its_jobs_run_with_the_device_s_noise(connect) -> None:
    from aqrt.sync import Estimator as LocalEstimator

    service = connect(backends=DEVICES)
    assert {backend.name for backend in service.backends()} == set(DEVICES)
    backend = service.backend("fake_manila")
    reference = FakeManilaV2().target
    assert backend.num_qubits == 5 and set(backend.target.operation_names) >= {"cx", "sx", "rz", "x", "measure"}
    assert set(backend.target.qargs_for_operation_name("cx")) == set(reference.qargs_for_operation_name("cx"))
    isa = generate_preset_pass_manager(backend=backend, optimization_level=1, seed_transpiler=3).run(_ghz(3))
    observable = SparsePauliOp("IZZ").apply_layout(isa.layout)  # 1 without noise
    with Session(backend=backend) as session:  # the official client asks a precision > 0: 1e-3
        served = EstimatorV2(mode=session).run([(isa, observable)], precision=1e-3).result()[0]
    # the same ISA circuit on aqrt's own device backend: the exact noisy value (density matrix)
    device = LocalService(noise=True).backend("fake_manila")
    local = LocalEstimator(mode=device).run([(isa, observable)], precision=0.0).result()[0]
    assert 0.5 < float(local.data.evs) < 0.99  # the device's noise (noiseless: 1)
    assert float(served.data.evs) == pytest.approx(float(local.data.evs), abs=5e-3)
    measured = _ghz(3)
    measured.measure_all()
    isa_measured = generate_preset_pass_manager(backend=backend, optimization_level=1, seed_transpiler=3).run(measured)
    counts = SamplerV2(mode=backend).run([isa_measured], shots=4000).result()[0].data.meas.get_counts()
    broken = sum(count for bits, count in counts.items() if bits not in ("000", "111"))
    assert 0.01 < broken / 4000 < 0.4  # the device's errors break the GHZ correlations (noiseless: 0)


@pytest.fixture(scope="module")
def manila_isa_bell() -> list[tuple[QuantumCircuit, SparsePauliOp]]:
    """A Bell circuit transpiled for FakeManilaV2 and its ZZ, made off the event loop (reading the
    device's files would block it)."""
    isa = generate_preset_pass_manager(target=FakeManilaV2().target, optimization_level=1, seed_transpiler=1).run(
        bell()
    )
    return [(isa, SparsePauliOp("ZZ").apply_layout(isa.layout))]


@pytest.mark.asyncio
async def test_non_isa_and_too_wide_circuits_fail_with_ibm_s_1517(tmp_path: Path, manila_isa_bell) -> None:
    async with running_server(make_config(tmp_path, backends=DEVICES, backend_qubits=4)) as client:
        token = await client.token()
        # h is not in fake_manila's basis: accepted, then Failed with IBM's code and words
        job_id = await client.submit(token, "estimator", [(bell(), "ZZ")], backend="fake_manila")
        job = await client.wait_final(token, job_id)
        assert job["state"]["status"] == "Failed" and job["state"]["reason_code"] == 1517
        assert job["state"]["reason"].startswith("Circuits do not match the target definition (non-ISA circuits).")
        assert "The instruction h on qubits (0,) is not supported" in job["state"]["reason"]
        status, answer = await client.call("GET", f"/jobs/{job_id}/results", token)
        assert status == 200 and "non-ISA" in str(answer)
        # wider than aqrt_statevector's advertised 4 qubits
        wide = QuantumCircuit(6)
        wide.x(5)
        job_id = await client.submit(token, "estimator", [(wide, "Z" * 6)])
        job = await client.wait_final(token, job_id)
        assert (
            job["state"]["reason_code"] == 1517
            and "6 qubits but the target system requires 4" in job["state"]["reason"]
        )
        # an ISA circuit for the device runs (on its noisy backend) and completes
        job_id = await client.submit(token, "estimator", manila_isa_bell, backend="fake_manila")
        job = await client.wait_final(token, job_id)
        assert job["state"]["status"] == "Completed"
        result = await client.result(token, job_id)
        assert 0.5 < float(result[0].data.evs) < 0.99 and result.metadata["noise"] == "device"
        status, listing = await client.call("GET", "/backends", token)
        assert status == 200 and [entry["name"] for entry in listing["devices"]] == list(DEVICES)
        status, missing = await client.call("GET", "/backends/fake_nowhere/configuration", token)
        assert status == 404 and "fake_manila" in str(missing)


@pytest.mark.asyncio
async def test_a_restart_without_a_backend_ends_its_sessions_and_its_unfinished_jobs(
    tmp_path: Path, manila_isa_bell
) -> None:
    async with running_server(make_config(tmp_path, backends=DEVICES)) as client:
        token = await client.token()
        body = {"backend": "fake_manila", "mode": "batch"}
        status, session = await client.call("POST", "/sessions", token, body=body)
        assert status == 200, session
        # the server stops at once: the job is left unfinished (re-run at the next start, if it can be)
        job_id = await client.submit(
            token, "estimator", manila_isa_bell, backend="fake_manila", session_id=session["id"]
        )
    async with running_server(make_config(tmp_path)) as client:  # aqrt_statevector only now
        token = await client.token()
        job = await client.wait_final(token, job_id)
        assert job["state"]["status"] in ("Completed", "Cancelled", "Failed")
        if job["state"]["status"] != "Completed":  # it had not finished when the server stopped
            assert "fake_manila is no longer served" in job["state"]["reason"]
        status, stored = await client.call("GET", f"/sessions/{session['id']}", token)
        assert status == 200 and stored["accepting_jobs"] is False
