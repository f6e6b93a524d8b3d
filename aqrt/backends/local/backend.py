"""``LocalBackend``: the Backend contract over this machine's statevector engine, and a Qiskit
``BackendV2``.

As a ``BackendV2`` it has a ``target`` (every standard gate on any qubits, see :mod:`.target`),
so ``generate_preset_pass_manager(backend=backend)`` works; ``run()`` is refused, as on IBM's
backends: circuits run through the primitives.

Two engines compute the same results: ``"numba"`` (the default, :mod:`aqrt.engine`) and
``"reference"`` (Qiskit's ``Statevector``, the test oracle). A job so small that the thread
hop would cost more than the work (tens of microseconds) runs inline on the event loop: on the
numba serial kernels once they are loaded in the process, before that (a process's first small
jobs) on the numpy interpreter (:mod:`.warmup`); every other job runs on an executor
(:mod:`.executors`): the engine worker thread, or one passed in, such as a Dask cluster.
"""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qiskit.primitives.containers import PrimitiveResult
from qiskit.providers import BackendV2
from qiskit.providers import Options as BackendOptions
from qiskit.transpiler import Target

from ..._concurrency import run_in_worker
from ...errors import BackendError, InvalidPubError
from ...job import JobRequest, Program
from ..base import NOT_INLINE, BackendCapabilities, ExecutionContext, Service
from .cost import INLINE_BUDGET, inline_cost
from .executor_program import QuantumProgramPub, run_quantum_program, validate_quantum_program
from .executors import JobExecutor, WorkerThread
from .memory import PEAK_BYTES_PER_AMPLITUDE, qubits_that_fit, total_memory
from .recipes import BackendRecipe
from .runner import ENGINES, LocalJobRunner
from .status import BackendStatus
from .target import basis_gates, statevector_target
from .warmup import (
    declared_tiers,
    engine_is_warm,
    needed_tiers,
    note_numpy_seconds,
    numpy_fits,
    run_if_loaded,
    warm_engine,
)

if TYPE_CHECKING:
    from ...noise import NoiseModel

__all__ = ["LocalBackend"]

MAX_SESSION_TIME = 8 * 3600
CAPABILITIES = BackendCapabilities(max_session_time=MAX_SESSION_TIME, runs_inline=True)


def _aqrt_version() -> str:
    try:
        return importlib.metadata.version("aqrt")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "0.0.0"


# Read once, at import: a backend is often made on the event loop, where file reads must not be.
_AQRT_VERSION = _aqrt_version()


