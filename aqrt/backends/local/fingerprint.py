"""Circuit fingerprints: the key under which a session caches a circuit's transpiled and
lowered forms, so a session's later jobs reuse what its first job computed.

Qiskit circuits are mutable: a circuit changed between two jobs gets the fingerprint of what it
is now. A fingerprint is digested from the circuit's content; for a circuit of standard
instructions it is also remembered by the circuit's identity, with a copy of the circuit's data
kept while the circuit lives, and served again only while the circuit still equals that copy:
its instructions (Qiskit's comparison of instructions, which reads each one's operation, qubits,
clbits and exact parameters), its global phase, its widths and its classical registers.
Up to ``KEPT_AS_OBJECTS`` instructions the copy's instructions are kept as Python objects, made
once: Qiskit's own comparison of two circuit datas makes both sides' objects on every call (a
92-gate ansatz: 54 us, against 31 us with one side made); a longer circuit keeps Qiskit's packed
copy (its objects would take ~0.23 KB an instruction). The comparison costs a fraction of a
digest (87 against 263 us, with Qiskit's). Its one blind spot: a parameter changed in place from
0.0 to -0.0 (equal as floats) keeps the old fingerprint, whose program gives the same values up
to the sign of exact zeros.
"""

from __future__ import annotations

import collections
import hashlib
import io
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
from qiskit import qpy
from qiskit.circuit import CONTROL_FLOW_OP_NAMES, Barrier, Delay, Measure, ParameterExpression, QuantumCircuit, Reset
from qiskit.circuit.library import get_standard_gate_name_mapping

from .content_cache import ByContent

__all__ = ["KEPT_AS_OBJECTS", "TEXT_KEY_MAX", "circuit_fingerprint"]

KEPT_AS_OBJECTS = 1024
"""Instructions up to which a remembered circuit's copy is kept as Python objects (see above)."""

TEXT_KEY_MAX = 256
"""Characters of description up to which a circuit of standard instructions is keyed by its
description itself rather than by a digest of it."""

_STANDARD_GATES = get_standard_gate_name_mapping()
_CLASSICAL = frozenset({*CONTROL_FLOW_OP_NAMES, "store"})
# Qiskit's own non-gate instructions, named by name, parameters and bits like standard gates
# (their Python objects are built only to check the type: a custom instruction may share a name).
_STANDARD_INSTRUCTIONS = {"measure": Measure, "reset": Reset, "barrier": Barrier, "delay": Delay}


_NO_BITS: Callable[[Any], int] = {}.__getitem__  # the clbit index of a circuit without clbits


class _Classical(Exception):
    """The circuit has classical structure (control flow, a store): digest its QPY form."""


def circuit_fingerprint(circuit: QuantumCircuit) -> str:
    """A digest of a circuit's structure, equal only for circuits that simulate identically.

    Standard gates are named by name, parameters and control state; any other operation by its
    matrix or, failing that, by its definition (recursively), since custom gates share names.
    A circuit with control flow, stores or variables is digested whole from its QPY form: its
    conditions, expressions and nested blocks are structure a gate-by-gate digest cannot see.
    """
    data = circuit._data  # QuantumCircuit.num_vars, read from its CircuitData without three properties
    if not (data.num_input_vars or data.num_captured_vars or data.num_declared_vars):
        known = _remembered(circuit)
        if known is not None and known.describes(circuit, data):
            return known.fingerprint
        digest = _Digest()
        try:
            text = _digest_circuit(circuit, digest, top_level=True)
        except _Classical:
            pass
        else:
            standard = digest.untouched  # standard instructions only: equal data, equal simulation
            if standard and len(text) <= TEXT_KEY_MAX:
                # The whole description, standard instructions only and short (a tiny job's
                # circuit): as exact a key as its digest, without hashing it every job. It
                # holds a "|", so it never equals a digest's hex.
                fingerprint = text
            else:
                digest.update(text.encode())
                fingerprint = digest.hexdigest()
            if standard:
                _KNOWN.put(id(circuit), _Known(circuit, data, fingerprint))
            return fingerprint
    whole = hashlib.blake2b(b"qpy|", digest_size=16)
    buffer = io.BytesIO()
    qpy.dump(circuit.copy(name="fingerprint"), buffer)  # names are often counters ("circuit-47")
    whole.update(buffer.getvalue())
    return whole.hexdigest()


