"""Noise models: channels after instructions and readout errors on measurements, as qiskit-aer means them.

aqrt's own small API mirrors ``qiskit_aer.noise``: the error constructors take Aer's parameters
and build the same channels (compared as superoperators in the tests), and a :class:`NoiseModel`
holds them the way Aer's ``NoiseModel`` does:

- a quantum error on an instruction acts right AFTER it, on the instruction's qubits, except on
  ``measure``, where it acts right BEFORE (Aer's C++ noise model loads measure errors with
  ``set_errors_before``);
- an error for specific qubits replaces the all-qubit error of that instruction there; adding an
  error where one exists composes them (the old one first), as Aer does; ideal errors are not added;
- readout errors are 2x2 assignment probabilities ``p[true][measured]`` (Aer's rows), one per
  qubit; a specific qubit's replaces the all-qubit one, and adding one again replaces it (as Aer);
- thermal relaxation on ``delay`` instructions, per qubit, from T1/T2 (what Aer's
  ``NoiseModel.from_backend`` adds with its ``RelaxationNoisePass``).

qiskit-aer is optional (``pip install 'aqrt[noise]'``): only :meth:`NoiseModel.from_aer` and
:meth:`NoiseModel.from_backend` need it, and they say so before doing any work when it is missing.
The channels themselves are :class:`aqrt.engine.noise.Channel` (re-exported here): Kraus
operators, kept as a unitary mixture where the error is one (depolarizing, Pauli errors), so the
trajectory simulator can pick a branch without looking at the state.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .engine.noise import Channel
from .errors import InvalidInputError

__all__ = [
    "NOISE_EXTRA",
    "Channel",
    "NoiseModel",
    "ReadoutError",
    "aer_error_channel",
    "amplitude_damping_error",
    "coherent_unitary_error",
    "depolarizing_error",
    "kraus_error",
    "mixed_unitary_error",
    "pauli_error",
    "phase_amplitude_damping_error",
    "phase_damping_error",
    "reset_error",
    "thermal_relaxation_error",
]

#: How to install qiskit-aer, which reading Aer's and devices' noise models needs.
NOISE_EXTRA = "pip install 'aqrt[noise]'  (in a checkout: pip install -e '.[noise]')"

_ATOL = 1e-8  # Aer's tolerance for probabilities and CPTP checks (qiskit's ATOL_DEFAULT)
_KRAUS_CUTOFF = 1e-14  # Choi eigenvalues below this (relative to the largest) carry no Kraus operator

# Instructions of a known width (Aer checks these too: a 1-qubit error cannot go on a cx).
_ONE_QUBIT = ("u1", "u2", "u3", "u", "p", "r", "rx", "ry", "rz", "id", "x", "y", "z", "h", "s", "sdg", "sx")
_WIDTHS: dict[str, int] = {
    **dict.fromkeys((*_ONE_QUBIT, "sxdg", "t", "tdg", "measure", "reset", "delay"), 1),
    **dict.fromkeys(
        ("swap", "cx", "cy", "cz", "csx", "cp", "cu", "cu1", "cu2", "cu3", "rxx", "ryy", "rzz", "rzx", "ecr"), 2
    ),
    **dict.fromkeys(("ccx", "cswap"), 3),
}


# --------------------------------------------------------------------------------------------
# Error constructors (Aer's parameterisations)
# --------------------------------------------------------------------------------------------


def depolarizing_error(param: float, num_qubits: int = 1) -> Channel:
    """``E(rho) = (1 - param) rho + param Tr[rho] I / 2^n``, as ``qiskit_aer.noise.depolarizing_error``.

    ``0 <= param <= 4^n / (4^n - 1)``; at the upper bound every non-identity Pauli has
    probability ``1 / (4^n - 1)``. Kept as a Pauli mixture: identity with ``1 - param (4^n - 1) / 4^n``,
    every other Pauli with ``param / 4^n``.

    Raises:
        InvalidInputError: ``num_qubits`` not a positive integer, or ``param`` out of range.
    """
    if isinstance(num_qubits, bool) or not isinstance(num_qubits, int | np.integer) or num_qubits < 1:
        raise InvalidInputError(f"depolarizing_error: num_qubits must be a positive integer, got {num_qubits!r}")
    num_terms = 4**num_qubits
    max_param = num_terms / (num_terms - 1)
    param = _real("depolarizing_error", "param", param)
    if param < 0 or param > max_param:
        raise InvalidInputError(f"depolarizing_error: param must be between 0 and {max_param}, got {param}")
    identity = 1 - param / max_param
    labels = ["".join(letters) for letters in itertools.product("IXYZ", repeat=int(num_qubits))]
    probabilities = [identity] + [param / num_terms] * (num_terms - 1)
    return _pauli_mixture(labels, probabilities)


def pauli_error(terms: Iterable[tuple[str, float]]) -> Channel:
    """A Pauli mixture from ``(label, probability)`` pairs, as ``qiskit_aer.noise.pauli_error``.

    Labels are Qiskit's (rightmost letter = qubit 0); probabilities must be >= 0 and sum to 1.

    Raises:
        InvalidInputError: an empty list, a bad label, labels of different lengths, or bad probabilities.
    """
    pairs = list(terms)
    if not pairs:
        raise InvalidInputError("pauli_error: terms must not be empty")
    labels: list[str] = []
    probabilities: list[float] = []
    for pair in pairs:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise InvalidInputError(f"pauli_error: terms must be (label, probability) pairs, got {pair!r}")
        label, probability = pair
        label = str(getattr(label, "to_label", lambda: label)())
        stripped = label.lstrip("-+i")
        if not stripped or set(stripped) - set("IXYZ"):
            raise InvalidInputError(f"pauli_error: {label!r} is not a Pauli label")
        labels.append(stripped)
        probabilities.append(_real("pauli_error", "probability", probability))
    if len({len(label) for label in labels}) != 1:
        raise InvalidInputError("pauli_error: the Pauli labels must all have the same length")
    return _pauli_mixture(labels, probabilities)


def mixed_unitary_error(pairs: Iterable[tuple[Any, float]]) -> Channel:
    """``rho -> sum_j p_j U_j rho U_j^dagger`` from ``(matrix, probability)`` pairs, as Aer's.

    Raises:
        InvalidInputError: an empty list, a matrix that is not unitary or of another size, bad probabilities.
    """
    items = list(pairs)
    if not items:
        raise InvalidInputError("mixed_unitary_error: pairs must not be empty")
    try:
        unitaries = [np.asarray(matrix, dtype=np.complex128) for matrix, _ in items]
        probabilities = [_real("mixed_unitary_error", "probability", p) for _, p in items]
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"mixed_unitary_error: pairs must be (unitary matrix, probability): {exc}") from exc
    _check_probabilities("mixed_unitary_error", probabilities)
    return _checked("mixed_unitary_error", lambda: _simplified_mixture(probabilities, unitaries))


def coherent_unitary_error(unitary: Any) -> Channel:
    """The unitary ``unitary`` applied with certainty, as ``qiskit_aer.noise.coherent_unitary_error``."""
    return mixed_unitary_error([(unitary, 1.0)])


def kraus_error(operators: Sequence[Any]) -> Channel:
    """The channel with Kraus operators ``operators``, as ``qiskit_aer.noise.kraus_error``.

    A set that is a unitary mixture is kept as one; any other is stored in its canonical
    (minimal) Kraus form, which is the same channel.

    Raises:
        InvalidInputError: no operators, operators of different or non power-of-two sizes, not trace preserving.
    """
    if isinstance(operators, np.ndarray) and operators.ndim == 2:
        operators = [operators]
    if not isinstance(operators, Sequence | np.ndarray) or len(operators) == 0:
        raise InvalidInputError("kraus_error: operators must be a non-empty list of matrices")
    try:
        matrices = [np.asarray(op, dtype=np.complex128) for op in operators]
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"kraus_error: operators must be matrices: {exc}") from exc
    return _checked("kraus_error", lambda: _compact(Channel.from_kraus(matrices)))


def reset_error(prob0: float, prob1: float = 0.0) -> Channel:
    """Reset to |0> with ``prob0``, to |1> with ``prob1``, else nothing; as ``qiskit_aer.noise.reset_error``.

    Raises:
        InvalidInputError: probabilities outside [0, 1] or summing to more than 1.
    """
    prob0 = _real("reset_error", "prob0", prob0)
    prob1 = _real("reset_error", "prob1", prob1)
    if prob0 < 0 or prob1 < 0 or prob0 > 1 or prob1 > 1 or prob0 + prob1 > 1 + _ATOL:
        raise InvalidInputError(f"reset_error: invalid reset probabilities prob0={prob0}, prob1={prob1}")
    keep = max(0.0, 1 - prob0 - prob1)
    kraus: list[np.ndarray] = [math.sqrt(keep) * np.eye(2, dtype=np.complex128)]
    for target, weight in ((0, prob0), (1, prob1)):
        for source in (0, 1):
            op = np.zeros((2, 2), dtype=np.complex128)
            op[target, source] = math.sqrt(weight)
            kraus.append(op)
    return _compact(Channel.from_kraus(kraus))


def phase_amplitude_damping_error(
    param_amp: float, param_phase: float, excited_state_population: float = 0.0
) -> Channel:
    """Generalised amplitude damping (``param_amp``) with phase damping (``param_phase``), as Aer's.

    Kraus operators as ``qiskit_aer.noise.phase_amplitude_damping_error`` documents them
    (equilibrium state ``diag(1 - p1, p1)`` with ``p1 = excited_state_population``).

    Raises:
        InvalidInputError: a negative parameter, ``param_amp + param_phase > 1``, or ``p1`` outside [0, 1].
    """
    amp = _real("phase_amplitude_damping_error", "param_amp", param_amp)
    phase = _real("phase_amplitude_damping_error", "param_phase", param_phase)
    p1 = _real("phase_amplitude_damping_error", "excited_state_population", excited_state_population)
    if amp < 0:
        raise InvalidInputError(f"phase_amplitude_damping_error: param_amp must be >= 0, got {amp}")
    if phase < 0:
        raise InvalidInputError(f"phase_amplitude_damping_error: param_phase must be >= 0, got {phase}")
    if amp + phase > 1:
        raise InvalidInputError(
            f"phase_amplitude_damping_error: param_amp + param_phase must be <= 1, got {amp} + {phase}"
        )
    if not 0 <= p1 <= 1:
        raise InvalidInputError(f"phase_amplitude_damping_error: excited_state_population must be in [0, 1], got {p1}")
    c0, c1, rest = math.sqrt(1 - p1), math.sqrt(p1), math.sqrt(1 - amp - phase)
    kraus = [
        c0 * np.array([[1, 0], [0, rest]]),
        c0 * np.array([[0, math.sqrt(amp)], [0, 0]]),
        c0 * np.array([[0, 0], [0, math.sqrt(phase)]]),
        c1 * np.array([[rest, 0], [0, 1]]),
        c1 * np.array([[0, 0], [math.sqrt(amp), 0]]),
        c1 * np.array([[math.sqrt(phase), 0], [0, 0]]),
    ]
    return _compact(Channel.from_kraus([op for op in kraus if np.linalg.norm(op) > 1e-10]))


def amplitude_damping_error(gamma: float, excited_state_population: float = 0.0) -> Channel:
    """Generalised amplitude damping with parameter ``gamma``, as ``qiskit_aer.noise.amplitude_damping_error``."""
    _unit_interval("amplitude_damping_error", "gamma", gamma)
    return phase_amplitude_damping_error(gamma, 0.0, excited_state_population)


def phase_damping_error(gamma: float) -> Channel:
    """Phase damping with parameter ``gamma``, as ``qiskit_aer.noise.phase_damping_error``."""
    _unit_interval("phase_damping_error", "gamma", gamma)
    return phase_amplitude_damping_error(0.0, gamma, 0.0)


def _unit_interval(where: str, name: str, value: Any) -> None:
    number = _real(where, name, value)
    if not 0 <= number <= 1:
        raise InvalidInputError(f"{where}: {name} must be in [0, 1], got {number}")


def thermal_relaxation_error(t1: float, t2: float, time: float, excited_state_population: float = 0.0) -> Channel:
    """Thermal relaxation for ``time`` on a qubit with ``t1``, ``t2``, as ``qiskit_aer.noise.thermal_relaxation_error``.

    Populations relax towards ``diag(1 - p1, p1)`` with probability ``1 - exp(-time / t1)``;
    coherences decay by ``exp(-time / t2)``. Times in any one unit; ``t1``/``t2`` may be ``inf``.
    Aer builds a reset/Z mixture when ``t2 <= t1`` and a Kraus channel otherwise; both are this
    channel, kept here in its canonical Kraus form.

    Raises:
        InvalidInputError: ``t1 <= 0``, ``t2 <= 0``, ``t2 > 2 t1``, ``time < 0``, or ``p1`` outside [0, 1].
    """
    t1, t2, time, p1 = _relaxation_parameters(t1, t2, time, excited_state_population)
    p_reset = 0.0 if math.isinf(t1) else 1 - math.exp(-time / t1)
    coherence = 1.0 if math.isinf(t2) else math.exp(-time / t2)
    p0 = 1 - p1
    # Choi matrix, Qiskit's convention: choi[(i, a), (j, b)] = E(|i><j|)[a, b], index i * 2 + a.
    choi = np.array(
        [
            [1 - p1 * p_reset, 0, 0, coherence],
            [0, p1 * p_reset, 0, 0],
            [0, 0, p0 * p_reset, 0],
            [coherence, 0, 0, 1 - p0 * p_reset],
        ],
        dtype=np.complex128,
    )
    return Channel.from_kraus(_kraus_from_choi(choi, 2))


def _relaxation_parameters(t1: Any, t2: Any, time: Any, p1: Any) -> tuple[float, float, float, float]:
    """``thermal_relaxation_error``'s parameters as floats, checked as Aer checks them."""
    t1 = _real("thermal_relaxation_error", "t1", t1)
    t2 = _real("thermal_relaxation_error", "t2", t2)
    time = _real("thermal_relaxation_error", "time", time)
    p1 = _real("thermal_relaxation_error", "excited_state_population", p1)
    if not 0 <= p1 <= 1:
        raise InvalidInputError(f"thermal_relaxation_error: excited_state_population must be in [0, 1], got {p1}")
    if time < 0:
        raise InvalidInputError(f"thermal_relaxation_error: time must be >= 0, got {time}")
    if t1 <= 0:
        raise InvalidInputError(f"thermal_relaxation_error: t1 must be > 0, got {t1}")
    if t2 <= 0:
        raise InvalidInputError(f"thermal_relaxation_error: t2 must be > 0, got {t2}")
    if t2 - 2 * t1 > 0:
        raise InvalidInputError(f"thermal_relaxation_error: t2 must be <= 2 * t1, got t1={t1}, t2={t2}")
    return t1, t2, time, p1


