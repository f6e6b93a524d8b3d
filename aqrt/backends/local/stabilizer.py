"""Clifford circuits on stim: the stabilizer route of the local backend.

A circuit made only of Clifford gates, measurements and resets has a stabilizer state at every
step, so it runs at any width (thousands of qubits) on a tableau instead of a statevector. stim
does the work; this module only translates Qiskit circuits and observables into stim's terms and
stim's measurement records back into Qiskit's result layout:

- Qiskit qubit ``i`` is stim qubit ``i``; gates are translated up to a global phase, which
  neither samples nor expectation values can see.
- Rotations count as Clifford when their bound angles are multiples of pi/2 (pi for the
  controlled rotations) within 1e-9 radians, as IBM ISA circuits write Cliffords
  (``rz(±pi/2)``, ``sx``, ``ecr``). ``r`` and ``u`` with θ a multiple of pi depend on one
  combination of their other angles only (``r(pi, pi/4)`` is Clifford), and are judged by it.
  Gates outside the known list are not taken, even when their matrix is Clifford.
- Samples come back per classical register in Qiskit's ``BitArray`` byte layout, as
  :func:`.reference.sample_pub` packs them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import stim  # type: ignore[import-untyped]  # stim ships no py.typed marker
from qiskit.circuit import QuantumCircuit
from qiskit.quantum_info import SparseObservable

__all__ = ["expectation_values", "is_clifford", "sample", "to_stim"]

# How far (radians) a rotation angle may be from a multiple of pi/2 and still count as one.
_ANGLE_TOLERANCE = 1e-9

# One stim gate and the positions, within the Qiskit instruction's qubits, that it acts on.
_StimOp = tuple[str, tuple[int, ...]]

# Gates without angles: their stim equivalents, up to global phase (each checked against
# Qiskit's matrix by the tests). ECR and DCX have no stim gate of their own.
_FIXED: dict[str, tuple[_StimOp, ...]] = {
    "id": (),
    "global_phase": (),
    "x": (("X", (0,)),),
    "y": (("Y", (0,)),),
    "z": (("Z", (0,)),),
    "h": (("H", (0,)),),
    "s": (("S", (0,)),),
    "sdg": (("S_DAG", (0,)),),
    "sx": (("SQRT_X", (0,)),),
    "sxdg": (("SQRT_X_DAG", (0,)),),
    "cx": (("CX", (0, 1)),),
    "cy": (("CY", (0, 1)),),
    "cz": (("CZ", (0, 1)),),
    "swap": (("SWAP", (0, 1)),),
    "iswap": (("ISWAP", (0, 1)),),
    "dcx": (("CX", (0, 1)), ("CX", (1, 0))),
    "ecr": (("S", (0,)), ("SQRT_X", (1,)), ("CX", (0, 1)), ("X", (0,))),
}

# k quarter turns (angle k·pi/2) about one axis, for k mod 4.
_Z_TURNS = ("", "S", "Z", "S_DAG")
_X_TURNS = ("", "SQRT_X", "X", "SQRT_X_DAG")
_Y_TURNS = ("", "SQRT_Y", "Y", "SQRT_Y_DAG")
# exp(-i k·pi/4 P⊗P) for k mod 4; two quarter turns give P on both qubits.
_ZZ_TURNS = ("", "SQRT_ZZ", "Z", "SQRT_ZZ_DAG")
_XX_TURNS = ("", "SQRT_XX", "X", "SQRT_XX_DAG")
_YY_TURNS = ("", "SQRT_YY", "Y", "SQRT_YY_DAG")


_Ops = tuple[_StimOp, ...]


def _quarters(angle: float) -> int | None:
    """``angle`` as a whole number of quarter turns (pi/2), or None when it is not one."""
    quarters = round(angle / (math.pi / 2))
    return quarters if abs(angle - quarters * (math.pi / 2)) <= _ANGLE_TOLERANCE else None


def _turns(gates: tuple[str, ...], quarters: int, qubits: tuple[int, ...] = (0,)) -> _Ops:
    gate = gates[quarters % 4]
    return ((gate, qubits),) if gate else ()


def _axis_rotation(gates: tuple[str, ...], qubits: tuple[int, ...] = (0,)) -> Callable[[list[float]], _Ops | None]:
    """A one-angle rotation whose k quarter turns are ``gates[k % 4]`` on ``qubits``."""

    def ops(angles: list[float]) -> _Ops | None:
        quarters = _quarters(angles[0])
        return None if quarters is None else _turns(gates, quarters, qubits)

    return ops


def _rzx(angles: list[float]) -> _Ops | None:
    """rzx(k·pi/2) = exp(-i k·pi/4 Z⊗X): the ZZ rotation conjugated by H on the target."""
    middle = _axis_rotation(_ZZ_TURNS, (0, 1))(angles)
    return (("H", (1,)), *middle, ("H", (1,))) if middle else middle


def _r(angles: list[float]) -> _Ops | None:
    """R(θ, φ) = Rz(φ)·Rx(θ)·Rz(-φ). For θ = π it is Rz(2φ)·X, Clifford for φ a multiple of pi/4
    (transpilers to the R basis write X-Y plane flips so)."""
    theta, phi = angles
    quarters = _quarters(theta)
    if quarters is None:
        return None
    if quarters % 4 == 0:
        return ()
    if quarters % 4 == 2:
        twice_phi = _quarters(2 * phi)
        return None if twice_phi is None else (("X", (0,)), *_turns(_Z_TURNS, twice_phi))
    phi_quarters = _quarters(phi)
    if phi_quarters is None:
        return None
    return (*_turns(_Z_TURNS, -phi_quarters), *_turns(_X_TURNS, quarters), *_turns(_Z_TURNS, phi_quarters))


def _u(angles: list[float]) -> _Ops | None:
    """U(θ, φ, λ) = Rz(φ)·Ry(θ)·Rz(λ). For θ = 0 it is Rz(φ + λ), for θ = π Rz(φ - λ)·Y, so only
    that sum or difference must be a multiple of pi/2."""
    theta, phi, lam = angles
    quarters = _quarters(theta)
    if quarters is None:
        return None
    if quarters % 2 == 0:
        flip = () if quarters % 4 == 0 else (("Y", (0,)),)
        turn = _quarters(phi + lam if quarters % 4 == 0 else phi - lam)
        return None if turn is None else (*flip, *_turns(_Z_TURNS, turn))
    phi_quarters, lam_quarters = _quarters(phi), _quarters(lam)
    if phi_quarters is None or lam_quarters is None:
        return None
    return (*_turns(_Z_TURNS, lam_quarters), *_turns(_Y_TURNS, quarters), *_turns(_Z_TURNS, phi_quarters))


def _controlled_phase(angles: list[float]) -> _Ops | None:
    """cp(m·pi): CZ for odd m; a non-integer m (a controlled S or T) is not Clifford."""
    quarters = _quarters(angles[0])
    if quarters is None or quarters % 2:
        return None
    return (("CZ", (0, 1)),) if quarters // 2 % 2 else ()


def _controlled_rotation(entangler: str) -> Callable[[list[float]], _Ops | None]:
    """crP(m·pi) = controlled exp(-i m·pi/2 P): controlled(∓iP) is S_DAG / S on the control times
    the controlled Pauli; m = 2 is Z on the control; a non-integer m is not Clifford."""

    def ops(angles: list[float]) -> _Ops | None:
        quarters = _quarters(angles[0])
        if quarters is None or quarters % 2:
            return None
        half_turns = quarters // 2 % 4
        control_phase = ("", "S_DAG", "Z", "S")[half_turns]
        phase = ((control_phase, (0,)),) if control_phase else ()
        entangling = ((entangler, (0, 1)),) if half_turns % 2 else ()
        return (*phase, *entangling)

    return ops


# Gates with angles: their stim ops from the bound angles, or None when the angles make the gate
# non-Clifford. Up to global phase; in a product the rightmost factor acts first.
_ROTATIONS: dict[str, Callable[[list[float]], _Ops | None]] = {
    "rz": _axis_rotation(_Z_TURNS),
    "p": _axis_rotation(_Z_TURNS),
    "u1": _axis_rotation(_Z_TURNS),
    "rx": _axis_rotation(_X_TURNS),
    "ry": _axis_rotation(_Y_TURNS),
    "r": _r,
    "u": _u,
    "u3": _u,
    "u2": lambda angles: _u([math.pi / 2, *angles]),
    "rzz": _axis_rotation(_ZZ_TURNS, (0, 1)),
    "rxx": _axis_rotation(_XX_TURNS, (0, 1)),
    "ryy": _axis_rotation(_YY_TURNS, (0, 1)),
    "rzx": _rzx,
    "cp": _controlled_phase,
    "cu1": _controlled_phase,
    "crz": _controlled_rotation("CZ"),
    "crx": _controlled_rotation("CX"),
    "cry": _controlled_rotation("CY"),
}

_NO_OPS = frozenset({"barrier", "delay"})
_NON_UNITARY = frozenset({"measure", "reset"})
_CLIFFORD_NAMES = frozenset(_FIXED) | frozenset(_ROTATIONS) | _NO_OPS | _NON_UNITARY
_ROTATION_NAMES = frozenset(_ROTATIONS)


def _stim_ops(name: str, params: Sequence[Any]) -> _Ops | None:
    """The stim ops of one gate, or None when it is no Clifford gate this module knows."""
    fixed = _FIXED.get(name)
    if fixed is not None:
        return fixed
    rotation = _ROTATIONS.get(name)
    if rotation is None:
        return None
    try:
        angles = [float(angle) for angle in params]  # floats, or bound ParameterExpressions
    except (TypeError, ValueError):  # a free parameter
        return None
    return rotation(angles)


def is_clifford(circuit: QuantumCircuit) -> bool:
    """True when every instruction maps exactly onto stim: Clifford gates, rotations by
    multiples of pi/2 (``r`` and ``u``: see the module's docstring), measure, reset, barrier,
    delay. No control flow, no free parameters (not even in the global phase).

    Cheap enough to call on every ``run()``: the instruction counts come from Qiskit's Rust side,
    and only circuits with rotations get a Python pass, over their rotations alone.
    """
    if circuit.num_parameters:
        return False
    names = circuit.count_ops()
    if not _CLIFFORD_NAMES.issuperset(names):
        return False
    if _ROTATION_NAMES.isdisjoint(names):
        return True
    return all(
        _stim_ops(instruction.name, instruction.params) is not None
        for instruction in circuit.data
        if instruction.name in _ROTATION_NAMES
    )


def to_stim(circuit: QuantumCircuit) -> tuple[stim.Circuit, list[int]]:
    """The stim circuit and, per measurement record entry, the Qiskit clbit index it writes.

    Barriers and delays are dropped. The stim circuit names only the qubits its instructions
    touch, so its ``num_qubits`` can be below ``circuit.num_qubits``.

    Raises:
        ValueError: an instruction that is not a Clifford gate, measure, reset, barrier or delay
            (the caller, who knows the PUB, turns it into an ``UnsupportedCircuitError``).
    """
    qubit_index = {qubit: str(i) for i, qubit in enumerate(circuit.qubits)}
    clbit_index = {clbit: i for i, clbit in enumerate(circuit.clbits)}
    # One line of stim's text format per op, parsed once at the end: appending op by op to a
    # stim.Circuit costs some 30 µs per op (stim 1.16), 20x this whole loop.
    lines: list[str] = []
    record: list[int] = []
    for position, instruction in enumerate(circuit.data):
        name = instruction.name
        if name in _NO_OPS:
            continue
        targets = [qubit_index[qubit] for qubit in instruction.qubits]
        if name == "measure":
            lines.append(f"M {targets[0]}")
            record.append(clbit_index[instruction.clbits[0]])
            continue
        if name == "reset":
            lines.append(f"R {targets[0]}")
            continue
        ops = _stim_ops(name, instruction.params)
        if ops is None:
            raise ValueError(
                f"instruction {position} ({name} on qubit(s) {[int(t) for t in targets]}) is not a Clifford "
                "operation (Clifford gates, rotations by multiples of pi/2, measure, reset)"
            )
        for gate, positions in ops:
            lines.append(f"{gate} {' '.join([targets[p] for p in positions])}")
    stim_circuit = stim.Circuit("\n".join(lines))
    return stim_circuit, record


def sample(circuit: QuantumCircuit, shots: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``shots`` samples of ``circuit``: per classical register (in ``circuit.cregs`` order), a
    ``(shots, ceil(bits / 8))`` uint8 array in Qiskit's ``BitArray`` byte layout.

    Mid-circuit measurements and resets act as on hardware (the state collapses); several
    measurements into one clbit leave the last outcome; a clbit never measured reads 0. stim's
    seed is drawn from ``rng``, so the same generator state gives the same samples (on the same
    machine and stim version, as stim promises).
    """
    if shots < 0:
        raise ValueError(f"shots must be non-negative, not {shots}")
    stim_circuit, record = to_stim(circuit)
    seed = int(rng.integers(2**63))
    outcomes = stim_circuit.compile_sampler(seed=seed).sample(shots)  # (shots, len(record)) bool
    # The record entry each clbit ends with (-1: never measured), last write winning.
    last_entry = np.full(circuit.num_clbits, -1, dtype=np.int64)
    for entry, clbit in enumerate(record):
        last_entry[clbit] = entry
    columns = outcomes.view(np.uint8)
    if (last_entry < 0).any():  # a column of zeros for them, so one gather serves every register
        columns = np.concatenate([columns, np.zeros((shots, 1), np.uint8)], axis=1)
    clbit_index = {clbit: i for i, clbit in enumerate(circuit.clbits)}
    arrays: dict[str, np.ndarray] = {}
    for register in circuit.cregs:
        # Big-endian bytes with clbit 0 in the last byte's lowest bit: the columns in reverse.
        entries = last_entry[[clbit_index[clbit] for clbit in reversed(register)]]
        bits = columns[:, np.where(entries >= 0, entries, len(record))]
        pad = -register.size % 8
        if pad:
            bits = np.pad(bits, ((0, 0), (pad, 0)))
        arrays[register.name] = np.packbits(bits, axis=-1, bitorder="big")
    return arrays


# SparseObservable bit terms: the low two bits name the axis (Z = 1, X = 2, Y = 3); bit 2 marks
# the projector onto the -1 eigenstate, bit 3 the projector onto the +1 eigenstate.
_AXIS_MASK = 0b0011
_PROJECTOR_MASK = 0b1100
_MINUS_PROJECTOR = 0b0100


def expectation_values(circuit: QuantumCircuit, observables: Sequence[SparseObservable]) -> np.ndarray:
    """Exact ``<psi|O|psi>`` of each observable on the state the unitary Clifford ``circuit``
    prepares from ``|0...0>``: a ``(len(observables),)`` float64 array.

    Each term is the real part of its coefficient times the term's value, as Qiskit's estimators
    report it. Projector terms (``0 1 + - r l``) are not expanded into Paulis (a projector on
    ``k`` qubits would become ``2**k`` terms): the term's Pauli part is read from the state
    post-selected on its projectors, times their probability, which is exact and polynomial.

    Raises:
        ValueError: the circuit measures or resets (the caller routes those elsewhere), holds a
            non-Clifford instruction, or an observable acts on another number of qubits.
    """
    found = _NON_UNITARY.intersection(circuit.count_ops())
    if found:
        raise ValueError(f"the circuit holds {', '.join(sorted(found))}: expectation values need a unitary circuit")
    width = circuit.num_qubits
    for observable in observables:
        if observable.num_qubits != width:
            raise ValueError(f"an observable on {observable.num_qubits} qubits for a {width}-qubit circuit")
    stim_circuit, _ = to_stim(circuit)
    simulator = stim.TableauSimulator()
    simulator.set_num_qubits(width)
    simulator.do_circuit(stim_circuit)
    return np.array([_expectation(simulator, observable) for observable in observables], dtype=np.float64)


def _expectation(simulator: stim.TableauSimulator, observable: SparseObservable) -> float:
    coefficients = np.real(observable.coeffs)
    bit_terms = np.asarray(observable.bit_terms, dtype=np.uint8)
    indices = np.asarray(observable.indices, dtype=np.int64)
    boundaries = observable.boundaries
    total = 0.0
    for term, coefficient in enumerate(coefficients.tolist()):
        if coefficient == 0.0:
            continue
        start, end = boundaries[term], boundaries[term + 1]
        terms, qubits = bit_terms[start:end], indices[start:end]
        is_projector = (terms & _PROJECTOR_MASK) != 0
        state = simulator
        probability = 1.0
        if is_projector.any():
            state = simulator.copy()
            for bit_term, qubit in zip(terms[is_projector].tolist(), qubits[is_projector].tolist(), strict=True):
                probability *= _postselect(state, bit_term, qubit)
                if probability == 0.0:
                    break
            if probability == 0.0:
                continue
        paulis = ~is_projector
        axes, pauli_qubits = terms[paulis] & _AXIS_MASK, qubits[paulis]
        xs = np.zeros(simulator.num_qubits, dtype=np.bool_)
        zs = np.zeros(simulator.num_qubits, dtype=np.bool_)
        xs[pauli_qubits] = (axes & 0b10) != 0  # X and Y
        zs[pauli_qubits] = (axes & 0b01) != 0  # Z and Y
        pauli = stim.PauliString.from_numpy(xs=xs, zs=zs)
        total += coefficient * probability * state.peek_observable_expectation(pauli)
    return total


def _postselect(state: stim.TableauSimulator, bit_term: int, qubit: int) -> float:
    """Project ``state`` onto one single-qubit projector; return the probability it had."""
    axis = bit_term & _AXIS_MASK
    wants_minus = bool(bit_term & _MINUS_PROJECTOR)
    peek, postselect = {
        1: (state.peek_z, state.postselect_z),
        2: (state.peek_x, state.postselect_x),
        3: (state.peek_y, state.postselect_y),
    }[axis]
    value = peek(qubit)
    if value == 0:
        postselect(qubit, desired_value=wants_minus)
        return 0.5
    return 1.0 if (value == -1) == wants_minus else 0.0
