"""Estimator and Sampler PUBs on the numba engine.

Same inputs, outputs and bit order as :mod:`aqrt.backends.local.reference` (which is the oracle these
are tested against). Lowered circuits are kept in the session cache, so repeated circuits skip
lowering; a PUB's own circuit (not a transpiled or compacted copy) is also looked up by content
across sessions (its fingerprint and parameter names), since a new session would otherwise lower
the same circuit again (4-5 ms for a 400-gate circuit, a tenth of a 20-qubit job).

Importing this module imports no numba: the engine's numba modules (``simulate``, ``sampling``)
are imported where they run. A ``serial`` PUB (an inline job, on the event loop) runs on the
numba serial kernels once the ``small`` tier for its precision is loaded in this process, and
before that on :mod:`aqrt.engine.numpy_interpreter` (a process's first small jobs do not wait
for numba).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from qiskit.circuit import QuantumCircuit
from qiskit.primitives.containers import BitArray, DataBin, PubResult, SamplerPubResult
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.containers.sampler_pub import SamplerPub

from ..._concurrency import CancelFlag
from ...engine import BoundProgram, LoweredCircuit, TermTable, lower_circuit, numpy_interpreter
from ...engine.kernels import SMALL, dtype_name, tier_loaded
from ...engine.lowering import fused_width  # re-exported: the engine's fusion policy
from ...engine.observables import build_term_table_sparse
from .content_cache import ByContent
from .preparation import PreparedCircuit
from .reference import _flat_bindings, _pack, final_measurements

__all__ = [
    "cached_lowering",
    "cached_term_table",
    "draw_samples",
    "estimate_chunk",
    "estimate_pub",
    "finish_estimate",
    "finish_sample",
    "fused_width",
    "sample_chunk",
    "sample_pub",
    "sampler_setup",
]


# Lowered circuits by content, across sessions (see the module docstring); lowering reads a
# circuit's gates, parameters and custom matrices, all of which its fingerprint digests.
_LOWERED_BY_CONTENT = ByContent(64)
# Term tables of observables on circuits as given (no layout, no qubit dropped), by content
# across sessions (~0.1 ms for 20 terms to build again).
_TABLES_BY_CONTENT = ByContent(64)
# The same, by the identity of the ObservablesArray (run() makes one per distinct observable, for
# the whole process): a new session's job skips keying its terms by content (~70 us for 20 terms).
# An entry holds its ObservablesArray, so the id cannot be reused while it is cached.
_TABLES_BY_OBSERVABLES = ByContent(64)


def cached_lowering(
    circuit: QuantumCircuit, names: list[str], cache: dict[Any, Any], key: Any, *, by_content: bool = False
) -> LoweredCircuit:
    """The circuit lowered, from the session ``cache`` under ``key``; with ``by_content`` (``key``
    then holds the circuit's fingerprint), also from the process-wide cache by content."""
    cache_key = ("lowered", key, tuple(names))
    lowered = cache.get(cache_key)
    if lowered is None:
        if by_content:
            lowered = _LOWERED_BY_CONTENT.get_or_make(cache_key, lambda: lower_circuit(circuit, names))
        else:
            lowered = lower_circuit(circuit, names)
        cache[cache_key] = lowered
    return lowered


def _program(
    circuit: QuantumCircuit, pub: Any, cache: dict[Any, Any], key: Any, dtype: Any, *, by_content: bool = False
) -> BoundProgram:
    """The bound program of a PUB; for circuits without parameters it is cached too."""
    static = not pub.circuit.num_parameters and not pub.parameter_values.shape
    if static:
        program = cache.get(("program", key, dtype))
        if program is not None:
            return program
    # The names follow from the circuit's content, which ``key`` digests: read once a session
    # (a 64-parameter circuit's names cost ~25 us, every job of a loop).
    names = cache.get(("parameter-names", key))
    if names is None:
        names = cache[("parameter-names", key)] = [parameter.name for parameter in pub.circuit.parameters]
    flat_values, names = _flat_bindings(pub, names)
    program = cached_lowering(circuit, names, cache, key, by_content=by_content).bind(flat_values, dtype=dtype)
    if static:
        # its one row of entries made now, once, rather than by a kernel on every run (a tiny job's)
        program.binding_buffers  # noqa: B018 - made on first read
        cache[("program", key, dtype)] = program
    return program


def cached_term_table(pub: EstimatorPub, prepared: PreparedCircuit, cache: dict[Any, Any], key: Any) -> TermTable:
    """Pauli terms of the PUB's observables on the prepared circuit (after the transpiler's layout,
    idle qubits dropped), cached by content.

    The same ObservablesArray object (run() shares one per distinct observable) is found by
    identity first, in the session's cache and, on the circuit as given, across sessions; an
    entry holds the object, so its id cannot be reused while cached.
    """
    observables = pub.observables
    scope = key if prepared.renumbered else None  # the mapping depends on the circuit
    by_identity = ("terms-of", id(observables), scope)
    entry = cache.get(by_identity)
    if entry is not None and entry[0] is observables:
        return entry[1]
    if scope is None:
        entry = _TABLES_BY_OBSERVABLES.get(id(observables))
        if entry is not None and entry[0] is observables:
            cache[by_identity] = entry
            return entry[1]
    sparse = [observables.slice(index) for index in np.ndindex(*observables.shape)]
    content = tuple(
        (
            obs.num_qubits,
            np.asarray(obs.coeffs).tobytes(),
            np.asarray(obs.bit_terms).tobytes(),
            np.asarray(obs.indices).tobytes(),
            np.asarray(obs.boundaries).tobytes(),
        )
        for obs in sparse
    )
    cache_key = ("terms", scope, content)
    table = cache.get(cache_key)
    if table is None and scope is None:
        table = _TABLES_BY_CONTENT.get_or_make(content, lambda: build_term_table_sparse(sparse))
    if table is None:
        sparse = [prepared.observable(obs) for obs in sparse]
        table = build_term_table_sparse(sparse)
    cache[cache_key] = table
    cache[by_identity] = (observables, table)
    if scope is None:
        _TABLES_BY_OBSERVABLES.put(id(observables), (observables, table))
    return table


def estimate_pub(
    prepared: PreparedCircuit,
    pub: EstimatorPub,
    rng: np.random.Generator | None,
    cancel_requested: CancelFlag | None,
    cache: dict[Any, Any],
    circuit_key: Any,
    *,
    serial: bool = False,
    dtype: Any = np.complex128,
) -> PubResult:
    """Expectation values of one Estimator PUB on its prepared circuit."""
    by_content = prepared.circuit is pub.circuit  # the PUB's own circuit, keyed by its fingerprint
    program = _program(prepared.circuit, pub, cache, circuit_key, dtype, by_content=by_content)
    table = cached_term_table(pub, prepared, cache, circuit_key)
    if serial and _on_numpy(program):
        values = numpy_interpreter.term_values(program, table.x_masks, table.z_masks)
    elif serial:
        values = _simulate().run_serial(program, table.x_masks, table.z_masks)
    else:
        values = _simulate().term_values(program, table.x_masks, table.z_masks, cancel_requested)
    return finish_estimate(pub, table.combine(values), rng)


def _simulate() -> Any:
    """:mod:`aqrt.engine.simulate` (numba), imported on first use: on the engine worker, or
    already imported by the warm-up when a serial path on the loop gets here."""
    simulate = sys.modules.get("aqrt.engine.simulate")  # a module-level import statement costs ~1 us a job
    if simulate is None:
        from ...engine import simulate
    return simulate


def _on_numpy(program: BoundProgram) -> bool:
    """Whether a serial (inline) run of ``program`` goes to the numpy interpreter: only while
    the numba ``small`` tier for its precision is not loaded in this process."""
    return not tier_loaded(SMALL, dtype_name(program.dtype)) and program.num_qubits <= numpy_interpreter.MAX_QUBITS


def estimate_chunk(
    lowered: LoweredCircuit,
    flat_values: np.ndarray,
    table: TermTable,
    dtype: Any,
    cancel_requested: CancelFlag | None = None,
) -> np.ndarray:
    """Observable values of bindings ``flat_values`` (a slice of a PUB's), shape (bindings, observables).

    The exact part of an Estimator PUB for one chunk of its bindings; :func:`finish_estimate`
    turns the stacked chunks into the PUB's result.
    """
    program = lowered.bind(flat_values, dtype=dtype)
    return table.combine(_simulate().term_values(program, table.x_masks, table.z_masks, cancel_requested))


def finish_estimate(pub: EstimatorPub, per_pair: np.ndarray, rng: np.random.Generator | None) -> PubResult:
    """The PUB's result from its (bindings, observables) values: broadcast, then precision noise."""
    binding_shape = pub.parameter_values.shape
    observable_shape = pub.observables.shape
    if not binding_shape and not observable_shape:  # a tiny job's scalar PUB
        shape: tuple[int, ...] = ()
        evs = np.array(per_pair[0, 0], dtype=np.float64)
    elif not observable_shape:  # one observable (a sweep's): its column, as it is
        shape = binding_shape
        evs = np.ascontiguousarray(per_pair[:, 0], dtype=np.float64).reshape(shape)
    elif not binding_shape:
        shape = observable_shape
        evs = np.ascontiguousarray(per_pair[0], dtype=np.float64).reshape(shape)
    else:
        shape = np.broadcast_shapes(binding_shape, observable_shape)
        binding_index = np.broadcast_to(np.arange(int(np.prod(binding_shape))).reshape(binding_shape), shape)
        observable_index = np.broadcast_to(np.arange(int(np.prod(observable_shape))).reshape(observable_shape), shape)
        evs = np.array(per_pair[binding_index, observable_index], dtype=np.float64)
    precision = float(pub.precision or 0.0)
    if precision > 0:
        assert rng is not None
        evs = np.asarray(rng.normal(evs, precision), dtype=np.float64)
    # np.array(float) for a scalar PUB: np.full((), ...) at a fifth of its cost
    stds = np.full(shape, precision, dtype=np.float64) if shape else np.array(precision)
    data = _estimate_data_bin(evs, stds, shape)
    return PubResult(data, metadata={"target_precision": precision, "circuit_metadata": pub.circuit.metadata})


def _estimate_data_bin(evs: np.ndarray, stds: np.ndarray, shape: tuple[int, ...]) -> DataBin:
    """``DataBin(evs=evs, stds=stds, shape=shape)``, its state set directly: the constructor's
    checks (field names, each value's leading shape) hold by construction here and cost as much
    as the rest of a tiny PUB's result. Qiskit's constructor is used if DataBin's state differs."""
    if not _DATA_BIN_STATE_KNOWN:
        return DataBin(evs=evs, stds=stds, shape=shape)
    return _bare_data_bin(evs, stds, shape)


def _bare_data_bin(evs: np.ndarray, stds: np.ndarray, shape: tuple[int, ...]) -> DataBin:
    data = DataBin.__new__(DataBin)
    set_attribute = object.__setattr__  # as DataBin's constructor sets its state
    set_attribute(data, "_shape", shape)
    set_attribute(data, "_data", {"evs": evs, "stds": stds})
    set_attribute(data, "evs", evs)
    set_attribute(data, "stds", stds)
    return data


def _same_data_bin_state() -> bool:
    """Whether :func:`_bare_data_bin` makes what DataBin's constructor makes (on this Qiskit)."""
    return DataBin.__slots__ == ("_data", "_shape") and all(
        _same_state(np.full(shape, 0.5), np.zeros(shape), shape) for shape in ((), (2,), (2, 3))
    )


def _same_state(evs: np.ndarray, stds: np.ndarray, shape: tuple[int, ...]) -> bool:
    try:
        made, bare = DataBin(evs=evs, stds=stds, shape=shape), _bare_data_bin(evs, stds, shape)
    except Exception:  # pragma: no cover - a Qiskit whose DataBin has another layout
        return False
    return (
        made._shape == bare._shape
        and list(made._data) == list(bare._data)
        and all(made._data[key] is bare._data[key] for key in made._data)
        and list(vars(made)) == list(vars(bare))
        and all(vars(made)[key] is vars(bare)[key] for key in vars(made))
    )


_DATA_BIN_STATE_KNOWN = _same_data_bin_state()


def sample_pub(
    circuit: QuantumCircuit,
    pub: SamplerPub,
    rng: np.random.Generator,
    cancel_requested: CancelFlag | None,
    cache: dict[Any, Any],
    circuit_key: Any,
    *,
    serial: bool = False,
    dtype: Any = np.complex128,
) -> SamplerPubResult:
    """``pub.shots`` samples of every binding, one BitArray per classical register."""
    _, unitary, registers = sampler_setup(circuit, cache, circuit_key)
    by_content = circuit is pub.circuit  # its unitary part is then a function of the PUB's content
    program = _program(unitary, pub, cache, ("unitary", circuit_key), dtype, by_content=by_content)
    shots = int(pub.shots)
    arrays = draw_samples(program, rng, shots, registers, cancel_requested, serial=serial)
    return finish_sample(pub, arrays, registers)


Registers = list[tuple[str, list[int]]]


def sampler_setup(
    circuit: QuantumCircuit, cache: dict[Any, Any], circuit_key: Any
) -> tuple[dict[int, int], QuantumCircuit, Registers]:
    """The circuit without its final measurements, and per classical register the measured
    qubit of each clbit (-1: never measured); cached per circuit."""
    split = cache.get(("split", circuit_key))
    if split is None:
        mapping, positions = final_measurements(circuit)
        unitary = circuit.copy_empty_like()
        for position, instruction in enumerate(circuit.data):
            if position not in positions:
                unitary.append(instruction)
        registers = []
        for creg in circuit.cregs:
            clbits = [circuit.find_bit(bit).index for bit in creg]
            registers.append((creg.name, [mapping.get(c, -1) for c in clbits]))
        split = cache[("split", circuit_key)] = (mapping, unitary, registers)
    return split


def draw_samples(
    program: BoundProgram,
    rng: np.random.Generator,
    shots: int,
    registers: Registers,
    cancel_requested: CancelFlag | None = None,
    *,
    serial: bool = False,
) -> dict[str, np.ndarray]:
    """Packed samples of every binding of ``program``, per register (bindings, shots, bytes).

    Binding b uses the ``shots`` doubles after the first ``b * shots`` of ``rng``, so a chunk
    starting at binding s reproduces them from a generator advanced by ``s * shots``. Off the
    loop the draws go through :func:`aqrt.engine.sampling.draw_outcomes` (one pass over the
    probabilities; compiled on first use, on the worker); a ``serial`` job (on the loop) draws
    the same outcomes with the ``small`` tier's kernels, the program's run then the draws from
    its state (:func:`aqrt.engine.simulate.serial_outcomes`), or, for a program that tier does
    not run, with numpy: neither compiles anything.
    """
    arrays = {
        name: np.zeros((program.num_bindings, shots, (len(cols) + 7) // 8), dtype=np.uint8) for name, cols in registers
    }
    if serial and _on_numpy(program):  # before numba is loaded: the numpy interpreter, numpy's draws
        for b in range(program.num_bindings):
            _draw_with_numpy(numpy_interpreter.probabilities(program, b, b + 1)[0], rng, shots, registers, arrays, b)
        return arrays
    simulate = _simulate()
    if serial:  # a tiny job on the loop, kernels loaded: the small tier's draws, or numpy's (the same draws)
        if simulate.serial_tier(program) == SMALL:  # each binding's run, draws and packing: small-tier kernels
            targets = [(arrays[name], np.asarray(cols, dtype=np.int64)) for name, cols in registers]
            for b in range(program.num_bindings):
                outcomes = simulate.serial_outcomes(program, b, rng.random(shots))
                for array, clbit_columns in targets:
                    simulate.serial_pack(outcomes, clbit_columns, array[b])
            return arrays
        for start, stop in simulate.binding_batches(program):
            probs = simulate.serial_probabilities(program, start, stop)
            for offset, b in enumerate(range(start, stop)):
                _draw_with_numpy(probs[offset], rng, shots, registers, arrays, b)
        return arrays
    from ...engine.sampling import draw_outcomes, pack_outcomes  # numba: off the loop

    columns = {name: np.asarray(cols, dtype=np.int64) for name, cols in registers}
    for start, stop in simulate.binding_batches(program):
        probs = simulate.probabilities(program, start, stop, cancel_requested)
        for offset, b in enumerate(range(start, stop)):
            outcomes = draw_outcomes(probs[offset], rng, shots)
            for name, packed in columns.items():
                pack_outcomes(outcomes, packed, arrays[name][b])
    return arrays


def _draw_with_numpy(
    probs: np.ndarray,
    rng: np.random.Generator,
    shots: int,
    registers: Registers,
    arrays: dict[str, np.ndarray],
    binding: int,
) -> None:
    """Binding ``binding``'s shots drawn with numpy (the outcomes
    :func:`aqrt.engine.sampling.draw_outcomes` draws, bit for bit) and packed per register."""
    cdf = np.cumsum(probs)
    draws = rng.random(shots) * cdf[-1]
    outcomes = np.minimum(np.searchsorted(cdf, draws, side="right"), cdf.shape[0] - 1)
    for name, cols in registers:
        arrays[name][binding] = _pack(outcomes, cols)


def sample_chunk(
    lowered: LoweredCircuit,
    flat_values: np.ndarray,
    rng: np.random.Generator,
    shots: int,
    registers: Registers,
    dtype: Any,
    cancel_requested: CancelFlag | None = None,
) -> dict[str, np.ndarray]:
    """Samples of one chunk of a PUB's bindings; ``rng`` already advanced to the chunk's start."""
    program = lowered.bind(flat_values, dtype=dtype)
    return draw_samples(program, rng, shots, registers, cancel_requested)


def finish_sample(pub: SamplerPub, arrays: dict[str, np.ndarray], registers: Registers) -> SamplerPubResult:
    """The PUB's result from its packed samples (bindings, shots, bytes) per register."""
    shape = pub.parameter_values.shape
    shots = int(pub.shots)
    meas = {
        name: BitArray(arrays[name].reshape((*shape, shots, arrays[name].shape[-1])), len(cols))
        for name, cols in registers
    }
    return SamplerPubResult(
        DataBin(**meas, shape=shape), metadata={"shots": shots, "circuit_metadata": pub.circuit.metadata}
    )