class ReadoutError:
    """A single qubit's readout error: ``probabilities[true][measured]`` (Aer's rows: ``P(measured | true)``).

    Correlated readout errors on several qubits (Aer's 2^N x 2^N form) are not supported.

    Raises:
        InvalidInputError: not a 2x2 matrix of probabilities whose rows sum to 1.
    """

    __slots__ = ("_probabilities",)

    def __init__(self, probabilities: Any) -> None:
        if isinstance(probabilities, ReadoutError):
            probabilities = probabilities.probabilities
        try:
            matrix = np.array(probabilities, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"ReadoutError: probabilities must be a 2x2 matrix: {exc}") from exc
        if matrix.ndim == 2 and matrix.shape[0] == matrix.shape[1] and matrix.shape[0] > 2:
            raise InvalidInputError(
                f"ReadoutError: probabilities of shape {matrix.shape} describe a correlated readout error on "
                "several qubits, which aqrt does not support; give each qubit its own 2x2 error"
            )
        if matrix.shape != (2, 2):
            raise InvalidInputError(f"ReadoutError: probabilities must be a 2x2 matrix, got shape {matrix.shape}")
        if (matrix < -_ATOL).any() or (matrix > 1 + _ATOL).any() or not np.allclose(matrix.sum(axis=1), 1, atol=_ATOL):
            raise InvalidInputError(
                f"ReadoutError: probabilities rows must be probabilities summing to 1, got {matrix.tolist()}"
            )
        matrix = np.clip(matrix, 0, 1)
        matrix.setflags(write=False)
        self._probabilities = matrix

    @property
    def probabilities(self) -> np.ndarray:
        """``probabilities[true][measured]`` (read-only)."""
        return self._probabilities

    @property
    def is_ideal(self) -> bool:
        return bool(np.allclose(self._probabilities, np.eye(2), atol=1e-12, rtol=0))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ReadoutError):
            return NotImplemented
        return bool(np.allclose(self._probabilities, other._probabilities, atol=_ATOL))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ReadoutError({self._probabilities.tolist()})"


