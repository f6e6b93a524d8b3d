"""ISA circuits of 127-qubit (FakeSherbrooke) and 156-qubit (FakeFez) devices run: a few active
qubits of a full-width circuit (the runner drops the idle ones). Run without noise here, to
compare exactly; with noise only the active qubits' noise is simulated (test_noisy_devices.py)."""

from __future__ import annotations

import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp, Statevector
from qiskit_ibm_runtime.fake_provider import FakeFez

from aqrt import Estimator, LocalService, Sampler, Session
from aqrt.backends.local.compaction import compact_circuit

from .support import isa_for

pytestmark = pytest.mark.asyncio

SHOTS = 1000


def _ghz(width: int, measure: bool) -> QuantumCircuit:
    circuit = QuantumCircuit(width)
    circuit.h(0)
    for qubit in range(width - 1):
        circuit.cx(qubit, qubit + 1)
    if measure:
        circuit.measure_all()
    return circuit


@pytest.fixture(scope="module")
def fez() -> FakeFez:
    device = FakeFez()
    _ = device.target
    return device


@pytest.fixture(scope="module", params=["sherbrooke", "fez"])
def wide(request, sherbrooke, fez):
    """A device, a measured 4-qubit GHZ circuit and an unmeasured one with Z⊗4, all ISA."""
    device = sherbrooke if request.param == "sherbrooke" else fez
    sampled = isa_for(device, _ghz(4, measure=True))
    estimated = isa_for(device, _ghz(4, measure=False))
    observable = SparsePauliOp(["ZZZZ", "XXXX"]).apply_layout(estimated.layout)
    return device, sampled, (estimated, observable)


async def test_a_wide_isa_circuit_samples_on_its_device(wide) -> None:
    device, sampled, _ = wide
    assert sampled.num_qubits == device.num_qubits in (127, 156)
    result = await Sampler(mode=LocalService(noise=False).device(device), options={"seed": 3}).run(
        [sampled], shots=SHOTS
    )
    counts = result[0].data.meas.get_counts()
    assert set(counts) == {"0000", "1111"}
    assert sum(counts.values()) == SHOTS
    assert 400 < counts["0000"] < 600


async def test_a_wide_isa_circuit_estimates_on_its_device(wide) -> None:
    device, _, pub = wide
    async with Session(service=LocalService(noise=False), backend=device):
        result = await Estimator().run([pub])
    assert float(result[0].data.evs) == pytest.approx(2.0, abs=1e-10)  # <ZZZZ> = <XXXX> = 1 on GHZ


def _rotations(width: int, measure: bool) -> QuantumCircuit:
    """Not a Clifford circuit: it runs on the statevector route whatever its width."""
    circuit = QuantumCircuit(width)
    for qubit in range(width):
        circuit.ry(0.3 + 0.4 * qubit, qubit)
    for qubit in range(width - 1):
        circuit.cx(qubit, qubit + 1)
        circuit.rz(0.2 * (qubit + 1), qubit + 1)
    circuit.rx(1.1, 0)
    if measure:
        circuit.measure_all()
    return circuit


@pytest.fixture(scope="module")
def rotations(wide):
    """The device, a non-Clifford 5-qubit circuit, its ISA form and its measured ISA form (transpiled off the loop)."""
    device = wide[0]
    logical = _rotations(5, measure=False)
    return device, logical, isa_for(device, logical), isa_for(device, _rotations(5, measure=True))


async def test_results_equal_the_same_circuit_on_its_active_qubits(rotations) -> None:
    device, logical, isa, measured = rotations
    labels = ["ZZIII", "IXYII", "IIIZX", "YIIIZ"]
    observables = [SparsePauliOp(label).apply_layout(isa.layout) for label in labels]
    exact = LocalService(noise=False).device(device)
    got = await Estimator(mode=exact).run([(isa, observables)])
    expected = [Statevector(logical).expectation_value(SparsePauliOp(label)).real for label in labels]
    assert got[0].data.evs == pytest.approx(expected, abs=1e-10)
    assert got[0].metadata["simulator_metadata"]["active_qubits"] == 5

    compact = compact_circuit(measured).circuit
    assert compact.num_qubits == 5
    wide_counts = (await Sampler(mode=exact, options={"seed": 11}).run([measured], shots=SHOTS))[0]
    small_counts = (await Sampler(mode="aqrt_statevector", options={"seed": 11}).run([compact], shots=SHOTS))[0]
    assert wide_counts.data.meas.get_counts() == small_counts.data.meas.get_counts()
