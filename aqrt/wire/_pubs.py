"""PUBs as a Runtime job's ``params["pubs"]``, as qiskit-ibm-runtime's EstimatorV2/SamplerV2 send.

An estimator PUB travels as ``[circuit, observables, parameter_values, precision]``: the circuit
tagged as QPY, the observables as nested lists of ``{label: coeff}`` objects, the parameter
values as one tagged ``ndarray`` whose last axis follows ``circuit.parameters``, the precision a
number or null. A sampler PUB travels as ``[circuit, parameter_values, shots]``. Reading goes
back through Qiskit's own ``EstimatorPub.coerce`` / ``SamplerPub.coerce``, which validate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

from qiskit.circuit import QuantumCircuit
from qiskit.primitives.containers import EstimatorPub, SamplerPub
from qiskit.primitives.containers.estimator_pub import EstimatorPubLike
from qiskit.primitives.containers.sampler_pub import SamplerPubLike

from ._blobs import DEFAULT_MAX_DECOMPRESSED_BYTES, clean_message
from ._codec import from_jsonable, to_jsonable
from ._errors import WireError

__all__ = ["Program", "pubs_from_wire", "pubs_to_wire"]

#: The Runtime program ids of the V2 primitives.
Program = Literal["estimator", "sampler"]

_COERCE: dict[str, Callable[[Any], Any]] = {
    "estimator": EstimatorPub.coerce,
    "sampler": SamplerPub.coerce,
}


def pubs_to_wire(program: Program, pubs: Iterable[EstimatorPubLike] | Iterable[SamplerPubLike]) -> list[Any]:
    """The JSON data of ``params["pubs"]`` for ``program``, from PUBs or PUB-likes.

    Example::

        params = {"pubs": pubs_to_wire("estimator", [(circuit, "ZZ", [[0.1], [0.2]])])}

    Raises:
        WireError: an unknown program, or a PUB that does not coerce (the message names its
            index) or cannot be encoded.
    """
    coerce = _coercer(program)
    coerced = []
    for index, pub in enumerate(pubs):
        try:
            coerced.append(coerce(pub))
        except (ValueError, TypeError) as exc:
            raise WireError(f"PUB {index}: {exc}") from exc
    return to_jsonable(coerced)


def pubs_from_wire(
    program: Program,
    data: Any,
    *,
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
) -> list[EstimatorPub] | list[SamplerPub]:
    """Coerced ``EstimatorPub``/``SamplerPub`` objects from ``params["pubs"]`` JSON data.

    Args:
        program: ``"estimator"`` or ``"sampler"``.
        data: the parsed JSON list (not yet decoded: tags are read here).
        max_decompressed_bytes: as in :func:`aqrt.wire.decode`, for all the PUBs together.

    Raises:
        WireError: malformed data, or a PUB that Qiskit's coercion refuses (its index named).
    """
    coerce = _coercer(program)
    if type(data) is not list:
        raise WireError(f"params['pubs'] must be a list, not {type(data).__name__}")
    pubs = []
    decoded = from_jsonable(data, max_decompressed_bytes=max_decompressed_bytes)
    for index, item in enumerate(decoded):
        if type(item) is list and item and isinstance(item[0], QuantumCircuit):
            item = tuple(item)
        elif not (program == "sampler" and isinstance(item, QuantumCircuit)):
            shape = "[circuit, observables, parameter_values, precision]"
            if program == "sampler":
                shape = "[circuit, parameter_values, shots] or a circuit"
            raise WireError(f"PUB {index}: expected {shape}, got {type(item).__name__}")
        try:
            pubs.append(coerce(item))
        except Exception as exc:  # Qiskit's coercion and validation of untrusted values
            raise WireError(f"PUB {index}: {clean_message(exc)}") from exc
    return pubs


def _coercer(program: str) -> Callable[[Any], Any]:
    try:
        return _COERCE[program]
    except (KeyError, TypeError):
        raise WireError(f"program must be 'estimator' or 'sampler', not {program!r}") from None