# --------------------------------------------------------------------------------------------
# The noise model
# --------------------------------------------------------------------------------------------


class NoiseModel:
    """Channels after instructions and readout errors on measurements, as Aer's NoiseModel means them.

    Build one with the ``add_*`` methods, or read one from qiskit-aer (:meth:`from_aer`,
    :meth:`from_backend`). The backends ask it what to insert: :meth:`quantum_error` for an
    instruction on physical qubits, :meth:`readout_error` for a measured qubit, :meth:`delay_error`
    for a delay. Look-ups are cheap and safe from several threads once the model is built.
    """

    def __init__(self) -> None:
        self._all_qubit: dict[str, Channel] = {}
        self._local: dict[str, dict[tuple[int, ...], Channel]] = {}
        self._all_qubit_readout: np.ndarray | None = None
        self._local_readout: dict[int, np.ndarray] = {}
        self._relaxation: dict[int, tuple[float, float, float]] = {}
        self._dt: float | None = None
        self._delay_cache: dict[tuple[int, float], Channel | None] = {}
        self._lock = threading.Lock()

    # -- building ------------------------------------------------------------------------------

    def add_quantum_error(
        self, error: Channel, instructions: str | Iterable[str], qubits: Sequence[int] | None = None
    ) -> None:
        """Put ``error`` on ``instructions``: on every qubit tuple (``qubits`` None) or on ``qubits`` only.

        As in Aer: an error for specific qubits replaces the all-qubit one there; adding an error
        where one is already composes the two (the existing one acts first); an ideal error is not
        added. The error's qubit j is the instruction's j-th qubit.

        Raises:
            InvalidInputError: ``error`` is not a Channel, an instruction name is not a string,
                ``qubits`` does not fit the error, or a standard instruction of another width.
        """
        if not isinstance(error, Channel):
            raise InvalidInputError(
                f"add_quantum_error: error must be an aqrt.noise.Channel, got {type(error).__name__} "
                "(an Aer error goes in through NoiseModel.from_aer)"
            )
        names = _names("add_quantum_error", instructions)
        key = None if qubits is None else _qubit_tuple("add_quantum_error", qubits)
        if key is not None and len(key) != error.num_qubits:
            raise InvalidInputError(
                f"add_quantum_error: a {error.num_qubits}-qubit error cannot go on qubits {list(key)}"
            )
        for name in names:
            width = _WIDTHS.get(name)
            if width is not None and width != error.num_qubits:
                raise InvalidInputError(
                    f"add_quantum_error: a {error.num_qubits}-qubit error cannot go on the {width}-qubit "
                    f"instruction {name!r}"
                )
        if _is_identity(error):
            return
        with self._lock:
            for name in names:
                if key is None:
                    table: dict[Any, Channel] = self._all_qubit
                    slot: Any = name
                else:
                    table = self._local.setdefault(name, {})
                    slot = key
                existing = table.get(slot)
                table[slot] = error if existing is None else _compact(existing.then(error))

    def add_readout_error(self, error: ReadoutError | Any, qubits: Sequence[int] | None = None) -> None:
        """Misread measurements: on every qubit (``qubits`` None) or on the one qubit in ``qubits``.

        ``error`` is a :class:`ReadoutError` or its 2x2 ``probabilities[true][measured]``. As in
        Aer, a qubit's own error replaces the all-qubit one, adding again replaces, and an ideal
        error is not added.

        Raises:
            InvalidInputError: a bad error, or more than one qubit (correlated readout errors are not supported).
        """
        readout = error if isinstance(error, ReadoutError) else ReadoutError(error)
        key = None if qubits is None else _qubit_tuple("add_readout_error", qubits)
        if key is not None and len(key) != 1:
            raise InvalidInputError(
                f"add_readout_error: readout errors are per qubit; got qubits {list(key)} (correlated readout "
                "errors are not supported)"
            )
        if readout.is_ideal:
            return
        with self._lock:
            if key is None:
                self._all_qubit_readout = readout.probabilities
            else:
                self._local_readout[key[0]] = readout.probabilities

    def set_delay_relaxation(
        self,
        t1s: Mapping[int, float] | Sequence[float],
        t2s: Mapping[int, float] | Sequence[float],
        excited_state_populations: Mapping[int, float] | Sequence[float] | None = None,
        dt: float | None = None,
    ) -> None:
        """Thermal relaxation on ``delay`` instructions, per qubit (times in seconds; ``dt`` for delays in ``dt``).

        What Aer's ``NoiseModel.from_backend`` adds with its ``RelaxationNoisePass``: a delay of
        duration ``t`` on qubit q gets ``thermal_relaxation_error(t1s[q], t2s[q], t, p1s[q])``; a
        qubit whose T1 and T2 are both ``inf`` (or missing) gets none. Replaces earlier settings.

        Raises:
            InvalidInputError: a value out of range (as :func:`thermal_relaxation_error` checks it).
        """
        t1 = _per_qubit(t1s)
        t2 = _per_qubit(t2s)
        p1 = _per_qubit(excited_state_populations) if excited_state_populations is not None else {}
        table: dict[int, tuple[float, float, float]] = {}
        for qubit in sorted(set(t1) | set(t2)):
            entry = (t1.get(qubit, math.inf), t2.get(qubit, math.inf), p1.get(qubit, 0.0))
            if math.isinf(entry[0]) and math.isinf(entry[1]):
                continue
            _relaxation_parameters(entry[0], entry[1], 0.0, entry[2])
            table[qubit] = entry
        if dt is not None and (not math.isfinite(dt) or dt <= 0):
            raise InvalidInputError(f"set_delay_relaxation: dt must be a positive number of seconds, got {dt}")
        with self._lock:
            self._relaxation = table
            self._dt = dt
            self._delay_cache = {}

    # -- looking up ----------------------------------------------------------------------------

    def quantum_error(self, instruction: str, qubits: tuple[int, ...]) -> Channel | None:
        """The channel ``instruction`` on (physical) ``qubits`` gets, or None.

        The error for exactly these qubits if there is one, else the all-qubit error. (Aer's
        table key for measure and reset is each single qubit; a circuit's measure and reset are
        single-qubit instructions, so this is the same look-up.)
        """
        local = self._local.get(instruction)
        if local is not None:
            channel = local.get(tuple(qubits))
            if channel is not None:
                return channel
        return self._all_qubit.get(instruction)

    def readout_error(self, qubit: int) -> np.ndarray | None:
        """``probabilities[true][measured]`` (2x2, read-only) for measuring ``qubit``, or None if exact."""
        local = self._local_readout.get(qubit)
        return local if local is not None else self._all_qubit_readout

    def delay_error(self, qubit: int, duration: float) -> Channel | None:
        """Thermal relaxation for a delay of ``duration`` seconds on ``qubit``, or None (no relaxation set)."""
        entry = self._relaxation.get(qubit)
        if entry is None:
            return None
        key = (qubit, float(duration))
        channel = self._delay_cache.get(key)
        if channel is None:
            channel = thermal_relaxation_error(entry[0], entry[1], float(duration), entry[2])
            if len(self._delay_cache) < 65536:
                self._delay_cache[key] = channel
        return channel

    @property
    def dt(self) -> float | None:
        """The device's sample time in seconds (converts delays given in ``dt``), or None."""
        return self._dt

    @property
    def has_delay_relaxation(self) -> bool:
        return bool(self._relaxation)

    @property
    def is_ideal(self) -> bool:
        """Whether the model has no noise at all."""
        return not (
            self._all_qubit
            or any(self._local.values())
            or self._all_qubit_readout is not None
            or self._local_readout
            or self._relaxation
        )

    @property
    def noise_instructions(self) -> list[str]:
        """The instructions that have noise, sorted (``measure`` included for readout errors), as Aer's."""
        names = set(self._all_qubit) | {name for name, table in self._local.items() if table}
        if self._all_qubit_readout is not None or self._local_readout:
            names.add("measure")
        return sorted(names)

    @property
    def noise_qubits(self) -> list[int]:
        """The qubits named by specific errors (quantum, readout, delay relaxation), sorted."""
        qubits = {q for table in self._local.values() for key in table for q in key}
        return sorted(qubits | set(self._local_readout) | set(self._relaxation))

    def quantum_error_entries(self) -> list[tuple[str, tuple[int, ...] | None, Channel]]:
        """Every quantum error as ``(instruction, qubits or None for all-qubit, channel)``."""
        entries: list[tuple[str, tuple[int, ...] | None, Channel]] = [
            (name, None, channel) for name, channel in self._all_qubit.items()
        ]
        entries += [(name, key, channel) for name, table in self._local.items() for key, channel in table.items()]
        return entries

    def __repr__(self) -> str:
        parts = [f"on {self.noise_instructions}"]
        local = sum(len(table) for table in self._local.values())
        if local:
            parts.append(f"{local} qubit-specific errors")
        if self._relaxation:
            parts.append(f"delay relaxation on {len(self._relaxation)} qubits")
        return f"<NoiseModel {', '.join(parts)}>" if not self.is_ideal else "<NoiseModel: ideal>"

    # -- from qiskit-aer -----------------------------------------------------------------------

    @classmethod
    def from_aer(cls, model: Any) -> NoiseModel:
        """aqrt's copy of a ``qiskit_aer.noise.NoiseModel``: every error converted, none dropped.

        Quantum errors whose circuits are all unitary gates become unitary mixtures (each
        circuit's gates composed into one unitary on the error's qubits); others (resets, Kraus
        instructions, ...) become the same channel in canonical Kraus form. Readout errors must
        be single-qubit. The delay relaxation of Aer's ``RelaxationNoisePass`` is kept (see
        :meth:`set_delay_relaxation`).

        Reads Aer's tables ``_default_quantum_errors``, ``_local_quantum_errors``,
        ``_default_readout_error``, ``_local_readout_errors`` and ``_custom_noise_passes``
        (private): the public ``to_dict()`` flattens errors into instruction names, losing
        custom gates' matrices, and omits the relaxation pass altogether. The errors themselves are
        read through their public API (``circuits``, ``probabilities``, ``to_quantumchannel``).

        Raises:
            ImportError: qiskit-aer is not installed (the message says how to install it).
            InvalidInputError: not an Aer noise model, a correlated readout error, or a custom noise
                pass other than Aer's thermal relaxation of delays.
        """
        aer = _aer_noise()
        if not isinstance(model, aer.NoiseModel):
            raise InvalidInputError(f"from_aer: expected a qiskit_aer.noise.NoiseModel, got {type(model).__name__}")
        result = cls()
        converted: dict[int, Channel] = {}

        def channel_of(error: Any) -> Channel:
            found = converted.get(id(error))
            if found is None:
                found = converted[id(error)] = aer_error_channel(error)
            return found

        for name, error in model._default_quantum_errors.items():
            result._all_qubit[name] = channel_of(error)
        for name, table in model._local_quantum_errors.items():
            result._local[name] = {tuple(int(q) for q in qubits): channel_of(e) for qubits, e in table.items()}
        if model._default_readout_error is not None:
            result._all_qubit_readout = _aer_readout(model._default_readout_error, None)
        for qubits, error in model._local_readout_errors.items():
            key = tuple(int(q) for q in qubits)
            if len(key) != 1:
                raise InvalidInputError(
                    f"from_aer: the readout error on qubits {list(key)} is correlated across qubits, which aqrt "
                    "does not support; give each qubit its own readout error"
                )
            result._local_readout[key[0]] = _aer_readout(error, key)
        relaxation = aer.RelaxationNoisePass
        for noise_pass in model._custom_noise_passes:
            if not isinstance(noise_pass, relaxation):
                raise InvalidInputError(
                    f"from_aer: the noise model holds a custom noise pass ({type(noise_pass).__name__}) aqrt cannot "
                    "run; only Aer's RelaxationNoisePass on delays is supported"
                )
            result._read_relaxation_pass(noise_pass)
        return result

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NoiseModel:
        """A model from Aer's ``NoiseModel.to_dict()`` form (plain or ``serializable=True``); needs no qiskit-aer.

        The form qiskit-ibm-runtime sends a ``simulator.noise_model`` in (also accepted wrapped as
        ``{"__type__": "NoiseModel", "__value__": ...}``). Error circuits may hold ``pauli``,
        ``unitary``, ``kraus``, ``reset`` and Qiskit's standard gates; complex numbers as numbers
        or ``[re, im]`` pairs. Entries are added as Aer's ``from_dict`` adds them. Like that form,
        it carries no thermal relaxation of delays.

        Raises:
            InvalidInputError: not that form, an unknown instruction, or an invalid error.
        """
        if not isinstance(data, Mapping):
            raise InvalidInputError(f"from_dict: expected a dict, got {type(data).__name__}")
        if "errors" not in data and data.get("__type__") == "NoiseModel" and isinstance(data.get("__value__"), Mapping):
            data = data["__value__"]
        errors = data.get("errors")
        if not isinstance(errors, list):
            raise InvalidInputError("from_dict: expected Aer's NoiseModel.to_dict() form, a dict with an 'errors' list")
        model = cls()
        for position, entry in enumerate(errors):
            where = f"from_dict: errors[{position}]"
            if not isinstance(entry, Mapping):
                raise InvalidInputError(f"{where} is not a dict")
            kind = entry.get("type")
            qubit_lists = entry.get("gate_qubits")
            targets = [None] if qubit_lists is None else [list(q) for q in qubit_lists]
            if kind == "qerror":
                channel = _dict_error_channel(entry, where)
                operations = entry.get("operations") or []
                for qubits in targets:
                    model.add_quantum_error(channel, operations, qubits)
            elif kind == "roerror":
                probabilities = _complex_array(entry.get("probabilities"), where).real
                for qubits in targets:
                    if probabilities.shape != (2, 2):
                        raise InvalidInputError(
                            f"{where}: a readout error of shape {probabilities.shape} on qubits {qubits} is correlated "
                            "across qubits, which aqrt does not support"
                        )
                    model.add_readout_error(probabilities, qubits)
            else:
                raise InvalidInputError(f"{where} has type {kind!r}; expected 'qerror' or 'roerror'")
        return model

    @classmethod
    def from_backend(cls, backend: Any, **kwargs: Any) -> NoiseModel:
        """The device model Qiskit users know: Aer's ``NoiseModel.from_backend(backend, **kwargs)``, converted.

        Gate errors as depolarizing channels followed by thermal relaxation over the gate's
        duration, readout errors from the device's assignment errors, thermal relaxation on delays.
        Building it takes seconds on a 127-qubit device: build it once per backend
        (``aqrt.backends.local.noise_models.device_noise_model`` memoises it).

        Raises:
            ImportError: qiskit-aer is not installed (the message says how to install it).
        """
        aer = _aer_noise()
        return cls.from_aer(aer.NoiseModel.from_backend(backend, **kwargs))

    def _read_relaxation_pass(self, noise_pass: Any) -> None:
        """Aer's ``RelaxationNoisePass``: its private ``_t1s``, ``_t2s``, ``_p1s``, ``_dt`` and ``_ops``."""
        import qiskit.circuit

        ops = tuple(getattr(noise_pass, "_ops", ()))
        if ops != (qiskit.circuit.Delay,):
            raise InvalidInputError(
                f"from_aer: a RelaxationNoisePass on {[op.__name__ for op in ops] or 'every instruction'} is not "
                "supported; only relaxation on delays (what from_backend adds) is"
            )
        t1s = [float(t) for t in noise_pass._t1s]
        t2s = [float(t) for t in noise_pass._t2s]
        p1s = [float(p) for p in noise_pass._p1s]
        dt = noise_pass._dt
        self.set_delay_relaxation(t1s, t2s, p1s, None if dt is None else float(dt))