class LocalBackend(BackendV2):
    """An exact, noiseless statevector simulator on this machine; a Qiskit ``BackendV2``.

    ``num_qubits`` keeps aqrt's meaning: the widest state this machine holds (what aqrt's
    checks refuse beyond, what ``aqrt serve`` advertises). Its ``target`` has no width
    (``target.num_qubits`` is None: the engine runs every standard gate on any qubits, the
    transpiler routes nothing). A device backend (:class:`~.device.DeviceBackend`) takes both
    from its device instead.

    Args:
        name: the backend's name.
        service: the :class:`~aqrt.LocalService` it belongs to, if any.
        engine: ``"numba"`` (default) or ``"reference"``.
        dtype: ``"complex128"`` (default) or ``"complex64"`` (numba only).
        max_qubits: refuse circuits wider than this (default: what this machine's memory holds).
        executor: runs the jobs it :meth:`~.executors.JobExecutor.takes` (e.g.
            :class:`aqrt.distributed.DaskExecutor`); the others run on the engine worker thread.
        chunk_bindings: bindings per chunk when a job is cut into chunks.
        description: the ``BackendV2`` description.
        backend_version: the ``BackendV2`` version (default: aqrt's).
        recipe: how another process makes this same backend (:mod:`.recipes`); given by
            :class:`~.service.LocalService` to the backends other processes can make by name.

    Raises:
        ValueError: an unknown engine or dtype, an executor with the reference engine, or a
            ``chunk_bindings`` that is not a positive int.
        TypeError: ``executor`` does not implement :class:`~.executors.JobExecutor`.
    """

    name: str  # set by BackendV2.__init__

    def __init__(
        self,
        name: str,
        *,
        service: Service | None = None,
        engine: str = "numba",
        dtype: str = "complex128",
        max_qubits: int | None = None,
        executor: JobExecutor | None = None,
        chunk_bindings: int | None = None,
        description: str = "aqrt's exact, noiseless statevector simulator on this machine",
        backend_version: str | None = None,
        recipe: BackendRecipe | None = None,
    ) -> None:
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
        if dtype not in ("complex128", "complex64") or (dtype == "complex64" and engine != "numba"):
            raise ValueError(f"dtype must be 'complex128' or (numba engine only) 'complex64', got {dtype!r}")
        if chunk_bindings is not None and (
            isinstance(chunk_bindings, bool) or not isinstance(chunk_bindings, int) or chunk_bindings < 1
        ):
            raise ValueError(f"chunk_bindings must be an int >= 1, got {chunk_bindings!r}")
        if executor is not None:
            if not isinstance(executor, JobExecutor):
                raise TypeError(f"executor must implement JobExecutor, got {type(executor).__name__}")
            if engine != "numba":
                raise ValueError("an executor needs the numba engine")
        super().__init__(
            name=name,
            description=description,
            backend_version=backend_version if backend_version is not None else _AQRT_VERSION,
        )
        self._service = service
        self.engine = engine
        self.dtype = dtype
        self._bytes_per_amplitude = PEAK_BYTES_PER_AMPLITUDE[engine] // (2 if dtype == "complex64" else 1)
        self._max_qubits = (
            max_qubits if max_qubits is not None else qubits_that_fit(total_memory(), self._bytes_per_amplitude)
        )
        self._executor = executor
        self._recipe = recipe
        self._worker = WorkerThread()
        self._target: Target | None = None
        self.runner = LocalJobRunner(
            name,
            engine=engine,
            dtype=dtype,
            chunk_bindings=chunk_bindings,
            metadata=self.result_metadata,
            transpile_target=self._transpile_target,
            noise_model=self._noise_source(),
        )
        """Runs this backend's jobs in the calling thread (see :mod:`.runner`)."""

    @property
    def num_qubits(self) -> int:
        """The widest circuit this backend runs: what this machine's memory holds (or
        ``max_qubits``). Unlike ``target.num_qubits`` (None: any width), a number."""
        return self._max_qubits

    @property
    def target(self) -> Target:
        """Every standard gate, ``measure``, ``reset``, ``delay`` and the control-flow
        operations, on any qubits (built on first use)."""
        if self._target is None:
            self._target = statevector_target(self.description)
        return self._target

    @property
    def max_circuits(self) -> None:
        """No limit on the circuits (PUBs) of a job."""
        return None

    @classmethod
    def _default_options(cls) -> BackendOptions:
        # No backend.run(), so no run options: the primitives take their own Options.
        return BackendOptions()

    def run(self, run_input: Any, **options: Any) -> Any:
        """Refused, as IBM's backends refuse it: circuits run through the primitives.

        Raises:
            BackendError: always.
        """
        raise BackendError(
            f"backend.run() is not supported on {self.name!r}, as on IBM Quantum's backends, where support for "
            "it has been removed: run circuits through the primitives, e.g. "
            "`await aqrt.Sampler(mode=backend).run([circuit])` (or aqrt.Estimator). See "
            "https://quantum.cloud.ibm.com/docs/migration-guides/qiskit-runtime for how to migrate to the "
            "primitives interface."
        )

    def status(self) -> BackendStatus:
        """Operational, nothing pending (a local backend keeps no queue: jobs wait in their session)."""
        return BackendStatus(
            backend_name=self.name,
            backend_version=str(self.backend_version),
            operational=True,
            pending_jobs=0,
            status_msg="active",
        )

    @property
    def simulator(self) -> bool:
        """True: a simulator (a device backend answers False, as the device it stands for)."""
        return True

    def _noise_source(self) -> Callable[[], NoiseModel | None] | None:
        """The backend's own noise model, built when first asked for (None: noiseless)."""
        return None

    def _transpile_target(self) -> Target | None:
        """What ``optimization_level`` transpiles for: None, the basis of every standard gate."""
        return None

    @property
    def result_metadata(self) -> dict[str, str]:
        """What every result of this backend should say about how it was computed (besides
        the runner's own keys); empty here, a device backend says it ran without noise."""
        return {}

    @property
    def capabilities(self) -> BackendCapabilities:
        return CAPABILITIES

    @property
    def recipe(self) -> BackendRecipe | None:
        """How another process makes this same backend, or None when only this process can
        (:mod:`.recipes`): executors that run whole jobs elsewhere need it."""
        return self._recipe

    @property
    def service(self) -> Service | None:
        return self._service

    @property
    def basis_gates(self) -> list[str]:
        """The target's gates (no ``measure``, ``reset``, ``delay`` or control flow), sorted."""
        return basis_gates(self.target)

    def validate_pub(self, program: Program, pub: Any, index: int) -> None:
        """Refuse circuits that are too wide for this machine or that the engine cannot run; an
        ``executor`` job's program (a :class:`~.executor_program.QuantumProgramPub`): its
        ``meas_level`` and every item, as :func:`~.executor_program.validate_quantum_program` checks.

        Raises:
            InvalidPubError / CircuitTooLargeError / UnsupportedCircuitError: a PUB (an item) it refuses.
            InvalidOptionsError: an executor program whose ``meas_level`` is not ``"classified"``.
        """
        if program == "executor":
            if not isinstance(pub, QuantumProgramPub):
                raise InvalidPubError(index, f"an executor job runs a QuantumProgramPub, got {type(pub).__name__}")
            validate_quantum_program(pub.program, self)
            return
        self.runner.check_pub(
            program, pub, index, max_qubits=self._max_qubits, bytes_per_amplitude=self._bytes_per_amplitude
        )

    async def execute(self, request: JobRequest, context: ExecutionContext) -> PrimitiveResult:
        """Run the job on its executor (tiny jobs go through :meth:`run_inline` first)."""
        if self.engine == "numba":  # the kernel tiers the job needs, loaded off the loop (seconds the first time)
            noisy = self.runner.may_be_noisy(request)
            if not engine_is_warm(self.dtype, declared_tiers(request, noisy=noisy)):
                await run_in_worker(lambda: warm_engine(self.dtype, needed_tiers(request, noisy=noisy)))
        if self._executor is not None and self._executor.takes(self, request):
            return await self._executor.execute(self, request, context)
        return await self._worker.execute(self, request, context)

    def run_job(self, request: JobRequest, context: ExecutionContext) -> Any:
        """Run the job in the calling thread (blocking CPU work) and return its result: a
        ``PrimitiveResult``, or an ``executor`` job's ``QuantumProgramResult`` (its program run
        whole, never in chunks: its samplex draws and items share one generator, seeded by the
        job's ``seed`` if set). Executors call it on the thread or in the process that runs the
        job."""
        if request.program != "executor":
            return self.runner.run(request, context)
        (pub,) = request.pubs
        return run_quantum_program(
            pub.program,
            self,
            seed=request.options.seed,
            cancel=context.cancel_requested,
            cache=context.cache,
            job_id=request.job_id,
            validated=True,  # at run() (validate_pub), or at submission on aqrt serve
        )

    def run_inline(self, request: JobRequest, context: ExecutionContext) -> Any:
        """The result of a job small enough to compute on the loop right now, else NOT_INLINE."""
        if request.program == "executor":
            return NOT_INLINE  # sampling a samplex and its items is never microseconds
        if self.engine != "numba" or request.options.optimization_level is not None:
            return NOT_INLINE
        warm = engine_is_warm(self.dtype)
        if warm:
            if inline_cost(request.pubs) > INLINE_BUDGET:
                return NOT_INLINE
        elif not numpy_fits(request):  # before the kernels load, small jobs run on the numpy interpreter
            return NOT_INLINE
        if self._executor is not None and self._executor.takes(self, request):
            return NOT_INLINE  # e.g. chunk_bindings asked for chunks this small
        if not self.runner.statevector_only(request, context.cache):
            return NOT_INLINE  # a dynamic circuit's branches can cost far more than its size says
        # The engine refuses a program whose kernels are not loaded yet, before any runs: NOT_INLINE.
        started = time.perf_counter()
        result = run_if_loaded(lambda: self.runner.run(request, context, serial=True))
        if not warm:  # on numpy: enough of that, and the small tier loads in the background
            note_numpy_seconds(self.dtype, time.perf_counter() - started)
        return result

    async def aclose(self) -> None:
        """Close what this backend's executor opened (a Dask client made from an address)."""
        if self._executor is not None:
            await self._executor.aclose()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} max_qubits={self._max_qubits}>"
