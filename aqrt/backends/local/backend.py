"""LocalService and the local statevector backend.

Two engines compute the same results: ``"numba"`` (the default, :mod:`aqrt.engine`) and
``"reference"`` (Qiskit's ``Statevector``, the test oracle). Jobs run on the engine worker
thread, off the event loop; a job so small that the thread hand-off would cost more than the
work (tens of microseconds) runs inline on the loop once the kernels are compiled.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import sys
import threading
from typing import Any

import numpy as np
from qiskit.circuit import QuantumCircuit
from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit.primitives.containers import PrimitiveResult

from ..._concurrency import run_in_worker
from ...errors import BackendNotFoundError, CircuitTooLargeError, InvalidPubError, JobCancelledError
from ...job import JobRequest, Program
from ...options import Options
from . import reference
from ..base import NOT_INLINE, BackendCapabilities, ExecutionContext

__all__ = ["LocalBackend", "LocalService"]

DEFAULT_BACKEND = "aqrt_statevector"
_ALIASES = {"ibmq_qasm_simulator": DEFAULT_BACKEND}
_MAX_SESSION_TIME = 8 * 3600
_CAPABILITIES = BackendCapabilities(max_session_time=_MAX_SESSION_TIME, runs_inline=True)
# Bytes per amplitude a job holds at its peak: the numba engine keeps one complex128 state plus,
# when sampling, probabilities and their cumulative sum (8 + 8); Statevector keeps ~3 states.
_PEAK_BYTES_PER_AMPLITUDE = {"numba": 32, "reference": 48}
_ALWAYS_FITS = 64 << 20  # smaller jobs skip the free-memory query
_INLINE_BUDGET = 1 << 13  # amplitude updates below which a job runs on the loop (~ tens of µs)
ENGINES = ("numba", "reference")
TARGET_CHUNK_SECONDS = 0.05  # work per chunk of a sweep: enough to dwarf a task's overhead
# Amplitude updates per second of one core on small states (measured ~1e9 on a 2-core EPYC VM
# for n = 10; benchmarks/sweep.py). Binding a chunk also costs a fixed few ms of Python per
# ~100 gates, which 50 ms chunks keep small.
UPDATES_PER_SECOND = 1e9
# In-process, chunks exist only to report progress: fewer, longer ones (each binds its own
# parameters, a few ms of Python per ~100 gates) still update a progress bar several times a second.
PROGRESS_CHUNK_SECONDS = 0.25
_STANDARD_GATES = get_standard_gate_name_mapping()
# Every standard gate is native to the simulator; the pass manager targets all of them.
BASIS_GATES = sorted(set(get_standard_gate_name_mapping()) - {"global_phase"})


class LocalService:
    """The embedded service: local backends, no network, no account.

    Args:
        engine: ``"numba"`` (default) or ``"reference"`` (Qiskit's ``Statevector``; slow, exact).
        dtype: ``"complex128"`` (default) or ``"complex64"`` (numba engine only): half the memory
            and traffic for about 1e-6 relative accuracy instead of 1e-15.
        max_qubits: refuse circuits wider than this (default: what this machine's memory holds).
        dask: run large sweeps on a Dask cluster: a ``distributed.Client`` made with
            ``asynchronous=True`` on the running loop, or a scheduler address (a client is then
            opened on first use and closed by ``await service.aclose()``). Needs ``aqrt[dask]``.
        chunk_bindings: bindings per chunk of a sweep (default: about 50 ms of work each on Dask,
            250 ms in-process, where a job is chunked only when its progress is watched).

    Example:
        >>> LocalService().backend("ibmq_qasm_simulator").name
        'aqrt_statevector'
    """

    def __init__(
        self,
        *,
        engine: str = "numba",
        dtype: str = "complex128",
        max_qubits: int | None = None,
        dask: Any = None,
        chunk_bindings: int | None = None,
    ) -> None:
        self._backends = {
            DEFAULT_BACKEND: LocalBackend(
                DEFAULT_BACKEND,
                service=self,
                engine=engine,
                dtype=dtype,
                max_qubits=max_qubits,
                dask=dask,
                chunk_bindings=chunk_bindings,
            )
        }

    async def aclose(self) -> None:
        """Close what the backends opened (a Dask client made from an address)."""
        for backend in self._backends.values():
            await backend.aclose()

    async def __aenter__(self) -> LocalService:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def backends(self) -> list[LocalBackend]:
        """Every backend of this service."""
        return list(self._backends.values())

    def backend(self, name: str | None = None) -> LocalBackend:
        """The backend called ``name`` (aliases accepted); the default one if ``name`` is None."""
        key = DEFAULT_BACKEND if name is None else _ALIASES.get(name, name)
        try:
            return self._backends[key]
        except KeyError:
            known = sorted([*self._backends, *_ALIASES])
            raise BackendNotFoundError(f"no backend {name!r} on LocalService; available: {known}") from None

    def known_backend(self, name: str | None = None) -> LocalBackend:
        """:meth:`backend`: a local service always knows its backends (the Service protocol)."""
        return self.backend(name)

    async def fetch_backend(self, name: str | None = None) -> LocalBackend:
        """:meth:`backend` (the Service protocol)."""
        return self.backend(name)

    def __repr__(self) -> str:
        return f"<LocalService backends={list(self._backends)}>"


class LocalBackend:
    """An exact, noiseless statevector simulator on this machine."""

    def __init__(
        self,
        name: str,
        *,
        service: LocalService | None = None,
        engine: str = "numba",
        dtype: str = "complex128",
        max_qubits: int | None = None,
        dask: Any = None,
        chunk_bindings: int | None = None,
    ) -> None:
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
        if dtype not in ("complex128", "complex64") or (dtype == "complex64" and engine != "numba"):
            raise ValueError(f"dtype must be 'complex128' or (numba engine only) 'complex64', got {dtype!r}")
        self._name = name
        self.engine = engine
        self.dtype = dtype
        self._np_dtype = np.dtype(dtype)
        self._service = service
        self._bytes_per_amplitude = _PEAK_BYTES_PER_AMPLITUDE[engine] // (2 if dtype == "complex64" else 1)
        self._max_qubits = (
            max_qubits if max_qubits is not None else _qubits_that_fit(_total_memory(), self._bytes_per_amplitude)
        )
        if chunk_bindings is not None and (
            isinstance(chunk_bindings, bool) or not isinstance(chunk_bindings, int) or chunk_bindings < 1
        ):
            raise ValueError(f"chunk_bindings must be an int >= 1, got {chunk_bindings!r}")
        if dask is not None and engine != "numba":
            raise ValueError("dask= needs the numba engine")
        self.chunk_bindings = chunk_bindings
        self._dask = None
        if dask is not None:
            from ...distributed import DaskRunner

            self._dask = DaskRunner(dask)
        self._pass_managers: dict[int, Any] = {}
        self._pass_manager_lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    @property
    def num_qubits(self) -> int:
        return self._max_qubits

    @property
    def capabilities(self) -> BackendCapabilities:
        return _CAPABILITIES

    @property
    def service(self) -> LocalService | None:
        return self._service

    @property
    def basis_gates(self) -> list[str]:
        return list(BASIS_GATES)

    def validate_pub(self, program: Program, pub: Any, index: int) -> None:
        """Refuse circuits that are too wide or that the exact path cannot run."""
        circuit: QuantumCircuit = pub.circuit
        width = circuit.num_qubits
        if width > self._max_qubits:
            raise CircuitTooLargeError(
                f"PUB {index}: the circuit has {width} qubits; backend {self.name!r} takes at most "
                f"{self._max_qubits} (a {width}-qubit job needs "
                f"{_format_bytes(_state_bytes(width, self._bytes_per_amplitude))})"
            )
        needed = _state_bytes(width, self._bytes_per_amplitude)
        available = _available_memory() if needed > _ALWAYS_FITS else None
        if available is not None and needed > available:
            raise CircuitTooLargeError(
                f"PUB {index}: the circuit's {width}-qubit state needs {_format_bytes(needed)}, "
                f"but only {_format_bytes(available)} of memory is available"
            )
        problem = reference.unsupported_instruction(circuit, allow_final_measurements=program == "sampler")
        if problem is not None:
            raise InvalidPubError(index, problem)

    async def execute(self, request: JobRequest, context: ExecutionContext) -> PrimitiveResult:
        """Run the job on the engine worker thread (tiny jobs go through :meth:`run_inline`)."""
        if self.engine == "numba" and not _engine_warm(self.dtype):
            await run_in_worker(lambda: _warm_engine(self.dtype))
        if self._dask is not None and self._worth_distributing(request):
            return await self._dask.execute(self, request, context)
        return await run_in_worker(lambda: self._run(request, context), context.cancel_requested)

    async def aclose(self) -> None:
        """Close the Dask client this backend opened, if any."""
        if self._dask is not None:
            await self._dask.aclose()

    def _worth_distributing(self, request: JobRequest) -> bool:
        """More than one chunk of work: smaller jobs gain nothing from a cluster."""
        cost = sum(_pub_cost(pub) for pub in request.pubs)
        per_chunk = TARGET_CHUNK_SECONDS * UPDATES_PER_SECOND
        if self.chunk_bindings is not None:
            return any(math.prod(pub.parameter_values.shape) > self.chunk_bindings for pub in request.pubs)
        return cost > 2 * per_chunk

    def run_inline(self, request: JobRequest, context: ExecutionContext) -> Any:
        """The result of a job small enough to compute on the loop right now, else NOT_INLINE."""
        if self.engine == "numba" and _engine_warm(self.dtype) and self._runs_inline(request):
            if self._dask is not None and self._worth_distributing(request):
                return NOT_INLINE  # chunk_bindings asked for chunks this small
            return self._run(request, context, serial=True)
        return NOT_INLINE

    def _runs_inline(self, request: JobRequest) -> bool:
        if self.engine != "numba" or request.options.optimization_level is not None:
            return False
        return sum(_pub_cost(pub) for pub in request.pubs) <= _INLINE_BUDGET

    # -- on the worker thread --------------------------------------------------------------------

    def _run(self, request: JobRequest, context: ExecutionContext, *, serial: bool = False) -> PrimitiveResult:
        options = request.options
        cached_report = _options_not_applied(request.program, options)
        not_applied = dict(cached_report) if cached_report else None
        generators = _pub_generators(request)
        if context.progress is not None and self.engine == "numba" and not serial:
            return self._result(request, self._run_in_chunks(request, context, generators), not_applied)
        results = []
        for index, (pub, rng) in enumerate(zip(request.pubs, generators)):
            if context.cancel_requested.is_set():
                raise JobCancelledError(f"job {request.job_id} was cancelled", job_id=request.job_id)
            key = circuit_fingerprint(pub.circuit)
            circuit = self._prepare(pub.circuit, key, options, context.cache)
            try:  # the lowered form is cached per (circuit, optimization level)
                lowered_key = f"{options.optimization_level}:{key}"
                result = self._run_pub(request.program, circuit, pub, rng, context, lowered_key, serial)
            except Exception as exc:
                if type(exc).__name__ == "LoweringError":
                    raise InvalidPubError(index, str(exc)) from exc
                if type(exc).__name__ == "EngineCancelled":
                    raise JobCancelledError(f"job {request.job_id} was cancelled", job_id=request.job_id) from None
                raise
            results.append(result)
        return self._result(request, results, not_applied)

    def _result(self, request: JobRequest, results: list[Any], not_applied: dict[str, str] | None) -> PrimitiveResult:
        if not_applied:
            for result in results:
                result.metadata["options_not_applied"] = not_applied
        metadata: dict[str, Any] = {
            "version": 2,
            "backend": self.name,
            "job_id": request.job_id,
            "session_id": request.session_id,
            "engine": self.engine,
            "dtype": self.dtype,
        }
        if not_applied:
            metadata["options_not_applied"] = not_applied
        return PrimitiveResult(results, metadata=metadata)

    def _run_in_chunks(self, request: JobRequest, context: ExecutionContext, generators: list[Any]) -> list[Any]:
        """The PUBs chunk by chunk (see :mod:`.chunks`), reporting progress after each chunk."""
        from . import chunks

        plans = chunks.plan_job(
            self, request, context, generators, chunk_bindings=self.chunk_bindings, chunk_seconds=PROGRESS_CHUNK_SECONDS
        )
        results = []
        for plan in plans:
            parts = []
            for start, stop in plan.bounds():
                if context.cancel_requested.is_set():
                    raise JobCancelledError(f"job {request.job_id} was cancelled", job_id=request.job_id)
                try:
                    parts.append(chunks.run_chunk(plan.task(start, stop), context.cancel_requested))
                except Exception as exc:
                    if type(exc).__name__ == "EngineCancelled":
                        raise JobCancelledError(f"job {request.job_id} was cancelled", job_id=request.job_id) from None
                    raise
                context.progress.advance(stop - start)
            results.append(plan.finish(parts))
        return results

    def _run_pub(
        self,
        program: Program,
        circuit: QuantumCircuit,
        pub: Any,
        rng: np.random.Generator,
        context: ExecutionContext,
        key: str,
        serial: bool,
    ) -> Any:
        cancel = context.cancel_requested
        if self.engine == "reference":
            if program == "estimator":
                return reference.estimate_pub(circuit, pub, rng, cancel)
            return reference.sample_pub(circuit, pub, rng, cancel)
        from . import engine_pubs  # loads numba; importing aqrt must not

        dtype = self._np_dtype
        if program == "estimator":
            return engine_pubs.estimate_pub(circuit, pub, rng, cancel, context.cache, key, serial=serial, dtype=dtype)
        return engine_pubs.sample_pub(circuit, pub, rng, cancel, context.cache, key, serial=serial, dtype=dtype)

    def _prepare(
        self, circuit: QuantumCircuit, fingerprint: str, options: Options, cache: dict[Any, Any]
    ) -> QuantumCircuit:
        """Transpile at the requested level, once per distinct circuit per session."""
        level = options.optimization_level
        if level is None:
            return circuit
        key = ("transpiled", level, fingerprint)
        cached = cache.get(key)
        if cached is None:
            cached = self._pass_manager(level).run(circuit)
            cache[key] = cached
        return cached

    def _pass_manager(self, level: int) -> Any:
        with self._pass_manager_lock:
            if level not in self._pass_managers:
                from qiskit.transpiler import generate_preset_pass_manager

                self._pass_managers[level] = generate_preset_pass_manager(
                    optimization_level=level, basis_gates=BASIS_GATES, seed_transpiler=0
                )
            return self._pass_managers[level]

    def __repr__(self) -> str:
        return f"<LocalBackend {self.name} max_qubits={self._max_qubits}>"


def _pub_generators(request: JobRequest) -> list[Any]:
    """One generator per PUB, all derived from one SeedSequence (the job's seed).

    Exact Estimator PUBs draw nothing, so a job of only those skips the (costly) entropy draw.
    """
    needs_randomness = request.program == "sampler" or any(pub.precision for pub in request.pubs)
    if not needs_randomness:
        return [None] * len(request.pubs)
    children = np.random.SeedSequence(request.options.seed).spawn(len(request.pubs))
    return [np.random.default_rng(child) for child in children]


def _pub_cost(pub: Any) -> int:
    """A rough count of amplitude updates, to decide where a job runs."""
    shape = pub.parameter_values.shape
    bindings = math.prod(shape)
    return bindings * (1 << pub.circuit.num_qubits) * (len(pub.circuit) + 1)


def _engine_warm(dtype: str = "complex128") -> bool:
    # Never import here: this runs on the event loop, and importing numba reads files.
    module = sys.modules.get("aqrt.engine._warmup")
    return module is not None and module.is_warm(dtype)


def _warm_engine(dtype: str = "complex128") -> None:
    """On the worker: import and compile the engine (seconds the first time, then cached)."""
    from ...engine import warmup
    from . import chunks, engine_pubs  # noqa: F401  (so the loop never imports them)

    warmup(dtype)


def circuit_fingerprint(circuit: QuantumCircuit) -> str:
    """A digest of a circuit's structure, equal only for circuits that simulate identically.

    Standard gates are named by name, parameters and control state; any other operation by its
    matrix or, failing that, by its definition (recursively), since custom gates share names.
    """
    digest = hashlib.blake2b(digest_size=16)
    _digest_circuit(circuit, digest)
    return digest.hexdigest()


def _digest_circuit(circuit: QuantumCircuit, digest: Any) -> None:
    # Text is gathered and hashed in one update per run of standard gates: the same bytes as
    # updating piece by piece, with fewer calls.
    parts = [f"{circuit.num_qubits},{circuit.num_clbits},{_param_text(circuit.global_phase)}|"]
    qubit_index = {bit: i for i, bit in enumerate(circuit.qubits)}
    clbit_index = {bit: i for i, bit in enumerate(circuit.clbits)}
    for instruction in circuit.data:
        if instruction.is_standard_gate():  # name and params say it all; no Python gate is built
            parts.append(f"{instruction.name}:")
            for param in instruction.params:
                parts.append(_param_text(param))
                parts.append(",")
        else:
            digest.update("".join(parts).encode())
            parts = []
            _digest_operation(instruction.operation, digest)
        parts.append(repr([qubit_index[q] for q in instruction.qubits]))
        parts.append(repr([clbit_index[c] for c in instruction.clbits]))
    for register in circuit.cregs:
        parts.append(f"{register.name}:{register.size}")
    digest.update("".join(parts).encode())


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
        _digest_circuit(definition, digest)


def _param_text(value: Any) -> str:
    # str(), not repr(): a ParameterExpression's repr holds a memory address.
    return str(value) if hasattr(value, "parameters") else repr(value)


@functools.lru_cache(maxsize=256)
def _options_not_applied(program: Program, options: Options) -> dict[str, str]:
    """Options this noiseless backend accepts but cannot honour, with the reason."""
    not_applied = {}
    if options.resilience_level:
        not_applied["resilience_level"] = (
            f"requested {options.resilience_level}, applied 0: the statevector backend is noiseless "
            "and exact, so there is no error to mitigate"
        )
    return not_applied


def _state_bytes(num_qubits: int, bytes_per_amplitude: int) -> int:
    return bytes_per_amplitude * (1 << num_qubits)


def _qubits_that_fit(memory: int, bytes_per_amplitude: int) -> int:
    width = 1
    while _state_bytes(width + 1, bytes_per_amplitude) <= memory:
        width += 1
    return width


def _total_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 << 30


def _available_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return None


def _format_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"  # pragma: no cover