# --------------------------------------------------------------------------------------------
# Converting Aer's errors
# --------------------------------------------------------------------------------------------


def aer_error_channel(error: Any) -> Channel:
    """The :class:`Channel` of an Aer quantum error (``QuantumError``, ``PauliError``, ``PauliLindbladError``).

    Used by :meth:`NoiseModel.from_aer`; public for the backends that convert a single error.
    Error qubit j is bit j of the channel's matrices, as in Aer (Qiskit's little-endian order).

    Raises:
        InvalidInputError: the error is not a CPTP map (e.g. a Pauli error with negative weights).
    """
    aer = _aer_noise()
    if isinstance(error, aer.PauliLindbladError):
        error = error.to_pauli_error()
    if isinstance(error, aer.PauliError):
        probabilities = [float(p) for p in error.probabilities]
        if min(probabilities) < -_ATOL:
            raise InvalidInputError("from_aer: a PauliError with negative probabilities is not a channel")
        unitaries = [pauli.to_matrix() for pauli in error.paulis]
        return _simplified_mixture(probabilities, unitaries)
    if isinstance(error, aer.QuantumError):
        return _quantum_error_channel(error)
    from qiskit.quantum_info import SuperOp

    return _channel_from_superop(np.asarray(SuperOp(error.to_quantumchannel()).data), error.num_qubits)


