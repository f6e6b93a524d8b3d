"""The async Executor: IBM's ``executor`` program (a ``QuantumProgram``) on aqrt's runtime."""

from __future__ import annotations

from typing import Any

import sniffio

from ..errors import InvalidInputError
from ..job import Job
from ..session._scheduler import PubCheck
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
    backend's); circuits must be ISA for a device backend (checked off the event loop, before
    the job starts: a refused program is a failed job). Needs the ``devices`` extra
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
        """Submit ``program`` as one job; returns the :class:`~aqrt.Job` at once.

        The backend checks the program (its ``meas_level``; each item as a Sampler PUB: ISA for a
        device, width, memory) on the engine worker thread before the job starts, not here: on a
        127-qubit device that ISA walk is 0.2-0.4 s, which would stall the event loop. A refused
        program is a job that fails with the backend's typed error (awaiting it raises it), as
        IBM's ``executor`` program fails it on the server (qiskit-ibm-runtime's ``Executor.run``
        checks nothing either). The program is checked once: its run does not check it again.

        Raises:
            InvalidInputError: ``program`` is not a ``QuantumProgram``.
            InvalidOptionsError: ``max_execution_time`` is not below the session's ``max_time``.
            SessionClosedError / SessionExpiredError / SessionCacheError: the session refuses jobs.
            SessionFullError: the session is at its ``max_pending`` (``await submit(...)`` waits).
            RuntimeError: no event loop is running (synchronous code: use ``aqrt.sync.Executor``).

        The job (``await job``) raises what the backend's check raises: ``InvalidOptionsError``
        for a ``meas_level`` other than ``"classified"`` (a simulator has no IQ data);
        ``InvalidPubError`` / ``CircuitTooLargeError`` / ``UnsupportedCircuitError`` for an item
        it refuses (not ISA for a device, too wide), the PUB index being the item's.
        """
        return self._submit(program, "before_start")

    def _run_checked(self, program: Any) -> Job:
        """:meth:`run` for a program the caller has already checked with the backend's
        ``validate_pub`` (aqrt serve does, off its event loop, at submission): the job does not
        check it again."""
        return self._submit(program, "done")

    def _submit(self, program: Any, check: PubCheck) -> Job:
        from samplomatic.quantum_program import QuantumProgram  # type: ignore[import-untyped]

        from ..backends.local.executor_program import QuantumProgramPub

        if not isinstance(program, QuantumProgram):
            raise InvalidInputError(
                f"Executor.run() takes one QuantumProgram (qiskit_ibm_runtime.quantum_program), got "
                f"{type(program).__name__}"
            )
        try:
            return self._scheduler.submit(
                self._program, [QuantumProgramPub(program)], self._options.snapshot(), check=check
            )
        except sniffio.AsyncLibraryNotFoundError:
            raise no_event_loop_error("Executor") from None