class _Known:
    """A circuit's fingerprint with what it was digested from: a copy of the circuit's
    instructions (its own may change in place), its global phase, widths and classical
    registers, and a weak reference to the circuit (the cache is keyed by ``id()``, which a new
    circuit may reuse)."""

    __slots__ = ("_circuit", "_cregs", "_instructions", "_phase", "_widths", "fingerprint")

    def __init__(self, circuit: QuantumCircuit, data: Any, fingerprint: str) -> None:
        key = id(circuit)
        # When the circuit is collected its id is noted (no lock taken in a collection's
        # callback), and the next lookup drops the entry with its copy of the data.
        self._circuit = weakref.ref(circuit, lambda _: _COLLECTED.append(key))
        copy = data.copy()
        self._instructions: Any = list(copy) if len(copy) <= KEPT_AS_OBJECTS else copy
        self._phase = data.global_phase
        self._widths = (data.num_qubits, data.num_clbits)
        self._cregs = _register_sizes(data)
        self.fingerprint = fingerprint

    def collected(self) -> bool:
        """Whether the circuit this was digested from is gone."""
        return self._circuit() is None

    def describes(self, circuit: QuantumCircuit, data: Any) -> bool:
        """Whether ``circuit`` (whose data is ``data``) is still what this was digested from."""
        return (
            self._circuit() is circuit
            and (data.num_qubits, data.num_clbits) == self._widths
            and _register_sizes(data) == self._cregs
            and _same_phase(data.global_phase, self._phase)
            and _same_instructions(data, self._instructions)
        )


def _same_instructions(data: Any, known: Any) -> bool:
    """Whether ``data``'s instructions equal ``known``'s (a list of them, or a circuit data)."""
    if type(known) is list:
        return len(data) == len(known) and list(data) == known
    return bool(data == known)


def _same_phase(phase: Any, known: Any) -> bool:
    """Whether two global phases are the same, as Qiskit compares them (a float or a parameter
    expression; floats exactly, so that 0.0 and -0.0 are the same phase)."""
    return type(phase) is type(known) and bool(phase == known)


def _register_sizes(data: Any) -> tuple[tuple[str, int], ...]:
    """The classical registers, by name and size, as the digest describes them."""
    return tuple((register.name, register.size) for register in data.cregs)


# Circuits of standard instructions by id(): a session's next job on the same circuit object
# compares its data instead of digesting it again. Entries of collected circuits are dropped at
# the next lookup, so the copies held are of circuits still alive (at most 64 of them).
_KNOWN = ByContent(64)
_COLLECTED: collections.deque[int] = collections.deque()


def _remembered(circuit: QuantumCircuit) -> _Known | None:
    """The entry under the circuit's id, after dropping those of collected circuits."""
    while _COLLECTED:
        try:
            key = _COLLECTED.popleft()
        except IndexError:  # another thread took the last one
            break
        _KNOWN.drop_if(key, _Known.collected)
    known: _Known | None = _KNOWN.get(id(circuit))
    return known


class _Digest:
    """A blake2b digest made on its first update: a circuit of standard instructions is described
    by text alone, which :func:`circuit_fingerprint` may return without hashing it."""

    __slots__ = ("_hash",)

    def __init__(self) -> None:
        self._hash: Any = None

    @property
    def untouched(self) -> bool:
        return self._hash is None

    def update(self, data: bytes) -> None:
        if self._hash is None:
            self._hash = hashlib.blake2b(digest_size=16)
        self._hash.update(data)

    def hexdigest(self) -> str:
        if self._hash is None:
            self._hash = hashlib.blake2b(digest_size=16)
        return str(self._hash.hexdigest())