def _quantum_error_channel(error: Any) -> Channel:
    num_qubits = int(error.num_qubits)
    probabilities = [float(p) for p in error.probabilities]
    circuits = [
        [
            (instruction.operation, tuple(circuit.find_bit(q).index for q in instruction.qubits))
            for instruction in circuit.data
        ]
        for circuit in error.circuits
    ]
    unitaries: list[np.ndarray] = []
    for steps in circuits:
        unitary = _steps_unitary(steps, num_qubits)
        if unitary is None:
            break
        unitaries.append(unitary)
    else:
        return _simplified_mixture(probabilities, unitaries)
    # Not a unitary mixture: sum the circuits' superoperators (each the product of its
    # instructions'), then take the canonical Kraus form.
    dim = 2**num_qubits
    total = np.zeros((dim * dim, dim * dim), dtype=np.complex128)
    for steps, probability in zip(circuits, probabilities, strict=True):
        total += probability * _steps_superop(steps, num_qubits)
    return _channel_from_superop(total, num_qubits)


# Embedded instruction matrices and superoperators, shared by every error converted (a device's
# errors repeat the same few Pauli, reset and identity instructions). Keys hold the parameters.
_UNITARY_CACHE: dict[Any, np.ndarray | None] = {}
_SUPEROP_CACHE: dict[Any, np.ndarray] = {}
_CACHE_LIMIT = 4096


