"""A final job's outcome, for :class:`~aqrt.backends.ibm.IBMBackend` and
:class:`~aqrt.backends.ibm.RemoteJob` alike: its decoded ``PrimitiveResult``, or the typed aqrt
error that :func:`aqrt.wire.runtime_api.final_error` says the job body stands for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from ...wire import decode
from ...wire.runtime_api import final_error
from .rest import RuntimeAPI

__all__ = ["decode_result", "final_result"]

_DECODE_INLINE_BYTES = 256 << 10


async def decode_result(text: str) -> Any:
    """The decoded result; big ones are decoded on a worker thread, not on the loop."""
    if len(text) < _DECODE_INLINE_BYTES:
        return decode(text)
    return await asyncio.get_running_loop().run_in_executor(None, decode, text)


async def final_result(
    api: RuntimeAPI, remote_id: str, final: Mapping[str, Any], *, where: str, job_id: str | None
) -> Any:
    """The result of server job ``remote_id`` whose final body is ``final``.

    Args:
        where: how error messages name the job; job_id: the id the errors carry.

    Raises:
        JobTimeoutError / JobCancelledError / JobFailedError: the job did not complete.
        RuntimeRequestError: fetching the result failed.
    """
    error = final_error(final, where=where, job_id=job_id)
    if error is not None:
        raise error
    return await decode_result(await api.job_results(remote_id))
