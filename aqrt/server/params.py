"""A job's ``params`` decoded into what aqrt runs: PUBs and :class:`~aqrt.options.Options`.

The format is :mod:`aqrt.wire.runtime_api`'s (the one aqrt's client writes). What the params
declare (circuit sizes in QPY headers, bindings after broadcasting, shots, observables, output
size) is admitted under the server's limits (:meth:`ServerConfig.payload_limits
<aqrt.server.config.ServerConfig.payload_limits>`, :mod:`aqrt.wire.limits`) before anything is
built from it; every refusal is a 400 naming the limit and the PUB. Decoding runs on a worker
thread, never on the event loop nor on the store's thread.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..options import Options
from ..wire import WireError
from ..wire.runtime_api import options_from_params, pubs_from_params
from .config import ServerConfig
from .errors import ApiError

__all__ = ["decode_params", "decode_params_sync"]


async def decode_params(
    program: str, params: Any, cost: int | None, config: ServerConfig, *, widest_backend: int = 0
) -> tuple[list[Any], Options]:
    """:func:`decode_params_sync` on a worker thread: reading QPY touches files (lazy imports)
    and costs CPU for big payloads."""
    return await asyncio.to_thread(decode_params_sync, program, params, cost, config, widest_backend=widest_backend)


def decode_params_sync(
    program: str, params: Any, cost: int | None, config: ServerConfig, *, widest_backend: int = 0
) -> tuple[list[Any], Options]:
    """The PUBs and options of a job's ``params``; ``cost`` becomes ``max_execution_time``.
    Circuits may be as wide as the widest served backend (``widest_backend``: a device's ISA
    circuits), whatever ``max_qubits`` (which bounds the qubits the engine simulates).
    Every valid qiskit-ibm-runtime option is accepted (one aqrt cannot honour is reported in the
    result's ``options_not_applied``); an unknown name is a 400 naming it.

    Raises:
        ApiError: 400 for params the API does not accept or this server's limits refuse.
    """
    if cost is not None and cost > config.max_cost:
        raise ApiError(400, f"cost is {cost} seconds; this server takes at most {config.max_cost} (max_cost)")
    try:
        pubs, rest = pubs_from_params(program, params, limits=config.payload_limits(widest_backend=widest_backend))
        return pubs, options_from_params(rest, max_execution_time=cost, program=program)
    except WireError as exc:
        raise ApiError(400, str(exc)) from None