def _instruction_kraus(operation: Any) -> list[np.ndarray]:
    name = operation.name
    if name == "reset":
        # Each qubit reset: Kraus |0><0|, |0><1|; several qubits: the products of those sets.
        single = [np.array([[1, 0], [0, 0]], dtype=np.complex128), np.array([[0, 1], [0, 0]], dtype=np.complex128)]
        kraus: list[np.ndarray] = [np.eye(1, dtype=np.complex128)]
        for _ in range(operation.num_qubits):
            kraus = [np.kron(s, k) for s in single for k in kraus]
        return kraus
    if name == "kraus":
        return [np.asarray(m, dtype=np.complex128) for m in operation.params]
    matrix = _operation_matrix(operation)
    if matrix is not None:
        return [matrix]
    from qiskit.quantum_info import Kraus

    return [np.asarray(m, dtype=np.complex128) for m in Kraus(operation).data]


def _operation_matrix(operation: Any) -> np.ndarray | None:
    """A unitary instruction's matrix (Qiskit order), or None for a non-unitary one."""
    if operation.name in ("reset", "kraus", "measure", "superop") or operation.num_clbits:
        return None
    try:
        return np.asarray(operation.to_matrix(), dtype=np.complex128)
    except Exception:
        pass
    from qiskit.exceptions import QiskitError
    from qiskit.quantum_info import Operator

    try:
        return np.asarray(Operator(operation).data, dtype=np.complex128)
    except (QiskitError, TypeError, AttributeError):
        return None


def _cache_key(operation: Any, positions: tuple[int, ...], num_qubits: int) -> Any:
    params: list[Any] = []
    for param in operation.params:
        if isinstance(param, str | int | float | complex):
            params.append(param)
        elif isinstance(param, np.ndarray):
            params.append((param.shape, param.astype(np.complex128).tobytes()))
        else:
            return None
    return (operation.name, type(operation).__name__, tuple(params), positions, num_qubits)


def _steps_unitary(steps: list[tuple[Any, tuple[int, ...]]], num_qubits: int) -> np.ndarray | None:
    """The unitary of an error circuit's steps on ``num_qubits`` qubits, or None if one is not unitary."""
    result: np.ndarray | None = None
    for operation, positions in steps:
        key = _cache_key(operation, positions, num_qubits)
        if key is not None and key in _UNITARY_CACHE:
            embedded = _UNITARY_CACHE[key]
        else:
            matrix = _operation_matrix(operation)
            embedded = None if matrix is None else _embed(matrix, positions, num_qubits)
            if key is not None and len(_UNITARY_CACHE) < _CACHE_LIMIT:
                _UNITARY_CACHE[key] = embedded
        if embedded is None:
            return None
        result = embedded if result is None else embedded @ result
    return np.eye(2**num_qubits, dtype=np.complex128) if result is None else result


