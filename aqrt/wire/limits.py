"""Admission from declared sizes: what a payload says it holds, checked against limits before
anything is built from it.

A few hundred bytes can declare a circuit of 2^32-1 qubits, a ``ParameterVector`` of 10^12
elements, a block of 10^7 clbits inside an ``if_else``, or PUB bindings that broadcast to 10^8.
Building what such a payload declares allocates it (Qiskit's QPY reader even aborts the whole
process when such an allocation fails), so a server reads the declarations first:

- :func:`check_qpy` walks a QPY blob's structure (every circuit in it: the PUB's circuit, its
  control-flow blocks, its custom gates' definitions) without building anything, and checks
  each circuit's declared qubits, clbits and instructions, every ``ParameterVector`` length,
  every classical ``Uint`` width and every numpy array's header, before ``qpy.load`` sees the
  bytes;
- :func:`check_raw_pub` checks a PUB's shots and observables as they stand in the JSON;
- :func:`check_pub` checks a coerced PUB (nothing allocated yet) before it runs: its bindings
  after broadcasting, its parameter values, its Pauli terms and its output (bindings x shots x
  clbits).

The limits are a :class:`PayloadLimits`; one :class:`Admission` (a decode's
:class:`~aqrt.wire._blobs.Budget`, which bounds decompressed bytes) adds up what a whole job
declares. A refusal is a :class:`LimitExceeded` that names the limit::

    >>> from aqrt.wire.limits import Admission, PayloadLimits, check_raw_pub
    >>> check_raw_pub("sampler", [None, None, 10**8], Admission(PayloadLimits(max_shots=100_000)))
    Traceback (most recent call last):
    ...
    aqrt.wire.limits.LimitExceeded: 100000000 shots; this server takes at most 100000 (max_shots)
"""

from __future__ import annotations

import dataclasses
import math
import struct
from typing import Any

from ._blobs import DEFAULT_MAX_DECOMPRESSED_BYTES, SERVICE_QPY_VERSION, Budget, npy_header
from ._errors import WireError

__all__ = [
    "QPY_18",
    "QPY_VERSIONS",
    "Admission",
    "LimitExceeded",
    "PayloadLimits",
    "check_pub",
    "check_qpy",
    "check_qpy_programs",
    "check_raw_pub",
]

#: The QPY versions :func:`check_qpy` reads: from 13 (the oldest Qiskit 2 writes, and the first its
#: Rust reader reads) to 17, the newest IBM's service reads (:data:`SERVICE_QPY_VERSION`), which
#: qiskit-ibm-runtime and aqrt's client send for the estimator and sampler programs. QPY 18 (a
#: ParameterVector table, register ranges) is what the executor program's client writes: its blobs
#: are read by :func:`check_qpy_programs`, which knows 18 too.
QPY_VERSIONS = range(13, SERVICE_QPY_VERSION + 1)


@dataclasses.dataclass(frozen=True, kw_only=True)
class PayloadLimits:
    """Bounds on what one job's payload may declare; ``None`` leaves a size unbounded.

    Attributes:
        max_decompressed_bytes: bytes all compressed arrays and circuits may inflate to, together.
        max_pubs: PUBs in one job.
        max_qubits / max_clbits / max_circuit_ops: per circuit, and per control-flow block or
            custom-gate definition inside it (QPY headers, read before decoding).
        max_parameters: ``ParameterVector`` elements a job's circuits declare, together.
        max_shots: shots of one sampler PUB (``default_shots`` too).
        max_bindings: results of one job: each PUB's shape after broadcasting, summed.
        max_parameter_values: bindings x circuit parameters, summed over the job's PUBs.
        max_observable_terms: Pauli terms one job evaluates: each observable's terms times the
            bindings it is broadcast against, summed.
        max_result_bits: bits one job samples: bindings x shots x clbits (each classical register
            rounded up to whole bytes, as a ``BitArray`` stores it), summed.
    """

    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES
    max_pubs: int | None = None
    max_qubits: int | None = None
    max_clbits: int | None = None
    max_circuit_ops: int | None = None
    max_parameters: int | None = None
    max_shots: int | None = None
    max_bindings: int | None = None
    max_parameter_values: int | None = None
    max_observable_terms: int | None = None
    max_result_bits: int | None = None

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if (value is not None or field.name == "max_decompressed_bytes") and (type(value) is not int or value < 0):
                raise ValueError(f"{field.name} must be a non-negative int, got {value!r}")

    @property
    def bound_circuits(self) -> bool:
        """Whether any limit bounds what a QPY blob declares (else :func:`check_qpy` is not run)."""
        return any(
            limit is not None for limit in (self.max_qubits, self.max_clbits, self.max_circuit_ops, self.max_parameters)
        )

    @property
    def max_circuit_bits(self) -> int | None:
        """Qubits and clbits a job's circuits, blocks and definitions declare together: every
        nested block allocates bits of its own, so ``max_pubs x (max_qubits + max_clbits)``."""
        if self.max_pubs is None or self.max_qubits is None or self.max_clbits is None:
            return None
        return self.max_pubs * (self.max_qubits + self.max_clbits)


