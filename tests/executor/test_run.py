"""run_quantum_program: circuit items and samplex items on aqrt's engine, bits in IBM's layout."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit_ibm_runtime.quantum_program import QuantumProgram
from qiskit_ibm_runtime.results.quantum_program import QuantumProgramResult

from aqrt._concurrency import CancelFlag
from aqrt.backends.local.device import DeviceBackend
from aqrt.backends.local.executor_program import (
    run_quantum_program,
    run_quantum_program_async,
    sample_samplex_item,
    validate_quantum_program,
)
from aqrt.errors import CircuitTooLargeError, InvalidOptionsError, InvalidPubError, JobCancelledError

from .conftest import small_program


def test_circuit_item_bits_are_clbits_in_order_per_element(exact_manila: DeviceBackend) -> None:
    result = run_quantum_program(small_program(shots=400), exact_manila, seed=11)
    assert isinstance(result, QuantumProgramResult)
    assert result._semantic_role == "custom-role" and result.passthrough_data["note"] == "kept"
    bits = result[0]["c"]
    assert bits.dtype == np.bool_ and bits.shape == (3, 400, 3)
    # clbit 0 holds qubit 2 (always 1), clbit 1 is never written, clbit 2 holds qubit 0
    assert bits[..., 0].all() and not bits[..., 1].any()
    ones = bits[..., 2].mean(axis=1)  # P(1) = cos^2(theta / 2) at theta = 0, pi/2, pi
    assert ones[0] == 1.0 and ones[2] == 0.0
    assert abs(ones[1] - 0.5) < 5 * 0.5 / np.sqrt(400)


def test_samplex_item_twirls_and_the_flips_undo_it(exact_manila: DeviceBackend) -> None:
    result = run_quantum_program(small_program(shots=300, randomizations=8), exact_manila, seed=3)
    item = result[1]
    assert set(item) == {"meas", "measurement_flips.meas"}  # the bound parameter_values are not returned
    raw, flips = item["meas"], item["measurement_flips.meas"]
    assert raw.shape == (8, 300, 2) and flips.shape == (8, 1, 2)
    drawn = sample_samplex_item(small_program(randomizations=8).items[1], np.random.default_rng(3))
    assert drawn["parameter_values"].shape == (8, 12)
    assert len({tuple(row) for row in drawn["parameter_values"]}) > 1  # randomizations differ
    assert flips.any() and not flips.all()  # some measurements were twirled, not all
    corrected = raw ^ flips
    assert (corrected[..., 0] == corrected[..., 1]).all()  # a Bell pair: the qubits agree
    assert abs(corrected[..., 0].mean() - 0.5) < 5 * 0.5 / np.sqrt(8 * 300)
    # without undoing the flips the qubits disagree in the twirled randomizations
    assert not (raw[..., 0] == raw[..., 1]).all()


def test_a_seed_repeats_every_draw(exact_manila: DeviceBackend) -> None:
    first = run_quantum_program(small_program(), exact_manila, seed=7)
    again = run_quantum_program(small_program(), exact_manila, seed=7)
    other = run_quantum_program(small_program(), exact_manila, seed=8)
    for name in ("meas", "measurement_flips.meas"):
        np.testing.assert_array_equal(first[1][name], again[1][name])
    np.testing.assert_array_equal(first[0]["c"], again[0]["c"])
    assert not np.array_equal(first[1]["measurement_flips.meas"], other[1]["measurement_flips.meas"])


def test_noise_of_the_device_applies(noisy_manila: DeviceBackend) -> None:
    """On the noisy device an x gate's qubit reads 0 sometimes; on the exact one never."""
    circuit = QuantumCircuit(1, 1)
    circuit.x(0)
    circuit.measure(0, 0)
    program = QuantumProgram(shots=4000)
    program.append_circuit_item(circuit)
    bits = run_quantum_program(program, noisy_manila, seed=1)[0]["c"]
    assert bits.shape == (4000, 1)
    error = 1 - bits.mean()
    readout = noisy_manila.device.target["measure"][(0,)].error  # manila's qubit 0: ~2.5e-2
    assert 0.3 * readout < error < 3 * readout + 0.01


@pytest.mark.parametrize("level", ["kerneled", "avg_kerneled", "both"])
def test_levels_a_simulator_cannot_produce_are_refused(exact_manila: DeviceBackend, level: str) -> None:
    program = small_program()
    program.meas_level = level
    with pytest.raises(InvalidOptionsError, match=f"meas_level='{level}'.*classified"):
        run_quantum_program(program, exact_manila)


