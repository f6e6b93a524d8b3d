"""Running a job locally: the one interface every place that runs local jobs goes through.

:class:`LocalJobRunner` runs a job in the calling thread: each PUB is transpiled (if asked),
lowered and run on the engine, and the results are put together with the job's metadata. The
pieces are also offered apart, for executors that run a job elsewhere (:mod:`aqrt.distributed`):
:meth:`~LocalJobRunner.plan` cuts the PUBs into self-contained chunks and
:meth:`~LocalJobRunner.assemble` builds the result from the PUB results. *Where* the runner runs
(on the event loop for tiny jobs, on the engine worker thread, on a cluster) is the backend's
and its executor's business, not the runner's.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
from qiskit.circuit import QuantumCircuit
from qiskit.primitives.containers import PrimitiveResult
from qiskit.quantum_info import SparsePauliOp

from ...errors import (
    CircuitTooLargeError,
    InvalidInputError,
    InvalidOptionsError,
    JobCancelledError,
    UnsupportedCircuitError,
)
from ...job import JobRequest, Program
from ..base import ExecutionContext
from . import reference, routes
from .compaction import active_qubits
from .cost import PROGRESS_CHUNK_SECONDS, TARGET_CHUNK_SECONDS
from .errors import engine_errors
from .fingerprint import circuit_fingerprint
from .memory import ALWAYS_FITS, available_memory, format_bytes, state_bytes
from .options_report import options_not_applied
from .preparation import PreparedCircuit, prepare_circuit, shared_preparation
from .routes import STABILIZER, STATEVECTOR
from .seeding import pub_generators
from .transpile import Transpiler

if TYPE_CHECKING:
    from ...noise import NoiseModel
    from ...options import Options
    from .mitigation import ResilienceSettings

__all__ = ["ENGINES", "LocalJobRunner"]

ENGINES = ("numba", "reference")
_NOISY_MAX_QUBITS = 40  # noisy circuits run as statevectors: no wider, whatever the memory
# What a noisy run honours beyond the noiseless backend (options_report leaves them out).
_HONOURED_WITH_NOISE = ("simulator.noise_model", "resilience_level", "resilience", "twirling")
_SAMPLER_HONOURED_WITH_NOISE = ("simulator.noise_model",)
_NOT_APPLIED_ENTRIES = 64  # options objects whose report a runner keeps (a primitive's snapshot each)


class LocalJobRunner:
    """Runs jobs of one local backend (its name, engine and dtype) in the calling thread.

    Args:
        backend_name: named in every result's metadata.
        engine: ``"numba"`` or ``"reference"`` (Qiskit's ``Statevector``).
        dtype: ``"complex128"`` or ``"complex64"`` (numba only).
        chunk_bindings: bindings per chunk when a job is cut into chunks (None: about
            :data:`~.cost.TARGET_CHUNK_SECONDS` of work each).
        metadata: added to every job's result metadata (a device backend names its noise).
        transpile_target: the ``Target`` that ``optimization_level`` transpiles for (None: every
            standard gate on any qubits), asked for on first use.
        noise_model: the backend's own noise model (a device's), built on first use off the
            event loop; None: noiseless unless a job's ``simulator.noise_model`` option gives one.
    """

    def __init__(
        self,
        backend_name: str,
        *,
        engine: str,
        dtype: str,
        chunk_bindings: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        transpile_target: Callable[[], Any] | None = None,
        noise_model: Callable[[], NoiseModel | None] | None = None,
    ) -> None:
        self.backend_name = backend_name
        self._default_noise = noise_model
        self.engine = engine
        self.dtype = dtype
        self.chunk_bindings = chunk_bindings
        self.metadata = dict(metadata or {})
        self._np_dtype = np.dtype(dtype)
        self._transpiler = Transpiler(transpile_target)
        # The circuit fingerprints of the last request seen: a job's inline check
        # (statevector_only) and its run digest each circuit once between them. Replaced whole
        # (one tuple), so a job on the loop and one on the worker thread never mix theirs.
        self._last_fingerprints: tuple[JobRequest, list[str]] | None = None
        # The prepared circuits the last inline check found (request, cache, circuits): the
        # inline run that follows it takes them instead of looking each up again.
        self._last_prepared: tuple[JobRequest, dict[Any, Any], list[PreparedCircuit]] | None = None
        # options_not_applied by options object (a job's snapshot, shared by every job of a
        # primitive while its options stay unchanged), so a job does not compare whole options
        # trees to find its report in options_not_applied's cache of equal options.
        self._not_applied: dict[tuple[int, Program, tuple[str, ...]], tuple[Options, dict[str, str] | None]] = {}

    def check_pub(self, program: Program, pub: Any, index: int, *, max_qubits: int, bytes_per_amplitude: int) -> None:
        """Refuse, before any work, a PUB this machine cannot hold or the engine cannot run.

        Raises:
            CircuitTooLargeError: wider than ``max_qubits``, or its state needs more memory than is free.
            UnsupportedCircuitError: an instruction the engine cannot run.
        """
        circuit: QuantumCircuit = pub.circuit
        counts = circuit.count_ops()  # one count for both instruction checks
        if self.engine == "reference":  # the oracle simulates every qubit, unitary circuits only
            too_large = self._too_large(circuit, circuit.num_qubits, index, max_qubits, bytes_per_amplitude)
            if too_large is not None:
                raise too_large
            problem = reference.unsupported_instruction(
                circuit, allow_final_measurements=program == "sampler", counts=counts
            )
        else:
            width = circuit.num_qubits
            # Within the backend's width and a state that always fits, nothing is too large (the
            # common case, without _too_large's messages and memory look-up).
            if width > max_qubits or state_bytes(width, bytes_per_amplitude) > ALWAYS_FITS:
                width = len(active_qubits(circuit))  # only these are simulated
                too_large = self._too_large(circuit, width, index, max_qubits, bytes_per_amplitude)
                if too_large is not None:
                    if routes.fits_stabilizer(circuit, program):
                        return  # stim holds a Clifford circuit of any width
                    raise too_large
            problem = reference.unsupported_instruction(
                circuit, allow_final_measurements=program == "sampler", counts=counts
            )
            if problem is not None:
                problem = routes.unsupported(circuit, program)
        problem = problem or reference.opaque_instruction(circuit, counts=counts)
        if problem is not None:
            raise UnsupportedCircuitError(index, problem)

    def _too_large(
        self, circuit: QuantumCircuit, width: int, index: int, max_qubits: int, bytes_per_amplitude: int
    ) -> CircuitTooLargeError | None:
        """The error for a ``width``-qubit state this backend or this machine's free memory cannot hold, or None."""
        needed = state_bytes(width, bytes_per_amplitude)
        dropped = circuit.num_qubits - width
        idle = f" ({dropped} of its {circuit.num_qubits} qubits are idle)" if dropped else ""
        if width > max_qubits:
            return CircuitTooLargeError(
                f"PUB {index}: the circuit acts on {width} qubits{idle}; backend {self.backend_name!r} simulates "
                f"at most {max_qubits} (a {width}-qubit state needs {format_bytes(needed)})"
            )
        available = available_memory() if needed > ALWAYS_FITS else None
        if available is not None and needed > available:
            return CircuitTooLargeError(
                f"PUB {index}: the circuit's {width}-qubit state{idle} needs {format_bytes(needed)}, "
                f"but only {format_bytes(available)} of memory is available"
            )
        return None

    def prepare(
        self, circuit: QuantumCircuit, fingerprint: str, request: JobRequest, cache: dict[Any, Any]
    ) -> PreparedCircuit:
        """The circuit as it will run (transpiled at the job's optimization level, idle qubits
        dropped, method chosen), cached per circuit and level."""
        level = request.options.optimization_level
        key = ("prepared", request.program, level, fingerprint)
        prepared = cache.get(key)
        if prepared is None:
            if level is None and self.engine != "reference":  # as given: found by content across sessions
                prepared = shared_preparation(circuit, fingerprint, request.program)
            else:
                transpiled = self._transpiler.prepare(circuit, fingerprint, request.options, cache)
                prepared = prepare_circuit(circuit, transpiled, request.program, drop_idle=self.engine != "reference")
            cache[key] = prepared
        return prepared

    def may_be_noisy(self, request: JobRequest) -> bool:
        """Whether the job may run with noise (cheap: builds no noise model), so that it runs on the
        engine worker, whole, never inline or in chunks elsewhere."""
        return self._default_noise is not None or request.options.simulator.noise_model is not None

    def noise_model(self, request: JobRequest, cache: dict[Any, Any]) -> NoiseModel | None:
        """The job's noise model (its ``simulator.noise_model`` option, else the backend's), or None
        when noiseless. CPU work on first use (a device's model): call it off the event loop.

        Raises:
            InvalidOptionsError: ``simulator.noise_model`` is neither a qiskit-aer nor an aqrt NoiseModel.
        """
        given = request.options.simulator.noise_model
        if given is None:
            if self._default_noise is None:
                return None
            model = self._default_noise()
        else:
            from .noise_models import as_noise_model

            # converted once per session (an Aer model or a dict also once per process while unchanged)
            entry = cache.get(("noise-model", id(given)))
            if entry is None or entry[0] is not given:
                try:
                    converted = as_noise_model(given)
                except (InvalidInputError, ImportError) as error:
                    raise InvalidOptionsError(f"simulator.noise_model: {error}") from None
                entry = cache[("noise-model", id(given))] = (given, converted)
            model = entry[1]
        return None if model is None or model.is_ideal else model

    def statevector_only(self, request: JobRequest, cache: dict[Any, Any]) -> bool:
        """Whether every PUB runs on the noiseless statevector route (the PUBs are prepared, and
        cached, to know)."""
        if self.may_be_noisy(request):
            return False
        keys = self.fingerprints(request)
        prepared = []
        for pub, key in zip(request.pubs, keys, strict=True):
            circuit = self.prepare(pub.circuit, key, request, cache)
            if circuit.method != STATEVECTOR:
                return False
            prepared.append(circuit)
        self._last_prepared = (request, cache, prepared)
        return True

    def fingerprints(self, request: JobRequest) -> list[str]:
        """The circuit fingerprint of each PUB of ``request``, digested once per request: a job's
        inline check and its inline run, one right after the other, share them."""
        last = self._last_fingerprints
        if last is not None and last[0] is request:
            return last[1]
        keys = [circuit_fingerprint(pub.circuit) for pub in request.pubs]
        self._last_fingerprints = (request, keys)
        return keys

    def run(self, request: JobRequest, context: ExecutionContext, *, serial: bool = False) -> PrimitiveResult:
        """Run every PUB of ``request`` here and return the job's result.

        Args:
            serial: use only the serial kernels (jobs run inline on the event loop).

        Raises:
            JobCancelledError: ``context.cancel_requested`` was set.
            InvalidPubError: the engine cannot run a PUB.
        """
        model = self.noise_model(request, context.cache)
        settings = None
        if model is not None and request.program == "estimator":
            from .mitigation import ResilienceSettings

            settings = ResilienceSettings.from_options(request.options, default_level=1)
        if context.progress is not None and self.engine == "numba" and not serial and model is None:
            return self._run_in_chunks(request, context)
        generators = pub_generators(request, shared=True)  # run whole here: no state copied
        # Inline (serial), the job runs right after run_inline's check digested its circuits and
        # prepared them; on a worker they are digested as they run, in case a circuit changed
        # since submission.
        keys = self.fingerprints(request) if serial else [circuit_fingerprint(pub.circuit) for pub in request.pubs]
        checked = self._last_prepared
        known = None
        if serial and checked is not None and checked[0] is request and checked[1] is context.cache:
            known = checked[2]
        results = []
        for index, (pub, rng, key) in enumerate(zip(request.pubs, generators, keys, strict=True)):
            if context.cancel_requested.is_set():
                raise JobCancelledError(f"job {request.job_id} was cancelled", job_id=request.job_id)
            prepared = known[index] if known is not None else self.prepare(pub.circuit, key, request, context.cache)
            # The lowered form is cached per (circuit, optimization level).
            lowered_key = f"{request.options.optimization_level}:{key}"
            try:
                if model is not None:
                    result = self._run_noisy_pub(
                        request, prepared, pub, rng, context, lowered_key, model, settings, index
                    )
                else:
                    result = self._run_pub(request.program, prepared, pub, rng, context, lowered_key, serial)
                    result.metadata["simulator_metadata"] = prepared.metadata()
            except Exception:
                # engine_errors translates it; entered only on failure (a tiny job's whole run
                # costs a few context managers)
                with engine_errors(request.job_id, index):
                    raise
            results.append(result)
        honoured = (
            (_HONOURED_WITH_NOISE if request.program == "estimator" else _SAMPLER_HONOURED_WITH_NOISE)
            if model is not None
            else ()
        )
        extra = self._noise_metadata(request, model)
        if settings is not None:
            extra.update(settings.metadata())  # IBM's job metadata: "resilience", "twirling"
        return self.assemble(request, results, honoured=honoured, extra=extra)

    def plan(
        self, request: JobRequest, context: ExecutionContext, *, chunk_seconds: float = TARGET_CHUNK_SECONDS
    ) -> list[Any]:
        """Every PUB of ``request`` as a :class:`~.chunks.PubPlan`: transpiled, lowered, cut into
        chunks of ``chunk_bindings`` bindings or about ``chunk_seconds`` of work. CPU work: call
        it off the event loop."""
        from . import chunks  # loads the engine

        return chunks.plan_job(
            request,
            context,
            pub_generators(request),
            prepare=self.prepare,
            dtype=self.dtype,
            chunk_bindings=self.chunk_bindings,
            chunk_seconds=chunk_seconds,
        )

    def _noise_metadata(self, request: JobRequest, model: NoiseModel | None) -> dict[str, Any]:
        """What the job's metadata says about noise when a job's option chose the model."""
        if model is None or request.options.simulator.noise_model is None:
            return {}
        return {"noise": "simulator.noise_model", "noise_model": repr(model)}

    def assemble(
        self,
        request: JobRequest,
        results: list[Any],
        *,
        honoured: tuple[str, ...] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> PrimitiveResult:
        """The job's ``PrimitiveResult`` from its PUB results, with the job's metadata.

        ``honoured``: option paths the run honoured beyond the noiseless backend (noise, resilience);
        ``extra``: more job metadata (the noise a job's option chose, over the backend's own; what
        mitigation ran).
        """
        not_applied = self._options_not_applied(request.program, request.options, honoured)
        if not_applied:
            for result in results:
                result.metadata["options_not_applied"] = not_applied
        metadata: dict[str, Any] = {
            "version": 2,
            "backend": self.backend_name,
            "job_id": request.job_id,
            "session_id": request.session_id,
            "engine": self.engine,
            "dtype": self.dtype,
            **self.metadata,
            **(extra or {}),
        }
        if not_applied:
            metadata["options_not_applied"] = not_applied
        return PrimitiveResult(results, metadata=metadata)

    def _options_not_applied(
        self, program: Program, options: Options, honoured: tuple[str, ...]
    ) -> dict[str, str] | None:
        """:func:`~.options_report.options_not_applied` (noisy when anything beyond the noiseless
        backend was honoured), found by the options object's identity first; a fresh dict per job."""
        key = (id(options), program, honoured)
        entry = self._not_applied.get(key)
        if entry is None or entry[0] is not options:
            if len(self._not_applied) >= _NOT_APPLIED_ENTRIES:
                self._not_applied.clear()
            entry = (options, options_not_applied(program, options, honoured=honoured, noisy=bool(honoured)))
            self._not_applied[key] = entry
        report = entry[1]
        return None if report is None else dict(report)

    def _run_in_chunks(self, request: JobRequest, context: ExecutionContext) -> PrimitiveResult:
        """The PUBs chunk by chunk in this thread, reporting progress after each chunk."""
        from . import chunks

        progress = context.progress
        assert progress is not None
        results = []
        for plan in self.plan(request, context, chunk_seconds=PROGRESS_CHUNK_SECONDS):
            parts = []
            for start, stop in plan.bounds():
                if context.cancel_requested.is_set():
                    raise JobCancelledError(f"job {request.job_id} was cancelled", job_id=request.job_id)
                with engine_errors(request.job_id):
                    parts.append(chunks.run_chunk(plan.task(start, stop), context.cancel_requested))
                progress.advance(stop - start)
            results.append(plan.finish(parts))
        return self.assemble(request, results)

    def _run_noisy_pub(
        self,
        request: JobRequest,
        prepared: PreparedCircuit,
        pub: Any,
        rng: np.random.Generator | None,
        context: ExecutionContext,
        key: str,
        model: NoiseModel,
        settings: ResilienceSettings | None,
        index: int,
    ) -> Any:
        """A PUB with noise (:mod:`.noisy`), mitigated as the job's resilience options say."""
        from . import noisy

        if self.engine == "reference":
            raise UnsupportedCircuitError(index, "noisy simulation needs the numba engine, not the reference one")
        if prepared.method == STABILIZER:  # accepted for stim, which runs noiseless Clifford circuits only
            too_large = self._too_large(prepared.circuit, prepared.circuit.num_qubits, index, _NOISY_MAX_QUBITS, 16)
            if too_large is not None:
                raise too_large
        if request.program == "sampler":
            assert rng is not None
            return noisy.sample_noisy_pub(
                prepared, pub, rng, context.cancel_requested, model, self._np_dtype, context.cache, key
            )
        from .mitigation import mitigated_values

        mitigate = None
        if settings is not None and settings.applies_anything:
            generator = rng if rng is not None else np.random.default_rng()

            def mitigate(
                evaluator: Any, values: np.ndarray, names: list[str], observables: list[Any], precision: float
            ) -> Any:
                paulis = [SparsePauliOp.from_sparse_observable(observable) for observable in observables]
                return mitigated_values(
                    prepared.circuit, paulis, values, names, settings, evaluator, generator, precision
                )

        return noisy.estimate_noisy_pub(prepared, pub, rng, context.cancel_requested, model, self._np_dtype, mitigate)

    def _run_routed(
        self, program: Program, prepared: PreparedCircuit, pub: Any, rng: np.random.Generator | None, cancel: Any
    ) -> Any:
        """A PUB on the stabilizer or dynamic route."""
        from . import engine_pubs

        values, names = reference._flat_bindings(pub)
        if program == "estimator":
            observables = prepared.pub_observables(pub)
            per_pair = routes.estimate_values(
                prepared.method, prepared.circuit, values, names, observables, self._np_dtype, cancel
            )
            return engine_pubs.finish_estimate(pub, per_pair, rng)
        assert rng is not None
        arrays = routes.sample_arrays(
            prepared.method, prepared.circuit, values, names, int(pub.shots), rng, self._np_dtype, cancel
        )
        return engine_pubs.finish_sample(pub, arrays, prepared.registers())

    def _run_pub(
        self,
        program: Program,
        prepared: PreparedCircuit,
        pub: Any,
        rng: np.random.Generator | None,
        context: ExecutionContext,
        key: str,
        serial: bool,
    ) -> Any:
        cancel = context.cancel_requested
        circuit = prepared.circuit
        if self.engine == "reference":
            if program == "estimator":
                return reference.estimate_pub(circuit, pub, rng, cancel)
            assert rng is not None  # every sampler PUB draws shots
            return reference.sample_pub(circuit, pub, rng, cancel)
        engine_pubs = _engine_pubs()
        dtype = self._np_dtype
        if prepared.method != STATEVECTOR:
            return self._run_routed(program, prepared, pub, rng, cancel)
        if program == "estimator":
            return engine_pubs.estimate_pub(prepared, pub, rng, cancel, context.cache, key, serial=serial, dtype=dtype)
        assert rng is not None
        return engine_pubs.sample_pub(circuit, pub, rng, cancel, context.cache, key, serial=serial, dtype=dtype)


def _engine_pubs() -> ModuleType:
    """:mod:`.engine_pubs`, imported on first use (importing aqrt must not load the engine); a
    function-level import statement costs about half a microsecond of every tiny job."""
    module = sys.modules.get(_ENGINE_PUBS)
    if module is not None:
        return module
    from . import engine_pubs

    return engine_pubs


_ENGINE_PUBS = __name__.rpartition(".")[0] + ".engine_pubs"
