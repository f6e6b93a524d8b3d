"""The async Sampler (Qiskit V2 semantics)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..job import Job
from ..options import effective_shots
from ._base import BasePrimitive
from ._pubs import coerce_sampler_pubs

__all__ = ["Sampler"]


class Sampler(BasePrimitive):
    """Shots from (parameterised) circuits, one ``BitArray`` per classical register, as
    Qiskit's SamplerV2.

    Args:
        mode: a Session/Batch, a backend (job mode) or a backend name; by default the session
            of the enclosing ``async with Session(...)`` block, else job mode on the local backend.
        session: the same as ``mode=session``.
        options: :class:`~aqrt.options.SamplerOptions` (IBM's names), aqrt's
            :class:`~aqrt.Options`, or a nested dict of them (unknown names raise); copied.
    """

    _program = "sampler"

    def run(self, pubs: Iterable[Any], *, shots: int | None = None) -> Job:
        """Validate the PUBs now and submit them as one job; returns the :class:`~aqrt.Job` at once.

        Args:
            pubs: ``(circuit[, parameter_values[, shots]])`` tuples or ``SamplerPub``.
            shots: for PUBs without their own; defaults to ``options.default_shots`` (1024 if unset).

        Raises:
            InvalidPubError: a PUB is malformed (the message names which one and why).
            SessionClosedError / SessionExpiredError / SessionCacheError: the session refuses jobs.
            SessionFullError: the session is at its ``max_pending`` (``await submit(...)`` waits).
            InvalidOptionsError: ``max_execution_time`` is not below the session's ``max_time``.
        """
        options = self._options.snapshot()
        if shots is None:
            shots = effective_shots(options)
        return self._scheduler.submit(self._program, coerce_sampler_pubs(pubs, shots), options)
