"""The Runtime program ``executor`` run locally: a ``QuantumProgram`` on aqrt's engine.

A ``QuantumProgram`` (qiskit-ibm-runtime's, a samplomatic one) holds items, each a circuit run
for ``program.shots`` shots at every element of the item's shape:

- a *circuit item* binds its ``circuit_arguments`` (shape ``(*shape, num_parameters)``);
- a *samplex item* first draws, with samplomatic, each element's parameter values (twirling
  gates, basis changes, injected noise from its Pauli-Lindblad maps, all folded into the
  template circuit's parameters) and the samplex's other outputs (``measurement_flips.<creg>``,
  the bit flips the client undoes); axes of ``shape`` over which the samplex arguments do not
  vary enumerate randomizations.

Each item runs as one Sampler PUB on the backend's runner (or, when its circuit falls into
independent groups of qubits, as the client-side Estimator's circuits on big devices do, one PUB
per group, :mod:`.executor_split`), so it runs as every aqrt Sampler PUB runs: idle qubits
dropped, with the backend's noise (a :class:`~.device.DeviceBackend`'s device model, density
matrix or branching), after the backend's own checks (a device backend's ISA check: the
executor, like IBM's service, runs ISA circuits only). An item's result holds, per classical
register, the bits as booleans of shape ``(*shape, shots, register size)``, bit ``j`` being
clbit ``j`` of the register (IBM's ``meas_level="classified"`` layout), plus the samplex's other
outputs (``measurement_flips.<creg>``, ...) as qiskit-ibm-runtime's local mode returns them (the
``parameter_values`` it bound are not returned).

Everything here is blocking CPU work: run it on a worker thread (:func:`run_quantum_program_async`
runs it on the engine worker); ``cancel`` is polled between items and by the engine inside them.

Differences from qiskit-ibm-runtime's local mode (``QiskitRuntimeLocalService``, on Aer): the
engine is aqrt's (no rounding of angles to Clifford values is needed); ``meas_level`` other than
``"classified"`` is refused (a simulator has no IQ data; local mode would return bits anyway);
``SimulatorOptions.layer_noise_model`` (Aer-side noise insertion at tagged barriers) is not read:
the backend's noise model applies instead.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from ..._concurrency import CancelFlag, run_in_worker
from ...errors import InvalidOptionsError, JobCancelledError
from ...job import JobRequest
from ...options import SamplerOptions
from ..base import ExecutionContext
from .runner import LocalJobRunner

__all__ = [
    "MAX_PART_QUBITS",
    "SUPPORTED_MEAS_LEVEL",
    "ProgramBackend",
    "QuantumProgramPub",
    "check_meas_level",
    "run_quantum_program",
    "run_quantum_program_async",
    "sample_samplex_item",
    "validate_quantum_program",
]


class ProgramBackend(Protocol):
    """What a program runs on: a :class:`~.backend.LocalBackend` (or a device backend): its
    PUB check and its runner (named here structurally: the backend module imports this one)."""

    runner: LocalJobRunner

    def validate_pub(self, program: Any, pub: Any, index: int) -> None: ...


#: The one ``meas_level`` a simulator produces: bits.
SUPPORTED_MEAS_LEVEL = "classified"


class QuantumProgramPub:
    """A ``QuantumProgram`` as the one "PUB" of an ``executor`` job (``JobRequest.pubs``).

    What aqrt's runtime reads of a PUB before the job runs, taken from the program: ``circuit``
    (its first item's circuit, an empty one for a program without items; a device backend checks
    it is ISA before :func:`validate_quantum_program` checks every item), ``shots`` and
    ``parameter_values`` (one binding per element of every item, so a job's progress counts
    elements).
    """

    __slots__ = ("program",)

    def __init__(self, program: Any) -> None:
        self.program = program

    @property
    def circuit(self) -> Any:
        """The first item's circuit (an empty circuit when the program has no items)."""
        from qiskit.circuit import QuantumCircuit

        items = self.program.items
        return items[0].circuit if items else QuantumCircuit()

    @property
    def shots(self) -> int:
        """Shots per element, the program's."""
        return int(self.program.shots)

    @property
    def parameter_values(self) -> Any:
        """Bindings without parameters, one per element of every item (progress counts them)."""
        from qiskit.primitives.containers.bindings_array import BindingsArray

        return BindingsArray(shape=(sum(math.prod(item.shape) for item in self.program.items),))

    def __repr__(self) -> str:
        return f"<QuantumProgramPub items={len(self.program.items)} shots={self.program.shots}>"


def check_meas_level(program: Any) -> None:
    """Refuse a program whose ``meas_level`` a simulator cannot produce.

    Raises:
        InvalidOptionsError: ``meas_level`` is ``"kerneled"``, ``"avg_kerneled"``, ``"both"`` or
            another value than ``"classified"``.
    """
    level = program.meas_level
    if level != SUPPORTED_MEAS_LEVEL:
        raise InvalidOptionsError(
            f"meas_level={level!r}: a simulator produces classified bits only (meas_level='classified'); "
            "kerneled and averaged IQ data need a real device"
        )