def _steps_superop(steps: list[tuple[Any, tuple[int, ...]]], num_qubits: int) -> np.ndarray:
    result: np.ndarray | None = None
    for operation, positions in steps:
        if operation.name in ("id", "barrier"):
            continue
        key = _cache_key(operation, positions, num_qubits)
        superop = _SUPEROP_CACHE.get(key) if key is not None else None
        if superop is None:
            kraus = np.array([_embed(k, positions, num_qubits) for k in _instruction_kraus(operation)])
            superop = _superop(kraus)
            if key is not None and len(_SUPEROP_CACHE) < _CACHE_LIMIT:
                _SUPEROP_CACHE[key] = superop
        result = superop if result is None else superop @ result
    dim = 2**num_qubits
    return np.eye(dim * dim, dtype=np.complex128) if result is None else result


def _superop(kraus: np.ndarray) -> np.ndarray:
    """``sum_k conj(K_k) kron K_k`` for a stack of Kraus operators (as ``Channel.superoperator``)."""
    dim = kraus.shape[1]
    return np.einsum("mik,mjl->ijkl", kraus.conj(), kraus).reshape(dim * dim, dim * dim)


def _embed(matrix: np.ndarray, positions: tuple[int, ...], num_qubits: int) -> np.ndarray:
    """``matrix`` on qubits ``positions`` (its bit j acts on qubit ``positions[j]``) as a 2^n matrix."""
    if positions == tuple(range(num_qubits)):
        return matrix
    rest = [q for q in range(num_qubits) if q not in positions]
    full = np.kron(np.eye(2 ** len(rest), dtype=np.complex128), matrix)
    order = list(positions) + rest  # bit b of ``full`` is qubit order[b]
    n = num_qubits
    # Axis a of the reshaped tensor is bit n - 1 - a.
    old_axis = {qubit: n - 1 - bit for bit, qubit in enumerate(order)}
    perm = [old_axis[n - 1 - a] for a in range(n)]
    tensor = full.reshape([2] * (2 * n)).transpose(perm + [p + n for p in perm])
    return tensor.reshape(2**n, 2**n)


def _channel_from_superop(superop: np.ndarray, num_qubits: int) -> Channel:
    dim = 2**num_qubits
    # superop[(a + b d), (i + j d)] = sum_K K[a, i] conj(K[b, j]); choi[(i d + a), (j d + b)] likewise.
    choi = superop.reshape(dim, dim, dim, dim).transpose(3, 1, 2, 0).reshape(dim * dim, dim * dim)
    return _checked("from_aer", lambda: Channel.from_kraus(_kraus_from_choi(choi, dim)))


def _kraus_from_choi(choi: np.ndarray, dim: int) -> list[np.ndarray]:
    """The canonical Kraus operators of a Choi matrix in Qiskit's convention (``choi[(i d + a), (j d + b)]``)."""
    hermitian = (choi + choi.conj().T) / 2
    values, vectors = np.linalg.eigh(hermitian)
    if values.min() < -1e-8 * max(1.0, values.max()):
        raise InvalidInputError("the error is not completely positive (its Choi matrix has a negative eigenvalue)")
    cutoff = _KRAUS_CUTOFF * values.max()
    kraus = [
        math.sqrt(value) * vectors[:, k].reshape(dim, dim).T
        for k, value in sorted(enumerate(values), key=lambda kv: -kv[1])
        if value > cutoff
    ]
    return kraus


def _compact(channel: Channel) -> Channel:
    """The channel with equal unitaries merged (mixtures) or in canonical Kraus form (others)."""
    if channel.probabilities is not None:
        assert channel.unitaries is not None
        return _simplified_mixture(list(channel.probabilities), list(channel.unitaries))
    dim = channel.kraus[0].shape[0]
    if len(channel.kraus) <= 1:
        return channel
    superop = channel.superoperator()
    choi = superop.reshape(dim, dim, dim, dim).transpose(3, 1, 2, 0).reshape(dim * dim, dim * dim)
    return Channel.from_kraus(_kraus_from_choi(choi, dim))


def _simplified_mixture(probabilities: Sequence[float], unitaries: Sequence[np.ndarray]) -> Channel:
    """A unitary mixture with unitaries equal up to a global phase merged and zero weights dropped."""
    merged: dict[bytes, int] = {}
    weights: list[float] = []
    kept: list[np.ndarray] = []
    for probability, unitary in zip(probabilities, unitaries, strict=True):
        if probability == 0:
            continue
        matrix = np.asarray(unitary, dtype=np.complex128)
        flat = matrix.reshape(-1)
        pivot = flat[int(np.argmax(np.abs(flat) > 1e-6))]
        canonical = np.round(matrix * (abs(pivot) / pivot), 9) + 0.0  # + 0.0 folds -0.0 into 0.0
        key = canonical.tobytes() + bytes(str(matrix.shape), "ascii")
        slot = merged.get(key)
        if slot is None:
            merged[key] = len(weights)
            weights.append(float(probability))
            kept.append(matrix)
        else:
            weights[slot] += float(probability)
    if not kept:
        raise InvalidInputError("a mixture needs at least one term with a positive probability")
    order = np.argsort(-np.asarray(weights), kind="stable")
    return Channel.mixture([weights[i] for i in order], [kept[i] for i in order])


def _pauli_mixture(labels: Sequence[str], probabilities: Sequence[float]) -> Channel:
    from qiskit.quantum_info import Pauli

    _check_probabilities("pauli_error", probabilities)
    return _simplified_mixture(probabilities, [Pauli(label).to_matrix() for label in labels])


def _dict_error_channel(entry: Mapping[str, Any], where: str) -> Channel:
    """The channel of a ``qerror`` entry of Aer's ``to_dict()`` form."""
    circuits = entry.get("instructions")
    probabilities = entry.get("probabilities")
    if not isinstance(circuits, list) or not isinstance(probabilities, list) or len(circuits) != len(probabilities):
        raise InvalidInputError(f"{where}: a qerror needs matching 'instructions' and 'probabilities' lists")
    weights = [_real(where, "probability", p) for p in probabilities]
    _check_probabilities(where, weights)
    steps_list = [[_dict_instruction(step, where) for step in circuit] for circuit in circuits]
    num_qubits = max((max(positions) + 1 for steps in steps_list for _, positions in steps if positions), default=1)
    unitaries: list[np.ndarray] = []
    for steps in steps_list:
        unitary = _steps_unitary(steps, num_qubits)
        if unitary is None:
            break
        unitaries.append(unitary)
    else:
        return _simplified_mixture(weights, unitaries)
    dim = 2**num_qubits
    total = np.zeros((dim * dim, dim * dim), dtype=np.complex128)
    for steps, weight in zip(steps_list, weights, strict=True):
        total += weight * _steps_superop(steps, num_qubits)
    return _channel_from_superop(total, num_qubits)