def test_a_circuit_that_is_not_isa_for_the_device_is_refused(exact_manila: DeviceBackend) -> None:
    circuit = QuantumCircuit(2, 2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure([0, 1], [0, 1])
    program = QuantumProgram(shots=10)
    program.append_circuit_item(circuit)
    with pytest.raises(InvalidPubError, match="PUB 0: The instruction h on qubits"):
        run_quantum_program(program, exact_manila)


def test_cancel_stops_before_the_next_item(exact_manila: DeviceBackend) -> None:
    flag = CancelFlag()
    flag.set()
    with pytest.raises(JobCancelledError, match="job exe-1 was cancelled"):
        run_quantum_program(small_program(), exact_manila, cancel=flag, job_id="exe-1")


@pytest.mark.asyncio
async def test_async_run_takes_the_engine_worker_and_repeats_the_sync_run(exact_manila: DeviceBackend) -> None:
    program = small_program()
    ours = await run_quantum_program_async(program, exact_manila, seed=21)
    sync = await asyncio.to_thread(run_quantum_program, program, exact_manila, seed=21)
    np.testing.assert_array_equal(ours[0]["c"], sync[0]["c"])
    np.testing.assert_array_equal(ours[1]["meas"], sync[1]["meas"])


@pytest.mark.asyncio
async def test_cancelling_the_awaiting_task_sets_the_flag(exact_manila: DeviceBackend) -> None:
    flag = CancelFlag()
    task = asyncio.ensure_future(run_quantum_program_async(small_program(shots=2000), exact_manila, cancel=flag))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises((asyncio.CancelledError, JobCancelledError)):
        await task
    assert flag.is_set()


def test_validation_at_submission_refuses_what_the_run_would(exact_manila: DeviceBackend) -> None:
    validate_quantum_program(small_program(), exact_manila)  # an ISA program passes
    wide = QuantumCircuit(6, 1)  # manila has 5 qubits
    wide.x(5)
    wide.measure(5, 0)
    program = small_program()
    program.append_circuit_item(wide)
    with pytest.raises(CircuitTooLargeError, match="PUB 2: The circuit has 6 qubits"):
        validate_quantum_program(program, exact_manila)
    program = small_program()
    program.meas_level = "avg_kerneled"
    with pytest.raises(InvalidOptionsError, match="meas_level='avg_kerneled'"):
        validate_quantum_program(program, exact_manila)


def test_samplex_arguments_that_vary_are_swept_the_other_axes_randomize(exact_manila: DeviceBackend) -> None:
    """A parametric twirled circuit: its angle swept over 3 values (axis 1), 4 randomizations
    each (axis 0); after undoing the flips, P(1) follows each angle."""
    from samplomatic import Twirl, build

    theta = Parameter("theta")
    circuit = QuantumCircuit(1)
    circuit.sx(0)
    circuit.rz(theta, 0)
    circuit.sx(0)
    with circuit.box([Twirl()]):
        circuit.measure_all()
    template, samplex = build(circuit)
    angles = np.array([0.0, np.pi / 2, np.pi])
    program = QuantumProgram(shots=500)
    program.append_samplex_item(template, samplex, {"parameter_values": angles[:, None]}, shape=(4, 3))
    item = run_quantum_program(program, exact_manila, seed=4)[0]
    bits = item["meas"] ^ item["measurement_flips.meas"]
    assert bits.shape == (4, 3, 500, 1)
    ones = bits[..., 0].mean(axis=(0, 2))
    np.testing.assert_allclose(ones, np.cos(angles / 2) ** 2, atol=5 * 0.5 / np.sqrt(2000))
    flips = item["measurement_flips.meas"][..., 0, 0]
    assert flips.any() and not flips.all()  # randomizations twirl differently


def test_noise_maps_inject_their_paulis(exact_manila: DeviceBackend) -> None:
    """A box with InjectNoise and the program's noise map: X on each qubit at rate 0.2 flips each
    bit with probability (1 - exp(-0.4)) / 2 over the randomizations, on an exact backend."""
    import json

    from qiskit.quantum_info import PauliLindbladMap
    from samplomatic import InjectNoise, Twirl, build

    from aqrt.wire.quantum_program import decode_executor_params, encode_executor_params

    circuit = QuantumCircuit(2)
    with circuit.box([Twirl(), InjectNoise(ref="r0")]):
        circuit.cx(0, 1)
    with circuit.box([Twirl()]):
        circuit.measure_all()
    template, samplex = build(circuit)
    rate = 0.2
    program = QuantumProgram(shots=20, noise_maps={"r0": PauliLindbladMap.from_list([("XI", rate), ("IX", rate)])})
    program.append_samplex_item(template, samplex, shape=(1000,))
    decoded = decode_executor_params(json.loads(json.dumps(encode_executor_params(program)))).program
    item = run_quantum_program(decoded, exact_manila, seed=1)[0]
    flipped = (item["meas"] ^ item["measurement_flips.meas"]).mean(axis=(0, 1))
    expected = (1 - np.exp(-2 * rate)) / 2
    bound = 5 * np.sqrt(expected * (1 - expected) / 1000)  # the randomizations are the draws
    assert np.all(np.abs(flipped - expected) < bound), (flipped, expected)
    no_noise = QuantumProgram(shots=20, noise_maps={"r0": PauliLindbladMap.from_list([("XI", 0.0), ("IX", 0.0)])})
    no_noise.append_samplex_item(template, samplex, shape=(50,))
    clean = run_quantum_program(no_noise, exact_manila, seed=1)[0]
    assert not (clean["meas"] ^ clean["measurement_flips.meas"]).any()