def validate_quantum_program(program: Any, backend: ProgramBackend) -> None:
    """Refuse, before any work (at submission), a program ``backend`` cannot run: its
    ``meas_level``, and each item's circuit as the backend's ``validate_pub`` checks a Sampler
    PUB (a device's ISA check, width, memory, instructions), bound at every element of its shape.

    Raises:
        InvalidOptionsError: ``meas_level`` is not ``"classified"``.
        InvalidPubError: an item the backend refuses; the PUB index is the item's index.
        CircuitTooLargeError: an item's circuit wider than the device or than this machine holds.
    """
    check_meas_level(program)
    for index, item in enumerate(program.items):
        parameters = item.circuit.num_parameters
        values = np.broadcast_to(np.zeros(parameters), (*item.shape, parameters))
        for pub in _item_pubs(item, values, program.shots):
            backend.validate_pub("sampler", pub, index)


def sample_samplex_item(item: Any, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draw every element of a samplex item: its samplex's outputs, each of shape
    ``(*item.shape, *intrinsic)`` (``parameter_values``: ``(*item.shape, num_parameters)``).

    Axes of ``item.shape`` along which the samplex arguments vary (size > 1 after right-aligning
    the arguments' shape with it) are swept: the samplex is sampled once per point of them, with
    those arguments; the other axes are randomizations, drawn together in one call.
    """
    shape = tuple(item.shape)
    arguments = item.samplex_arguments
    argument_shape = (1,) * (len(shape) - arguments.ndim) + tuple(arguments.shape)
    swept = [axis for axis, size in enumerate(argument_shape) if size > 1]
    randomized = [axis for axis, size in enumerate(argument_shape) if size <= 1]
    randomizations = math.prod(shape[axis] for axis in randomized)
    samplex = item.samplex.finalize()  # one read from JSON is not finalized yet; finalizing again is harmless
    outputs: dict[str, np.ndarray] = {}
    for point in np.ndindex(*(shape[axis] for axis in swept)):
        at = dict(zip(swept, point, strict=True))
        # index the arguments (leading size-1 axes of their own shape stay at 0)
        offset = len(shape) - arguments.ndim
        argument_index = tuple(at.get(offset + axis, 0) for axis in range(arguments.ndim))
        drawn = samplex.sample(arguments[argument_index], num_randomizations=randomizations, rng=rng, max_workers=1)
        for name, values in dict(drawn).items():
            values = np.asarray(values)
            if name not in outputs:
                outputs[name] = np.empty((*shape, *values.shape[1:]), dtype=values.dtype)
            target = tuple(at[axis] if axis in at else slice(None) for axis in range(len(shape)))
            outputs[name][target] = values.reshape(*(shape[axis] for axis in randomized), *values.shape[1:])
    return outputs


def _bindings(circuit: Any, values: np.ndarray, shape: tuple[int, ...]) -> Any:
    from qiskit.primitives.containers.bindings_array import BindingsArray

    if circuit.num_parameters == 0:
        return BindingsArray(shape=shape)
    return BindingsArray({tuple(circuit.parameters): np.asarray(values, dtype=float)}, shape=shape)


#: Active qubits above which an item's circuit is cut into its independent groups
#: (:mod:`.executor_split`), packed in parts of at most this many qubits (a larger group is a part of
#: its own). 5: a noisy part runs as a small density matrix; measured on fake_sherbrooke, GHZ-8 at
#: resilience level 1 (two items of 32 x 128): 7.7 s with parts of 8, 1.6 s with 5, 2.8 s with 3.
MAX_PART_QUBITS = 5


def _item_pubs(item: Any, values: np.ndarray, shots: int) -> list[Any]:
    """The Sampler PUBs one item runs as: its circuit bound at every element of its shape, or,
    when the circuit falls into independent groups of qubits, one PUB per part."""
    from qiskit.primitives.containers.sampler_pub import SamplerPub

    from .executor_split import split_circuit

    shape = tuple(item.shape)
    parts = split_circuit(item.circuit, max_part_qubits=MAX_PART_QUBITS)
    if parts is None:
        return [SamplerPub.coerce((item.circuit, _bindings(item.circuit, values, shape), shots))]
    return [
        SamplerPub.coerce((part.circuit, _bindings(part.circuit, values[..., part.parameter_columns], shape), shots))
        for part in parts
    ]


def _engine_seeds(seed: int | None, items: int) -> tuple[np.random.Generator, list[int]]:
    """The samplex draws' generator and one engine seed per item, all from one ``SeedSequence``."""
    samplex_sequence, engine_sequence = np.random.SeedSequence(seed).spawn(2)
    seeds = [int(child.generate_state(1, np.uint32)[0]) for child in engine_sequence.spawn(items)]
    return np.random.default_rng(samplex_sequence), seeds


def run_quantum_program(
    program: Any,
    backend: ProgramBackend,
    *,
    seed: int | None = None,
    cancel: CancelFlag | None = None,
    cache: dict[Any, Any] | None = None,
    job_id: str = "executor",
    validated: bool = False,
) -> Any:
    """Run ``program`` (a qiskit-ibm-runtime or samplomatic ``QuantumProgram``) on ``backend``
    (a :class:`~.backend.LocalBackend`, a :class:`~.device.DeviceBackend` with its noise) and
    return its ``QuantumProgramResult`` (qiskit-ibm-runtime's, with the program's passthrough data
    and semantic role, so the client-side primitives' decoders post-process it).

    Blocking: call it from a worker thread. ``seed`` fixes every draw (samplex randomizations and
    shots); ``cancel`` is polled between items; ``cache`` is the session's cache (prepared and
    lowered circuits, the device's noise model), a fresh dict if None. ``validated``: the items
    were checked already (:func:`validate_quantum_program`, as a backend's ``validate_pub`` does
    at ``run()``): not again (the ISA check of a 127-qubit device's program costs 0.2-0.4 s).

    Raises:
        InvalidOptionsError: ``meas_level`` is not ``"classified"``.
        InvalidPubError: an item's circuit that the backend refuses (not ISA for a device, an
            instruction the engine cannot run); the PUB index is the item's index.
        CircuitTooLargeError: an item's circuit wider than the device or than this machine holds.
        JobCancelledError: ``cancel`` was set.
    """
    from qiskit_ibm_runtime.results.quantum_program import (  # type: ignore[import-untyped]
        ItemMetadata,
        Metadata,
        QuantumProgramItemResult,
        QuantumProgramResult,
    )
    from samplomatic.quantum_program import ChunkPart, ChunkSpan, SamplexItem  # type: ignore[import-untyped]

    check_meas_level(program)
    cancel = cancel if cancel is not None else CancelFlag()
    context = ExecutionContext(cache if cache is not None else {}, cancel)
    rng, seeds = _engine_seeds(seed, len(program.items))

    prepared: list[tuple[list[Any], dict[str, np.ndarray]]] = []
    for index, item in enumerate(program.items):
        if isinstance(item, SamplexItem):
            outputs = sample_samplex_item(item, rng)
            values = outputs.pop("parameter_values", np.zeros((*item.shape, 0)))
        else:
            outputs = {}
            values = item.circuit_arguments
        pubs = _item_pubs(item, np.asarray(values), program.shots)
        if not validated:
            for pub in pubs:
                backend.validate_pub("sampler", pub, index)
        prepared.append((pubs, outputs))

    items = []
    spans = []
    for index, ((pubs, outputs), item_seed) in enumerate(zip(prepared, seeds, strict=True)):
        start = dt.datetime.now(dt.UTC)
        bits: dict[str, np.ndarray] = {}
        # the parts of a cut circuit each write their own clbits (the others stay 0): OR joins them
        for pub, part_seed in zip(pubs, np.random.SeedSequence(item_seed).generate_state(len(pubs)), strict=True):
            if cancel.is_set():
                raise JobCancelledError(f"job {job_id} was cancelled", job_id=job_id)
            request = JobRequest(job_id, "sampler", (pub,), SamplerOptions(seed=int(part_seed)), None)
            for name, array in _registers(backend.runner.run(request, context)[0].data).items():
                part_bits = array.to_bool_array(order="little")
                bits[name] = part_bits if name not in bits else bits[name] | part_bits
        stop = dt.datetime.now(dt.UTC)
        items.append(QuantumProgramItemResult({**outputs, **bits}, ItemMetadata()))
        spans.append(ChunkSpan(start, stop, [ChunkPart(index, math.prod(pubs[0].shape))]))
    result = QuantumProgramResult(items, Metadata(chunk_timing=spans), passthrough_data=program.passthrough_data)
    result._semantic_role = getattr(program, "_semantic_role", None)
    return result


async def run_quantum_program_async(
    program: Any,
    backend: ProgramBackend,
    *,
    seed: int | None = None,
    cancel: CancelFlag | None = None,
    cache: dict[Any, Any] | None = None,
    job_id: str = "executor",
) -> Any:
    """:func:`run_quantum_program` on the engine worker thread, awaited without blocking the loop
    (asyncio or trio). Cancelling the awaiting task sets ``cancel`` (one is made if None) and
    waits until the worker has stopped, so no work is left running behind it."""
    flag = cancel if cancel is not None else CancelFlag()
    return await run_in_worker(
        lambda: run_quantum_program(program, backend, seed=seed, cancel=flag, cache=cache, job_id=job_id), flag
    )


def _registers(data: Any) -> Mapping[str, Any]:
    """A Sampler PUB's ``DataBin`` as {register name: BitArray}."""
    return dict(data.items())