def _digest_circuit(circuit: QuantumCircuit, digest: Any, *, top_level: bool = False) -> str:
    """Digest ``circuit`` into ``digest``, but for the text describing its last run of standard
    instructions, which is returned: the caller hashes it (or, for a short circuit of standard
    instructions only, keys by it)."""
    # Text is gathered and hashed in one update per run of standard gates and instructions
    # (named by name, parameters and bits); any other operation is digested by what it does.
    # Control flow and stores are found here too (no count_ops() first: a tiny job's circuit is
    # digested on every job).
    # The circuit's CircuitData, iterated as QuantumCircuit.data's wrapper iterates it, and read
    # as QuantumCircuit's properties read it (qubits, clbits, their counts, cregs), without the
    # wrapper and the properties: a one-gate circuit's digest is a few microseconds, every job.
    data = circuit._data
    size = len(data)
    qubit_index = _bit_indices(circuit, data.qubits, size)
    num_clbits = data.num_clbits
    clbit_index = _bit_indices(circuit, data.clbits, size) if num_clbits else _NO_BITS
    phase = circuit.global_phase
    phase_text = repr(phase) if type(phase) is float else _param_text(phase)
    parts = [f"{data.num_qubits},{num_clbits},{phase_text}|"]
    append = parts.append
    # A circuit names few distinct qubit tuples (a 140-gate ansatz on 12 qubits: 23): each is
    # described once (its description cost a quarter of a gate's digest).
    qubits_texts: dict[Any, str] = {}
    for instruction in data:
        name = instruction.name
        if not instruction.is_standard_gate():
            standard = _STANDARD_INSTRUCTIONS.get(name)
            operation = instruction.operation
            # The base class, not type(): Measure() and Reset() are instances of singleton
            # subclasses (an Operation that is no Instruction has none: its type then).
            if standard is None or getattr(operation, "base_class", type(operation)) is not standard:
                if top_level and name in _CLASSICAL:
                    raise _Classical
                digest.update("".join(parts).encode())
                parts = []
                append = parts.append
                _digest_operation(operation, digest)
                append(_qubits_text(instruction.qubits, qubit_index, qubits_texts))
                append(repr(list(map(clbit_index, instruction.clbits))) if instruction.clbits else "[]")
                continue
            if standard is Delay:
                append(f"{operation.unit}:")
        append(name)
        append(":")
        for param in instruction.params:
            append(repr(param) if type(param) is float else _param_text(param))
            append(",")
        append(_qubits_text(instruction.qubits, qubit_index, qubits_texts))
        clbits = instruction.clbits
        append(repr(list(map(clbit_index, clbits))) if clbits else "[]")
    for register in data.cregs:
        append(f"{register.name}:{register.size}")
    return "".join(parts)


def _qubits_text(qubits: tuple[Any, ...], qubit_index: Callable[[Any], int], texts: dict[Any, str]) -> str:
    """The qubits' indices as text, e.g. ``[0, 1]``, remembered in ``texts`` for this digest."""
    text = texts.get(qubits)
    if text is None:
        text = texts[qubits] = repr(list(map(qubit_index, qubits)))
    return text


def _bit_indices(circuit: QuantumCircuit, bits: list[Any], instructions: int) -> Callable[[Any], int]:
    """bit -> its index in ``bits``: a dict when the instructions may name most bits, else
    ``find_bit`` per use (a Bell circuit on a 127-qubit device names two)."""
    if len(bits) <= 2 * instructions:
        return {bit: i for i, bit in enumerate(bits)}.__getitem__
    find_bit = circuit.find_bit
    return lambda bit: find_bit(bit).index


def _digest_operation(operation: Any, digest: Any) -> None:
    name = operation.name
    digest.update(f"{name}/{operation.num_qubits}/{getattr(operation, 'ctrl_state', '')}:".encode())
    params = getattr(operation, "params", ())
    for param in params:
        digest.update(param.tobytes() if isinstance(param, np.ndarray) else _param_text(param).encode())
        digest.update(b",")
    standard = _STANDARD_GATES.get(name)
    if standard is not None and type(operation) is type(standard):
        return
    if not any(hasattr(p, "parameters") for p in params):
        try:
            digest.update(np.asarray(operation.to_matrix(), dtype=np.complex128).tobytes())
            return
        except Exception:  # no matrix: describe it by its definition
            pass
    definition = getattr(operation, "definition", None)
    digest.update(type(operation).__qualname__.encode())
    if definition is not None:
        digest.update(_digest_circuit(definition, digest).encode())


def _param_text(value: Any) -> str:
    # str(), not repr(): a ParameterExpression's repr holds a memory address. The isinstance
    # check first: hasattr(value, "parameters") builds the expression's parameter set (~1 µs,
    # a quarter of a parameterised gate's digest).
    if isinstance(value, ParameterExpression) or hasattr(value, "parameters"):
        return str(value)
    return repr(value)
