"""A job's ``params`` decoded into what aqrt runs: PUBs and :class:`~aqrt.options.Options`.

The format is :mod:`aqrt.wire.runtime_api`'s (the one aqrt's client writes); this module adds
the server's limits (PUBs per job, qubits and operations per circuit, inflated bytes) and turns
every refusal into a 400.
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


async def decode_params(program: str, params: Any, cost: int | None, config: ServerConfig) -> tuple[list[Any], Options]:
    """:func:`decode_params_sync` on a worker thread: reading QPY touches files (lazy imports)
    and costs CPU for big payloads."""
    return await asyncio.to_thread(decode_params_sync, program, params, cost, config)


def decode_params_sync(program: str, params: Any, cost: int | None, config: ServerConfig) -> tuple[list[Any], Options]:
    """The PUBs and options of a job's ``params``; ``cost`` becomes ``max_execution_time``.

    Raises:
        ApiError: 400 for params the API does not accept or this server's limits refuse.
    """
    try:
        pubs, rest = pubs_from_params(
            program, params, max_pubs=config.max_pubs, max_decompressed_bytes=config.max_decompressed_bytes
        )
    except WireError as exc:
        raise ApiError(400, str(exc)) from None
    for index, pub in enumerate(pubs):
        circuit = pub.circuit
        if circuit.num_qubits > config.max_qubits:
            raise ApiError(
                400,
                f"PUB {index}: the circuit has {circuit.num_qubits} qubits; "
                f"this server takes at most {config.max_qubits}",
            )
        if circuit.size() > config.max_circuit_ops:
            raise ApiError(
                400,
                f"PUB {index}: the circuit has {circuit.size()} operations; "
                f"this server takes at most {config.max_circuit_ops}",
            )
    try:
        return pubs, options_from_params(rest, max_execution_time=cost)
    except WireError as exc:
        raise ApiError(400, str(exc)) from None