class LimitExceeded(WireError):
    """A payload declares more than a :class:`PayloadLimits` bound allows; the message names
    the bound, as in ``"... this server takes at most 100000 (max_shots)"``."""


class Admission(Budget):
    """The budget of one decode: the decompressed bytes left (as :class:`Budget`) and what the
    payload has declared so far, added up against ``limits``."""

    __slots__ = (
        "bindings",
        "circuit_bits",
        "limits",
        "observable_terms",
        "parameter_values",
        "result_bits",
        "vector_parameters",
    )

    def __init__(self, limits: PayloadLimits) -> None:
        super().__init__(limits.max_decompressed_bytes)
        self.limits = limits
        self.circuit_bits = 0
        self.vector_parameters = 0
        self.bindings = 0
        self.parameter_values = 0
        self.observable_terms = 0
        self.result_bits = 0

    def add(self, total: str, amount: int, limit: int | None, limit_name: str, what: str) -> None:
        """Add ``amount`` to the running total named ``total``.

        Raises:
            LimitExceeded: the total would pass ``limit`` (the message says ``what`` counts).
        """
        new_total = getattr(self, total) + amount
        if limit is not None and new_total > limit:
            so_far = "" if new_total == amount else f", {new_total} with what came before"
            raise LimitExceeded(f"{what}: {amount}{so_far}; this server takes at most {limit} per job ({limit_name})")
        setattr(self, total, new_total)


def _bound(value: float, limit: int | None, limit_name: str, subject: str, unit: str) -> None:
    if limit is not None and value > limit:
        said = f"{subject} {value} {unit}" if subject else f"{value} {unit}"
        raise LimitExceeded(f"{said}; this server takes at most {limit} ({limit_name})")


# --------------------------------------------------------------------------------------------
# PUBs
# --------------------------------------------------------------------------------------------


def check_raw_pub(program: str, item: Any, admission: Admission) -> None:
    """Check a PUB as it stands in the JSON, before any of it is decoded: a sampler PUB's shots,
    an estimator PUB's observables (how many Pauli terms, before any is built).

    Raises:
        LimitExceeded: too many shots or terms.
    """
    if type(item) is not list:
        return  # a bare circuit (sampler), or malformed: decoding says which
    limits = admission.limits
    if program == "sampler":
        shots = item[2] if len(item) > 2 else None
        if isinstance(shots, (int, float)) and not isinstance(shots, bool):
            _bound(shots, limits.max_shots, "max_shots", "", "shots")
    elif len(item) > 1:
        room = None if limits.max_observable_terms is None else limits.max_observable_terms - admission.observable_terms
        terms = _count_terms(item[1], room)
        if room is not None and terms > room:
            raise LimitExceeded(
                f"the observables hold more than {room} Pauli terms; this server takes at most "
                f"{limits.max_observable_terms} per job (max_observable_terms)"
            )


def _count_terms(observables: Any, stop_after: int | None) -> int:
    """Pauli terms in observables as JSON (nested lists of ``{label: coeff}``, labels, tagged
    ``settings``/``ObservablesArray`` values); stops counting past ``stop_after``."""
    count = 0
    stack = [observables]
    while stack:
        node = stack.pop()
        labels: list[Any]
        if type(node) is list:
            stack.extend(node)
            continue
        if type(node) is dict and "__type__" in node:
            value = node.get("__value__")
            if node["__type__"] == "ObservablesArray":
                stack.append(value)
                continue
            data = value.get("data") if node["__type__"] == "settings" and type(value) is dict else None
            labels = data if type(data) is list else [data]
        elif type(node) is dict:
            labels = list(node)
        else:
            labels = [node]
        count += len(labels)
        if stop_after is not None and count > stop_after:
            break
    return count


