"""The async Executor: IBM's ``executor`` program (a ``QuantumProgram``) on aqrt's runtime."""

from __future__ import annotations

from typing import Any

import sniffio

from ..errors import InvalidInputError
from ..job import Job
from ._base import BasePrimitive, no_event_loop_error

__all__ = ["Executor"]


class Executor(BasePrimitive):
    """Runs a ``QuantumProgram`` (qiskit-ibm-runtime's or samplomatic's) as one job, as IBM's
    ``executor`` program does: every item's circuit at every element of its shape,
    ``program.shots`` shots each, samplex items sampled first (twirling, basis changes, injected
    noise); ``await job`` gives qiskit-ibm-runtime's ``QuantumProgramResult`` (per item, each
    classical register's bits as booleans of shape ``(*item.shape, shots, size)``).

    Jobs go where the other primitives' go (a Session/Batch with its rules, or job mode on a
    backend) and run whole on the engine worker thread, with the backend's noise (a device
    backend's); circuits must be ISA for a device backend. Needs the ``devices`` extra
    (qiskit-ibm-runtime, samplomatic).

    Args:
        mode: a Session/Batch, a backend (job mode) or a backend name; by default the session
            of the enclosing ``async with Session(...)`` block, else job mode on the local backend.
        session: the same as ``mode=session``.
        options: :class:`~aqrt.options.SamplerOptions` or aqrt's :class:`~aqrt.Options` (a dict
            of them too). Of these an executor job reads ``seed`` (every draw: samplex
            randomizations and shots; unset: fresh entropy) and ``max_execution_time``; the
            program carries the rest (shots, ``meas_level``).

    Examples:
        >>> async with Session(backend=DeviceBackend(FakeManilaV2())):  # doctest: +SKIP
        ...     result = await Executor().run(program)
        ...     bits = result[0]["c"]  # bool, (*item.shape, shots, 1)
    """

    _program = "executor"

    def run(self, program: Any) -> Job:
        """Validate ``program`` now and submit it as one job; returns the :class:`~aqrt.Job` at once.

        Raises:
            InvalidInputError: ``program`` is not a ``QuantumProgram``.
            InvalidOptionsError: its ``meas_level`` is not ``"classified"`` (a simulator has no IQ
                data), or ``max_execution_time`` is not below the session's ``max_time``.
            InvalidPubError / CircuitTooLargeError / UnsupportedCircuitError: an item the backend
                refuses (not ISA for a device, too wide); the PUB index is the item's.
            SessionClosedError / SessionExpiredError / SessionCacheError: the session refuses jobs.
            SessionFullError: the session is at its ``max_pending`` (``await submit(...)`` waits).
            RuntimeError: no event loop is running (synchronous code: use ``aqrt.sync.Executor``).
        """
        from samplomatic.quantum_program import QuantumProgram  # type: ignore[import-untyped]

        from ..backends.local.executor_program import QuantumProgramPub

        if not isinstance(program, QuantumProgram):
            raise InvalidInputError(
                f"Executor.run() takes one QuantumProgram (qiskit_ibm_runtime.quantum_program), got "
                f"{type(program).__name__}"
            )
        try:
            return self._scheduler.submit(self._program, [QuantumProgramPub(program)], self._options.snapshot())
        except sniffio.AsyncLibraryNotFoundError:
            raise no_event_loop_error("Executor") from None
