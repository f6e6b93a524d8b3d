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

from ..errors import InvalidOptionsError
from ..options import Options, SamplerOptions
from ..wire import WireError
from ..wire.runtime_api import options_from_params, pubs_from_params
from .config import ServerConfig
from .errors import ApiError

__all__ = ["EXECUTOR_SEED_OPTION", "decode_params", "decode_params_sync"]

#: The ``experimental`` option of an ``executor`` job that seeds its run (aqrt's own name).
EXECUTOR_SEED_OPTION = "aqrt_seed"


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
    if program == "executor":
        return _decode_executor_params(params, cost, config, widest_backend)
    try:
        pubs, rest = pubs_from_params(program, params, limits=config.payload_limits(widest_backend=widest_backend))
        return pubs, options_from_params(rest, max_execution_time=cost, program=program)
    except WireError as exc:
        raise ApiError(400, str(exc)) from None


def _decode_executor_params(
    params: Any, cost: int | None, config: ServerConfig, widest_backend: int
) -> tuple[list[Any], Options]:
    """An ``executor`` job's params (qiskit-ibm-runtime's schema v2.0): its ``QuantumProgram``
    as the job's one PUB (a :class:`~aqrt.backends.local.executor_program.QuantumProgramPub`),
    and options holding ``cost`` as ``max_execution_time`` and the seed of every draw, from
    ``experimental["aqrt_seed"]`` (aqrt's name: IBM's params carry no seed, and the client's
    ``simulator.seed_simulator`` stays on the client; the executor-based primitives send their
    ``experimental`` options on, so ``Sampler(options={"experimental": {"aqrt_seed": 7}})``
    makes a run reproducible). Without it the run draws fresh entropy. The other
    ``ExecutorOptions`` (``init_qubits``, ``rep_delay``) mean nothing to a simulator.

    Raises:
        ApiError: 400 for params the schema or this server's limits refuse, a ``meas_level``
            other than ``"classified"`` (a simulator has no IQ data), or a server without the
            ``devices`` extra (qiskit-ibm-runtime, samplomatic).
    """
    try:
        from ..backends.local.executor_program import QuantumProgramPub, check_meas_level
        from ..wire.quantum_program import decode_executor_params
    except ImportError as exc:  # pragma: no cover - the devices extra is installed with the server's tests
        raise ApiError(400, f"this server cannot run the executor program: {exc}") from None
    try:
        decoded = decode_executor_params(params, limits=config.payload_limits(widest_backend=widest_backend))
        check_meas_level(decoded.program)
    except ImportError as exc:
        raise ApiError(400, f"this server cannot run the executor program: {exc}") from None
    except (WireError, InvalidOptionsError) as exc:
        raise ApiError(400, str(exc)) from None
    experimental = decoded.options.experimental or {}
    seed = experimental.get(EXECUTOR_SEED_OPTION)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ApiError(400, f"options.experimental[{EXECUTOR_SEED_OPTION!r}] must be an int >= 0, got {seed!r}")
    return [QuantumProgramPub(decoded.program)], SamplerOptions(max_execution_time=cost, seed=seed)