def check_pub(program: str, pub: Any, admission: Admission, *, default_shots: int) -> None:
    """Check a coerced ``EstimatorPub``/``SamplerPub`` before it runs (coercion allocates
    nothing: bindings broadcast only when a PUB runs).

    Args:
        default_shots: the shots of a sampler PUB that sets none (the job's ``default_shots``).

    Raises:
        LimitExceeded: bindings after broadcasting, parameter values, Pauli terms or sampled bits
            over the job's limits, or a PUB's shots over ``max_shots``.
    """
    limits = admission.limits
    shape = tuple(pub.shape)
    bindings = math.prod(shape)
    what = f"bindings after broadcasting to shape {shape}"
    admission.add("bindings", bindings, limits.max_bindings, "max_bindings", what)
    parameters = pub.parameter_values.num_parameters
    admission.add(
        "parameter_values",
        bindings * parameters,
        limits.max_parameter_values,
        "max_parameter_values",
        f"parameter values after broadcasting ({bindings} bindings x {parameters} parameters)",
    )
    if program == "estimator":
        observables = pub.observables
        terms = sum(observable.num_terms for observable in observables.sparse_observables_array().flat)
        each = bindings // observables.size if observables.size else 0
        admission.add(
            "observable_terms",
            terms * each,
            limits.max_observable_terms,
            "max_observable_terms",
            f"Pauli terms evaluated ({terms} terms x {each} bindings each)",
        )
        return
    shots = pub.shots if pub.shots is not None else default_shots
    _bound(shots, limits.max_shots, "max_shots", "", "shots")
    stored_bits = sum(8 * -(-len(register) // 8) for register in pub.circuit.cregs)
    admission.add(
        "result_bits",
        bindings * shots * stored_bits,
        limits.max_result_bits,
        "max_result_bits",
        f"sampled bits ({bindings} bindings x {shots} shots x {stored_bits} clbits)",
    )


# --------------------------------------------------------------------------------------------
# QPY, walked without being built
# --------------------------------------------------------------------------------------------
# The layouts of qiskit/qpy/formats.py (and binary_io/*.py, which write them) for QPY 13-18.
_FILE_HEADER = struct.Struct("!6sBBBBQc")  # preface, QPY version, qiskit version, programs, encoding
_CIRCUIT_HEADER = struct.Struct("!HcHIIQIQI")  # name, phase type/size, qubits, clbits, metadata, registers,
#                                                instructions, variables
_REGISTER = struct.Struct("!c?IH?")  # type, standalone, size, name size, in circuit; then name, size x int64
_VAR_DECLARATION = struct.Struct("!16scH")  # uuid, usage, name size; then a type key (+ u32 width), name
_SIZED_ITEM = struct.Struct("!IQ")  # annotation namespace + state; instruction annotation index + payload
_CUSTOM_DEFINITION = struct.Struct("!HcII?QIIQ")  # name, type, qubits, clbits, has definition, size,
#                                                   control qubits, control state, base gate size
_INSTRUCTION = struct.Struct("!HHHIIBHqII")  # name, label, params, qargs, cargs, extras, condition size,
#                                              condition value, control qubits, control state
_TYPED = struct.Struct("!cQ")  # a value: type key, size
_LAYOUT = struct.Struct("!?iiiIi")  # exists, initial, input mapping, final, extra registers, input qubits
_LAYOUT_BIT = struct.Struct("!ii")  # index, register name size (-1: none)
_PARAMETER = struct.Struct("!H16s")  # name size, uuid
_VECTOR_ELEMENT = struct.Struct("!HQ16sQ")  # name size, vector size, uuid, index
_EXPRESSION = struct.Struct("!QQ")  # symbols, expression bytes
_EXPRESSION_ELEMENT = struct.Struct("!Bc16sc16s")  # op, lhs type, lhs, rhs type, rhs
_SYMBOL = struct.Struct("!ccQ")  # symbol type, value type, value size
_MAP_ITEM = struct.Struct("!HcH")  # key size, value type, value size
_PAULI_EVOLUTION = struct.Struct("!Q?cQQ")  # operators, standalone, time type, time size, synthesis size
_SPARSE_OBSERVABLE = struct.Struct("!IQQQQ")  # qubits, then the byte sizes of its four arrays
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_U64 = struct.Struct("!Q")

_CONDITION_REGISTER, _CONDITION_EXPRESSION, _HAS_ANNOTATIONS = 1, 2, 0x80
_PAULI_EVOLUTION_PREFIX = b"###PauliEvolutionGate_"
_MAX_NESTING = 64  # circuits in blocks in tuples in expressions ...
_MAX_EXPRESSION_DEPTH = 128  # Qiskit's reader stops at a tenth of Python's recursion limit (100)


def check_qpy(tag: str, raw: bytes, admission: Admission) -> None:
    """Check what a QPY blob declares, before ``qpy.load`` builds it.

    Every circuit in the blob is walked (the circuit, each control-flow block, each custom
    gate's definition, each base gate), nothing built: qubits, clbits and instructions of each
    against ``max_qubits``/``max_clbits``/``max_circuit_ops``; their bits together against
    :attr:`PayloadLimits.max_circuit_bits`; ``ParameterVector`` lengths against
    ``max_parameters``; classical ``Uint`` widths against ``max_clbits``; every numpy array's
    header against its bytes; instructions against their circuit's width. Walking costs time in
    proportion to the blob's size, which the decompression budget bounds.

    Raises:
        LimitExceeded: a declared size over a limit (the message names it).
        WireError: a QPY version outside :data:`QPY_VERSIONS`, more than one program, or a
            structure that does not hold together (a length past the end, trailing bytes).
    """
    if len(raw) < _FILE_HEADER.size + 1 or not raw.startswith(b"QISKIT"):
        raise WireError("the data is not a QPY blob", tag=tag)
    version, programs = raw[6], _FILE_HEADER.unpack_from(raw)[5]
    if version not in QPY_VERSIONS:
        raise WireError(
            f"QPY version {version} is not read here: this server reads QPY "
            f"{QPY_VERSIONS.start}..{QPY_VERSIONS.stop - 1}, as IBM's service does",
            tag=tag,
        )
    if programs != 1:
        raise WireError(f"the QPY data must hold one circuit, it declares {programs} programs", tag=tag)
    cursor = _Cursor(memoryview(raw), _FILE_HEADER.size, len(raw), tag)
    if cursor.bytes(1) != b"q":
        raise WireError("the QPY data holds no circuit", tag=tag)
    if version >= 16:  # a table of each program's offset
        (offset,) = cursor.unpack(_U64)
        cursor.skip(offset - cursor.pos)
    _QpyWalk(version, admission, tag).circuit(cursor, 0)
    cursor.at_end("the circuit")


class _Cursor:
    """Reads ``data[pos:end]`` front to back; a size running past ``end`` is a malformed blob."""

    __slots__ = ("data", "end", "pos", "tag")

    def __init__(self, data: memoryview, pos: int, end: int, tag: str) -> None:
        self.data, self.pos, self.end, self.tag = data, pos, end, tag

    def skip(self, size: int) -> int:
        """Step over ``size`` bytes; returns where they start."""
        start = self.pos
        if size < 0 or size > self.end - start:
            raise WireError(
                f"the QPY data is malformed: {size} bytes announced at offset {start}, {max(self.end - start, 0)} left",
                tag=self.tag,
            )
        self.pos = start + size
        return start

    def unpack(self, layout: struct.Struct) -> tuple[Any, ...]:
        return layout.unpack_from(self.data, self.skip(layout.size))

    def bytes(self, size: int) -> bytes:
        start = self.skip(size)
        return bytes(self.data[start : start + size])

    def part(self, size: int) -> _Cursor:
        """The next ``size`` bytes as a cursor of their own; this one steps over them."""
        start = self.skip(size)
        return _Cursor(self.data, start, start + size, self.tag)

    def at_end(self, what: str) -> None:
        if self.pos != self.end:
            raise WireError(f"the QPY data is malformed: {self.end - self.pos} bytes follow {what}", tag=self.tag)


class _QpyWalk:
    """One walk over one QPY blob, adding what it declares to an :class:`Admission`."""

    def __init__(self, version: int, admission: Admission, tag: str) -> None:
        self.version = version
        self.admission = admission
        self.limits = admission.limits
        self.tag = tag
        self.vectors: list[set[bytes]] = []  # names of the ParameterVectors of each circuit being read

    def malformed(self, problem: str) -> WireError:
        return WireError(f"the QPY data is malformed: {problem}", tag=self.tag)

    def circuit_header(self, cursor: _Cursor, depth: int) -> tuple[Any, ...]:
        """A circuit's header, its sizes checked against the limits (every QPY version's)."""
        if depth > _MAX_NESTING:
            raise WireError(f"the QPY data nests values more than {_MAX_NESTING} deep", tag=self.tag)
        header: tuple[Any, ...] = cursor.unpack(_CIRCUIT_HEADER)
        qubits, clbits, instructions = header[3], header[4], header[7]
        limits = self.limits
        subject = "the circuit has" if depth == 0 else "a block or definition in the circuit has"
        _bound(qubits, limits.max_qubits, "max_qubits", subject, "qubits")
        _bound(clbits, limits.max_clbits, "max_clbits", subject, "clbits")
        _bound(instructions, limits.max_circuit_ops, "max_circuit_ops", subject, "operations")
        self.admission.add(
            "circuit_bits",
            qubits + clbits,
            limits.max_circuit_bits,
            "max_pubs x (max_qubits + max_clbits)",
            "qubits and clbits of the job's circuits, blocks and definitions",
        )
        return header

    def circuit(self, cursor: _Cursor, depth: int) -> None:
        """A circuit, from its header to its layout (a blob's, a block's or a definition's)."""
        name_size, phase_type, phase_size, qubits, clbits, metadata_size, registers, instructions, variables = (
            self.circuit_header(cursor, depth)
        )
        self.vectors.append(set())
        cursor.skip(name_size)
        self.value(phase_type, cursor.part(phase_size), depth + 1)
        cursor.skip(metadata_size)
        for _ in range(registers):
            self.register(cursor)
        for _ in range(variables):
            _, _, variable_name_size = cursor.unpack(_VAR_DECLARATION)
            self.classical_type(cursor)
            cursor.skip(variable_name_size)
        if self.version >= 15:
            (namespaces,) = cursor.unpack(_U32)
            for _ in range(namespaces):
                namespace_size, state_size = cursor.unpack(_SIZED_ITEM)
                cursor.skip(namespace_size + state_size)
        (custom_definitions,) = cursor.unpack(_U64)
        for _ in range(custom_definitions):
            self.custom_definition(cursor, qubits, clbits, depth)
        for _ in range(instructions):
            self.instruction(cursor, qubits, clbits, depth, with_bits=True)
        if self.version < 18 and cursor.unpack(_U16)[0]:
            raise WireError("the QPY data holds pulse calibrations, which Qiskit 2 no longer reads", tag=self.tag)
        self.layout(cursor)
        self.vectors.pop()

    def register(self, cursor: _Cursor) -> None:
        _, _, size, name_size, _ = cursor.unpack(_REGISTER)
        cursor.skip(name_size + 8 * size)

    def custom_definition(self, cursor: _Cursor, qubits: int, clbits: int, depth: int) -> None:
        name_size, _, gate_qubits, gate_clbits, has_definition, size, control_qubits, _, base_size = cursor.unpack(
            _CUSTOM_DEFINITION
        )
        if gate_qubits > qubits or gate_clbits > clbits or control_qubits > gate_qubits:
            raise self.malformed(
                f"a custom instruction of {gate_qubits} qubits ({control_qubits} controls) and {gate_clbits} "
                f"clbits in a circuit of {qubits} qubits and {clbits} clbits"
            )
        name = cursor.bytes(name_size)
        definition = cursor.part(size)
        if has_definition:
            if name.startswith(_PAULI_EVOLUTION_PREFIX):
                self.pauli_evolution(definition, depth + 1)
            else:
                self.circuit(definition, depth + 1)
            definition.at_end("a definition")
        base_gate = cursor.part(base_size)
        if base_size:
            self.instruction(base_gate, qubits, clbits, depth + 1, with_bits=False)
            base_gate.at_end("a base gate")

    def instruction(self, cursor: _Cursor, qubits: int, clbits: int, depth: int, *, with_bits: bool) -> None:
        name_size, label_size, params, qargs, cargs, extras, condition_size, _, control_qubits, _ = cursor.unpack(
            _INSTRUCTION
        )
        if qargs > qubits or cargs > clbits or control_qubits > qargs:
            raise self.malformed(
                f"an instruction on {qargs} qubits ({control_qubits} controls) and {cargs} clbits in a circuit of "
                f"{qubits} qubits and {clbits} clbits"
            )
        cursor.skip(name_size + label_size)
        condition = extras & 0b11
        if condition == _CONDITION_REGISTER:
            cursor.skip(condition_size)
        elif condition == _CONDITION_EXPRESSION:
            self.typed(cursor, depth)
        if with_bits:
            cursor.skip(5 * (qargs + cargs))  # (type, u32 index) each
        for _ in range(params):
            self.typed(cursor, depth)
        if extras & _HAS_ANNOTATIONS:
            (annotations,) = cursor.unpack(_U32)
            for _ in range(annotations):
                cursor.skip(cursor.unpack(_SIZED_ITEM)[1])

    def layout(self, cursor: _Cursor) -> None:
        # Qiskit's Rust reader reads the items whether or not the layout "exists"; so does this.
        _, initial, input_mapping, final, extra_registers, _ = cursor.unpack(_LAYOUT)
        for _ in range(extra_registers):
            self.register(cursor)
        for _ in range(max(initial, 0)):
            cursor.skip(max(cursor.unpack(_LAYOUT_BIT)[1], 0))
        cursor.skip(4 * max(input_mapping, 0) + 4 * max(final, 0))

    def typed(self, cursor: _Cursor, depth: int) -> None:
        """A value with its type key and size in front (an instruction's parameter, ...)."""
        key, size = cursor.unpack(_TYPED)
        self.value(key, cursor.part(size), depth + 1)

    def value(self, key: bytes, part: _Cursor, depth: int) -> None:
        """The value of type ``key`` that fills ``part``. Only those that can declare more than
        their bytes hold are read; numbers, strings, ranges, registers, classical expressions and
        the like build no more than their bytes."""
        if depth > _MAX_NESTING:
            raise WireError(f"the QPY data nests values more than {_MAX_NESTING} deep", tag=self.tag)
        if key == b"q":
            self.circuit(part, depth)
        elif key == b"t":
            (count,) = part.unpack(_U64)
            for _ in range(count):
                self.typed(part, depth)
        elif key == b"v":
            self.vector_element(part)
        elif key == b"e":
            self.parameter_expression(part, depth)
        elif key == b"n":
            npy_header(self.tag, part.bytes(part.end - part.pos))
        elif key == b"x":
            self.classical_expression(part)
        else:
            return
        part.at_end(f"a value of type {key!r}")

    def classical_type(self, cursor: _Cursor) -> None:
        """A classical type: a ``Uint``'s width counts against ``max_clbits`` (evaluating a
        ``Uint(2**32 - 1)`` masks with a 2**32-bit integer)."""
        kind = cursor.bytes(1)
        if kind == b"u":
            _bound(cursor.unpack(_U32)[0], self.limits.max_clbits, "max_clbits", "a classical value of", "bits")
        elif kind not in (b"b", b"f", b"d"):
            raise self.malformed(f"a classical type {kind!r}")

    def classical_expression(self, cursor: _Cursor) -> None:
        """A classical expression (a condition, a store, a switch target, a duration): its nodes
        in preorder, each a kind, a type, its payload, then its operands."""
        open_levels = [1]  # operands still to read, per node being read
        while open_levels:
            open_levels[-1] -= 1
            kind = cursor.bytes(1)
            self.classical_type(cursor)
            operands = 0
            if kind == b"x":  # a variable: standalone (index), a clbit (index) or a register (name)
                variable = cursor.bytes(1)
                size = {b"U": 2, b"C": 4}.get(variable)
                if size is None and variable != b"R":
                    raise self.malformed(f"a classical variable of kind {variable!r}")
                cursor.skip(size if size is not None else cursor.unpack(_U16)[0])
            elif kind == b"s":  # a stretch (index)
                cursor.skip(2)
            elif kind == b"v":  # a value: bool, int (its bytes), float, duration
                value = cursor.bytes(1)
                size = {b"b": 1, b"f": 8, b"t": 9}.get(value)
                if size is None and value != b"i":
                    raise self.malformed(f"a classical value of kind {value!r}")
                cursor.skip(size if size is not None else cursor.bytes(1)[0])
            elif kind in (b"c", b"u"):  # cast (implicit flag), unary (op)
                cursor.skip(1)
                operands = 1
            elif kind == b"b":  # binary (op)
                cursor.skip(1)
                operands = 2
            elif kind == b"i":  # index
                operands = 2
            else:
                raise self.malformed(f"a classical expression node {kind!r}")
            if operands:
                open_levels.append(operands)
                if len(open_levels) > _MAX_EXPRESSION_DEPTH:
                    raise WireError(
                        f"a classical expression nests more than {_MAX_EXPRESSION_DEPTH} deep", tag=self.tag
                    )
            while open_levels and not open_levels[-1]:
                open_levels.pop()

    def vector_element(self, cursor: _Cursor) -> None:
        """A ``ParameterVector`` element: reading one builds its whole vector, so its declared
        length counts against ``max_parameters`` (once per vector name and circuit)."""
        name_size, size, _, index = cursor.unpack(_VECTOR_ELEMENT)
        name = cursor.bytes(name_size)
        if index >= size:
            raise self.malformed(f"element {index} of a ParameterVector of {size}")
        seen = self.vectors[-1]
        if name not in seen:
            seen.add(name)
            self.admission.add(
                "vector_parameters",
                size,
                self.limits.max_parameters,
                "max_parameters",
                "ParameterVector elements",
            )

    def parameter_expression(self, cursor: _Cursor, depth: int) -> None:
        if depth > _MAX_NESTING:
            raise WireError(f"the QPY data nests values more than {_MAX_NESTING} deep", tag=self.tag)
        symbols, expression_size = cursor.unpack(_EXPRESSION)
        operations = cursor.part(expression_size)
        while operations.pos < operations.end:
            _, lhs_type, lhs, _, _ = operations.unpack(_EXPRESSION_ELEMENT)
            if lhs_type == b"u":  # a substitution: its mapping follows the element
                self.mapping(operations.part(_U64.unpack_from(lhs)[0]), depth + 1)
        for _ in range(symbols):
            symbol_type, value_type, value_size = cursor.unpack(_SYMBOL)
            if symbol_type == b"p":
                cursor.skip(cursor.unpack(_PARAMETER)[0])
            elif symbol_type == b"v":
                self.vector_element(cursor)
            elif symbol_type == b"e":
                self.parameter_expression(cursor, depth + 1)
            else:
                raise self.malformed(f"a parameter expression symbol of type {symbol_type!r}")
            value = cursor.part(value_size)
            if value_size:
                self.value(value_type, value, depth + 1)

    def mapping(self, part: _Cursor, depth: int) -> None:
        (count,) = part.unpack(_U64)
        for _ in range(count):
            key_size, value_type, value_size = part.unpack(_MAP_ITEM)
            part.skip(key_size)
            self.value(value_type, part.part(value_size), depth + 1)
        part.at_end("a substitution")

    def pauli_evolution(self, part: _Cursor, depth: int) -> None:
        operators, _, time_type, time_size, synthesis_size = part.unpack(_PAULI_EVOLUTION)
        for _ in range(operators):
            if self.version >= 17 and part.bytes(1) != b"\x00":  # a SparseObservable
                qubits, *sizes = part.unpack(_SPARSE_OBSERVABLE)
                _bound(qubits, self.limits.max_qubits, "max_qubits", "a PauliEvolutionGate's operator has", "qubits")
                part.skip(sum(sizes))
            else:  # a SparsePauliOp as a .npy list of (label, coeff)
                npy_header(self.tag, part.bytes(part.unpack(_U64)[0]))
        self.value(time_type, part.part(time_size), depth + 1)
        part.skip(synthesis_size)
        part.at_end("a PauliEvolutionGate")


#: QPY 18: what qiskit-ibm-runtime's executor client writes with Qiskit 2.3+ (Qiskit's newest QPY,
#: not the 17 of the legacy programs): :func:`check_qpy_programs` reads it, with the walk below.
QPY_18 = 18
_REGISTER_18 = struct.Struct("!c?IH?c")  # type, standalone, size, name size, in circuit, attached
_VECTOR_ENTRY_18 = struct.Struct("!HQ16s")  # name size, vector size, root uuid; then the name
_VECTOR_ELEMENT_18 = struct.Struct("!HQ")  # index into the circuit's vector table, element index
_I32 = struct.Struct("!i")


class _Qpy18Walk(_QpyWalk):
    """:mod:`.limits`' walk (QPY 13..17) taught what QPY 18 changed (Qiskit's QPY spec, "Version
    18"): registers with an attachment byte and ``uint32`` indices (one start index when
    attached), a ``PARAMETER_VECTOR_TABLE`` in every circuit payload (each vector's length counted
    against ``max_parameters`` there, once) with elements referring to it by index, no
    calibrations block, and layout bits of anonymous qubits without a name size."""

    def __init__(self, admission: Admission, tag: str) -> None:
        super().__init__(QPY_18, admission, tag)
        # The vector lengths of each circuit payload being read; None until its table is read (the
        # global phase, ahead of the table, may refer to vectors: those references wait in pending).
        self.tables: list[list[int] | None] = []
        self.pending: list[list[tuple[int, int]]] = []

    def circuit(self, cursor: _Cursor, depth: int) -> None:
        name_size, phase_type, phase_size, qubits, clbits, metadata_size, registers, instructions, variables = (
            self.circuit_header(cursor, depth)
        )
        self.tables.append(None)
        self.pending.append([])
        cursor.skip(name_size)
        self.value(phase_type, cursor.part(phase_size), depth + 1)
        cursor.skip(metadata_size)
        for _ in range(registers):
            self.register(cursor)
        for _ in range(variables):
            _, _, variable_name_size = cursor.unpack(_VAR_DECLARATION)
            self.classical_type(cursor)
            cursor.skip(variable_name_size)
        (namespaces,) = cursor.unpack(_U32)
        for _ in range(namespaces):
            namespace_size, state_size = cursor.unpack(_SIZED_ITEM)
            cursor.skip(namespace_size + state_size)
        table = []
        for _ in range(cursor.unpack(_U16)[0]):
            vector_name_size, vector_size, _ = cursor.unpack(_VECTOR_ENTRY_18)
            cursor.skip(vector_name_size)
            what = "ParameterVector elements"
            self.admission.add("vector_parameters", vector_size, self.limits.max_parameters, "max_parameters", what)
            table.append(vector_size)
        self.tables[-1] = table
        for vector, index in self.pending[-1]:
            self.check_element(table, vector, index)
        (custom_definitions,) = cursor.unpack(_U64)
        for _ in range(custom_definitions):
            self.custom_definition(cursor, qubits, clbits, depth)
        for _ in range(instructions):
            self.instruction(cursor, qubits, clbits, depth, with_bits=True)
        self.layout(cursor)
        self.tables.pop()
        self.pending.pop()

    def register(self, cursor: _Cursor) -> None:
        _, _, size, name_size, _, attached = cursor.unpack(_REGISTER_18)
        cursor.skip(name_size + 4 * (1 if attached == b"\x01" else size))

    def vector_element(self, cursor: _Cursor) -> None:
        vector, index = cursor.unpack(_VECTOR_ELEMENT_18)
        if not self.tables:
            raise self.malformed("a ParameterVector element outside any circuit")
        table = self.tables[-1]
        if table is None:
            self.pending[-1].append((vector, index))
        else:
            self.check_element(table, vector, index)

    def check_element(self, table: list[int], vector: int, index: int) -> None:
        if vector >= len(table) or index >= table[vector]:
            raise self.malformed(f"element {index} of ParameterVector {vector} in a table of {len(table)}")

    def layout(self, cursor: _Cursor) -> None:
        _, initial, input_mapping, final, extra_registers, _ = cursor.unpack(_LAYOUT)
        for _ in range(extra_registers):
            self.register(cursor)
        for _ in range(max(initial, 0)):
            (index,) = cursor.unpack(_I32)
            if index != -1:
                cursor.skip(max(cursor.unpack(_I32)[0], 0))
        cursor.skip(4 * max(input_mapping, 0) + 4 * max(final, 0))


def check_qpy_programs(tag: str, raw: bytes, programs: int, admission: Admission) -> None:
    """Check what a multi-circuit QPY blob declares (the executor program sends one blob for all its
    items), every circuit walked as :func:`check_qpy` walks a one-circuit blob; QPY 13..18.

    Raises:
        LimitExceeded: a declared size over a limit (the message names it).
        WireError: another QPY version, a number of circuits other than ``programs``, or a structure
            that does not hold together.
    """
    if len(raw) < _FILE_HEADER.size + 1 or not raw.startswith(b"QISKIT"):
        raise WireError("the data is not a QPY blob", tag=tag)
    version, declared = raw[6], _FILE_HEADER.unpack_from(raw)[5]
    if version not in QPY_VERSIONS and version != QPY_18:
        raise WireError(f"QPY version {version} is not read here: QPY {QPY_VERSIONS.start}..{QPY_18} are", tag=tag)
    if declared != programs:
        raise WireError(f"the QPY data declares {declared} programs, num_programs says {programs}", tag=tag)
    cursor = _Cursor(memoryview(raw), _FILE_HEADER.size, len(raw), tag)
    if cursor.bytes(1) != b"q":
        raise WireError("the QPY data holds no circuits", tag=tag)
    offsets = [cursor.unpack(_U64)[0] for _ in range(programs)] if version >= 16 else None
    walk = _Qpy18Walk(admission, tag) if version == QPY_18 else _QpyWalk(version, admission, tag)
    for index in range(programs):
        if offsets is not None and offsets[index] != cursor.pos:
            raise WireError(f"the QPY data is malformed: circuit {index} is not where its offset says", tag=tag)
        walk.circuit(cursor, 0)
    cursor.at_end("the circuits")
