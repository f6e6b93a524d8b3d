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

from ..options import DEFAULT_SHOTS
from ._blobs import DEFAULT_MAX_DECOMPRESSED_BYTES, clean_message
from ._codec import decode_within, to_jsonable
from ._errors import WireError
from .limits import Admission, LimitExceeded, PayloadLimits, check_pub, check_raw_pub

__all__ = ["Program", "pubs_from_wire", "pubs_to_wire", "pubs_within"]

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
    limits: PayloadLimits | None = None,
    default_shots: int | None = None,
) -> list[EstimatorPub] | list[SamplerPub]:
    """Coerced ``EstimatorPub``/``SamplerPub`` objects from ``params["pubs"]`` JSON data.

    Args:
        program: ``"estimator"`` or ``"sampler"``.
        data: the parsed JSON list (not yet decoded: tags are read here).
        max_decompressed_bytes: as in :func:`aqrt.wire.decode`, for all the PUBs together.
        limits: what the PUBs may declare (a server's admission, :mod:`aqrt.wire.limits`); its
            ``max_decompressed_bytes`` then replaces the argument's.
        default_shots: the shots of sampler PUBs that set none, for ``limits``' checks
            (default: :data:`~aqrt.options.DEFAULT_SHOTS`).

    Raises:
        WireError: malformed data, or a PUB that Qiskit's coercion refuses (its index named).
        LimitExceeded: a PUB declares more than ``limits`` allow (``"PUB 3: ..."``).
    """
    if limits is None:
        limits = PayloadLimits(max_decompressed_bytes=max_decompressed_bytes)
    return pubs_within(program, data, Admission(limits), default_shots=default_shots)


def pubs_within(
    program: Program, data: Any, admission: Admission, *, default_shots: int | None = None
) -> list[EstimatorPub] | list[SamplerPub]:
    """:func:`pubs_from_wire` drawing on ``admission``, shared with the rest of the document.

    Each PUB is checked as it stands in the JSON (:func:`~aqrt.wire.limits.check_raw_pub`),
    decoded (its QPY checked before it is read), coerced, then checked again as coerced
    (:func:`~aqrt.wire.limits.check_pub`), before the next one is touched.
    """
    coerce = _coercer(program)
    if type(data) is not list:
        raise WireError(f"params['pubs'] must be a list, not {type(data).__name__}")
    shots = DEFAULT_SHOTS if default_shots is None else default_shots
    pubs = []
    for index, raw in enumerate(data):
        try:
            check_raw_pub(program, raw, admission)
            item = decode_within(raw, admission)
        except LimitExceeded as exc:
            raise LimitExceeded(f"PUB {index}: {exc.problem}") from None
        except WireError as exc:
            exc.at(index)
            raise
        if type(item) is list and item and isinstance(item[0], QuantumCircuit):
            item = tuple(item)
        elif not (program == "sampler" and isinstance(item, QuantumCircuit)):
            shape = "[circuit, observables, parameter_values, precision]"
            if program == "sampler":
                shape = "[circuit, parameter_values, shots] or a circuit"
            raise WireError(f"PUB {index}: expected {shape}, got {type(item).__name__}")
        try:
            pub = coerce(item)
        except Exception as exc:  # Qiskit's coercion and validation of untrusted values
            raise WireError(f"PUB {index}: {clean_message(exc)}") from exc
        try:
            check_pub(program, pub, admission, default_shots=shots)
        except LimitExceeded as exc:
            raise LimitExceeded(f"PUB {index}: {exc.problem}") from None
        pubs.append(pub)
    return pubs


def _coercer(program: str) -> Callable[[Any], Any]:
    try:
        return _COERCE[program]
    except (KeyError, TypeError):
        raise WireError(f"program must be 'estimator' or 'sampler', not {program!r}") from None
