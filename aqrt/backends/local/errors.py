"""Engine errors mapped to aqrt errors, in one place and by type.

The engine raises its own exceptions (it knows nothing of PUBs or jobs); a job sees
:class:`~aqrt.UnsupportedCircuitError` (an ``InvalidPubError``) naming the PUB, or :class:`~aqrt.JobCancelledError`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ...errors import JobCancelledError, UnsupportedCircuitError

__all__ = ["engine_errors"]


@contextlib.contextmanager
def engine_errors(job_id: str, pub_index: int | None = None) -> Iterator[None]:
    """Translate engine exceptions raised inside the block for PUB ``pub_index`` of job ``job_id``."""
    try:
        yield
    except Exception as exc:
        # Imported here, not at the top: the engine loads numba, and importing aqrt must not.
        # Inside a job the engine is loaded already, so this is a dictionary lookup.
        from ...engine.lowering import LoweringError
        from ...engine.simulate import EngineCancelled

        if isinstance(exc, EngineCancelled):
            raise JobCancelledError(f"job {job_id} was cancelled", job_id=job_id) from None
        if isinstance(exc, LoweringError) and pub_index is not None:
            raise UnsupportedCircuitError(pub_index, str(exc)) from exc
        raise