_DICT_OPERATIONS: dict[Any, Any] = {}  # instructions built from Aer's dict form, by their content
_STANDARD_GATES: dict[str, Any] = {}


def _dict_instruction(step: Any, where: str) -> tuple[Any, tuple[int, ...]]:
    """A Qiskit instruction and its qubits from one ``{"name", "qubits", "params"}`` dict."""
    if not isinstance(step, Mapping) or "name" not in step or "qubits" not in step:
        raise InvalidInputError(f"{where}: an error instruction must be a dict with 'name' and 'qubits', got {step!r}")
    name = step["name"]
    try:
        positions = tuple(int(q) for q in step["qubits"])
        params = list(step.get("params") or [])
        if name in ("unitary", "kraus"):
            matrices = [_complex_array(m, where) for m in params]
            key: Any = (name, len(positions), tuple((m.shape, m.tobytes()) for m in matrices))
        else:
            matrices = []
            key = (name, len(positions), tuple(str(p) if name == "pauli" else float(p) for p in params))
        operation = _DICT_OPERATIONS.get(key)
        if operation is None:
            operation = _dict_operation(name, len(positions), params, matrices, where)
            if len(_DICT_OPERATIONS) < _CACHE_LIMIT:
                _DICT_OPERATIONS[key] = operation
        return operation, positions
    except (IndexError, TypeError, ValueError) as exc:
        if isinstance(exc, InvalidInputError):
            raise
        raise InvalidInputError(f"{where}: the error instruction {step!r} is malformed: {exc}") from exc


def _dict_operation(name: str, width: int, params: list[Any], matrices: list[np.ndarray], where: str) -> Any:
    from qiskit.circuit import Instruction, Reset
    from qiskit.circuit.library import PauliGate, UnitaryGate, get_standard_gate_name_mapping

    if name == "reset":
        return Reset()
    if name == "pauli":
        return PauliGate(str(params[0]))
    if name == "unitary":
        return UnitaryGate(matrices[0], check_input=False)
    if name == "kraus":
        return Instruction("kraus", width, 0, matrices)
    if not _STANDARD_GATES:
        _STANDARD_GATES.update(get_standard_gate_name_mapping())
    standard = _STANDARD_GATES.get(name)
    if standard is None or name in ("measure", "delay", "barrier", "reset"):
        raise InvalidInputError(f"{where}: the error instruction {name!r} is not supported")
    return type(standard)(*[float(p) for p in params]) if params else type(standard)()


def _complex_array(value: Any, where: str) -> np.ndarray:
    """A numeric array; ``[re, im]`` pairs (Aer's serializable form) become complex numbers."""
    try:
        array = np.asarray(value)
        if array.dtype == object:
            array = np.asarray(value, dtype=np.complex128)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{where}: expected a numeric matrix, got {value!r}") from exc
    if np.issubdtype(array.dtype, np.complexfloating):
        return array.astype(np.complex128)
    if not np.issubdtype(array.dtype, np.number):
        raise InvalidInputError(f"{where}: expected a numeric matrix, got {value!r}")
    if array.ndim == 3 and array.shape[-1] == 2:
        return (array[..., 0] + 1j * array[..., 1]).astype(np.complex128)
    return array.astype(np.complex128)


def _aer_readout(error: Any, qubits: tuple[int, ...] | None) -> np.ndarray:
    probabilities = np.asarray(error.probabilities, dtype=np.float64)
    if probabilities.shape != (2, 2):
        where = "the all-qubit readout error" if qubits is None else f"the readout error on qubits {list(qubits)}"
        raise InvalidInputError(
            f"from_aer: {where} is correlated across qubits (shape {probabilities.shape}), which aqrt does not "
            "support; give each qubit its own readout error"
        )
    return ReadoutError(probabilities).probabilities


def _is_identity(channel: Channel) -> bool:
    dim = channel.kraus[0].shape[0]
    return bool(np.allclose(channel.superoperator(), np.eye(dim * dim), atol=1e-12))


def _aer_noise() -> Any:
    """``qiskit_aer.noise``, or an ImportError that says how to install it."""
    try:
        import qiskit_aer.noise as aer_noise  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ImportError(
            f"reading qiskit-aer noise models (NoiseModel.from_aer, NoiseModel.from_backend) needs qiskit-aer, an "
            f"optional dependency of aqrt: {NOISE_EXTRA}"
        ) from exc
    return aer_noise


def _checked(where: str, build: Any) -> Channel:
    try:
        result: Channel = build()
    except InvalidInputError:
        raise
    except ValueError as exc:
        raise InvalidInputError(f"{where}: {exc}") from exc
    return result


def _real(where: str, name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{where}: {name} must be a real number, got {value!r}") from exc
    if math.isnan(number):
        raise InvalidInputError(f"{where}: {name} must be a real number, got nan")
    return number


def _check_probabilities(where: str, probabilities: Sequence[float]) -> None:
    if any(p < -_ATOL for p in probabilities):
        raise InvalidInputError(f"{where}: probabilities must be >= 0, got {list(probabilities)}")
    if abs(sum(probabilities) - 1) > _ATOL:
        raise InvalidInputError(f"{where}: probabilities must sum to 1, got {sum(probabilities)}")


def _names(where: str, instructions: str | Iterable[str]) -> list[str]:
    names = [instructions] if isinstance(instructions, str) else list(instructions)
    if not names or not all(isinstance(name, str) and name for name in names):
        raise InvalidInputError(
            f"{where}: instructions must be a name or a non-empty list of names, got {instructions!r}"
        )
    return names


def _qubit_tuple(where: str, qubits: Sequence[int]) -> tuple[int, ...]:
    try:
        key = tuple(int(q) for q in qubits)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{where}: qubits must be a sequence of qubit indices, got {qubits!r}") from exc
    if not key or any(q < 0 for q in key) or len(set(key)) != len(key):
        raise InvalidInputError(f"{where}: qubits must be distinct non-negative indices, got {list(qubits)}")
    return key


def _per_qubit(values: Mapping[int, float] | Sequence[float]) -> dict[int, float]:
    items = values.items() if isinstance(values, Mapping) else enumerate(values)
    table = {}
    for qubit, value in items:
        table[int(qubit)] = math.inf if value is None else _real("set_delay_relaxation", f"qubit {qubit}", value)
    return table
