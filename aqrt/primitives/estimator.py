"""The async Estimator (Qiskit V2 semantics)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sniffio

from ..job import Job
from ..options import effective_precision
from ._base import BasePrimitive, no_event_loop_error, v1_call_error
from ._pubs import coerce_estimator_pubs

__all__ = ["Estimator"]


class Estimator(BasePrimitive):
    """Expectation values of observables on (parameterised) circuits, as Qiskit's EstimatorV2.

    Args:
        mode: a Session/Batch, a backend (job mode) or a backend name; by default the session
            of the enclosing ``async with Session(...)`` block, else job mode on the local backend.
        session: the same as ``mode=session``.
        options: :class:`~aqrt.options.EstimatorOptions` (IBM's names), aqrt's
            :class:`~aqrt.Options`, or a nested dict of them (unknown names raise); copied.

    Example:
        >>> async with Session() as session:                               # doctest: +SKIP
        ...     job = Estimator().run([(circuit, SparsePauliOp("ZZ"))])
        ...     evs = (await job)[0].data.evs
    """

    _program = "estimator"

    def run(self, pubs: Iterable[Any], *v1_args: Any, precision: float | None = None, **v1_kwargs: Any) -> Job:
        """Validate the PUBs now and submit them as one job; returns the :class:`~aqrt.Job` at once.

        Args:
            pubs: ``(circuit, observables[, parameter_values[, precision]])`` tuples or ``EstimatorPub``.
            precision: for PUBs without their own; defaults to ``1/sqrt(options.default_shots)``
                when that is set (IBM's rule), else ``options.default_precision`` (0.0 if unset).

        Raises:
            InvalidPubError: a PUB is malformed (the message names which one and why).
            SessionClosedError / SessionExpiredError / SessionCacheError: the session refuses jobs.
            SessionFullError: the session is at its ``max_pending`` (``await submit(...)`` waits).
            InvalidOptionsError: ``max_execution_time`` is not below the session's ``max_time``.
            TypeError: the V1 call shape ``run(circuits, observables[, parameter_values])`` (or any
                argument but ``pubs`` and ``precision``); the message shows the V2 form.
            RuntimeError: no event loop is running (synchronous code: use ``aqrt.sync.Estimator``).
        """
        if v1_args or v1_kwargs:
            raise v1_call_error(
                "Estimator",
                "precision",
                "circuits, observables, parameter_values",
                "`estimator.run([(circuit, observable, parameter_values)])` (values in `result[0].data.evs`)",
                v1_kwargs,
            )
        options = self._options.snapshot()
        if precision is None:
            precision = effective_precision(options)
        pubs = coerce_estimator_pubs(pubs, precision)
        try:
            return self._scheduler.submit(self._program, pubs, options)
        except sniffio.AsyncLibraryNotFoundError:
            raise no_event_loop_error("Estimator") from None
