"""The async Sampler (Qiskit V2 semantics)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sniffio

from ..job import Job
from ..options import effective_shots
from ._base import BasePrimitive, no_event_loop_error, v1_call_error
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

    def run(self, pubs: Iterable[Any], *v1_args: Any, shots: int | None = None, **v1_kwargs: Any) -> Job:
        """Validate the PUBs now and submit them as one job; returns the :class:`~aqrt.Job` at once.

        Args:
            pubs: ``(circuit[, parameter_values[, shots]])`` tuples or ``SamplerPub``.
            shots: for PUBs without their own; defaults to ``options.default_shots`` (1024 if unset).

        Raises:
            InvalidPubError: a PUB is malformed (the message names which one and why).
            SessionClosedError / SessionExpiredError / SessionCacheError: the session refuses jobs.
            SessionFullError: the session is at its ``max_pending`` (``await submit(...)`` waits).
            InvalidOptionsError: ``max_execution_time`` is not below the session's ``max_time``.
            TypeError: the V1 call shape ``run(circuits, parameter_values)`` (or any argument but
                ``pubs`` and ``shots``); the message shows the V2 form.
            RuntimeError: no event loop is running (synchronous code: use ``aqrt.sync.Sampler``).
        """
        if v1_args or v1_kwargs:
            raise v1_call_error(
                "Sampler",
                "shots",
                "circuits, parameter_values",
                "`sampler.run([(circuit, parameter_values)], shots=1024)` (`result[0].data.meas.get_counts()`)",
                v1_kwargs,
            )
        options = self._options.snapshot()
        if shots is None:
            shots = effective_shots(options)
        pubs = coerce_sampler_pubs(pubs, shots)
        try:
            return self._scheduler.submit(self._program, pubs, options)
        except sniffio.AsyncLibraryNotFoundError:
            raise no_event_loop_error("Sampler") from None
