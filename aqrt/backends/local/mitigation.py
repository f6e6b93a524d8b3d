"""Error mitigation for the noisy Estimator, as IBM's resilience levels define it (issue #11).

- Level 0: nothing. Level 1: TREX (measurement twirling and readout-error extinction).
  Level 2: TREX, ZNE by 2-qubit gate folding, and gate twirling. The switches of the options
  tree (``resilience.measure_mitigation``, ``resilience.zne_mitigation``, ``resilience.zne.*``,
  ``twirling.*``) override the level, as on IBM.
- The noisy backend is a :class:`NoisyEvaluator` callback (exact density matrix or trajectories);
  mitigation only transforms circuits and post-processes the values it returns.
- Cost: ``evaluate`` is called once per noise factor (1 without ZNE) times gate-twirl
  randomization (1 without gate twirling), plus one TREX calibration on an empty circuit; each call
  carries every binding and every distinct Pauli term of the PUB. Without gate twirling the
  measurement twirls of a call are passed as their mean sign per qubit; with it, each
  randomization gets its own mask (signs +-1), as IBM pairs them. The same masks serve every
  noise factor (IBM draws them per circuit), so the finite-twirl residual of the circuits'
  readout is common to all factors rather than independent noise for the fit to amplify. (The
  larger residual, the calibration's finite twirl average, is a common factor either way: on the
  tests' GHZ-4 model level 1 and level 2 vary by about +-0.02 over seeds for that reason.)
- Every Pauli term of the observables is mitigated on its own (IBM's per-term, "heterogeneous"
  fits) and the observables are recombined from the terms; the identity term is left exact.

Where aqrt differs from IBM (all because the evaluator is exact or statistical, not shots):

- ``twirling.num_randomizations`` / ``measure_noise_learning.num_randomizations`` ``"auto"``
  means 32; ``shots_per_randomization`` is reported, not used (no shots are drawn).
- ``precision > 0`` adds Gaussian noise of that size to every raw term value before mitigation
  (split over the twirl randomizations as shots would be), so mitigation amplifies it as it
  would amplify shot noise. ``stds`` are propagated errors (the evaluator's and this noise), not
  the spread over twirls, so exact input gives ``stds == 0``; ``ensemble_standard_error`` and
  ``ensemble_stds_noise_factors`` equal ``stds`` and ``stds_noise_factors``.
- TREX always twirls the measurements it mitigates (TREX is defined on twirled readout), even
  with ``twirling.enable_measure = False``.
- PEC (``resilience.pec_mitigation = True``) and the ``"pea"`` amplifier are refused with
  :class:`~aqrt.errors.InvalidOptionsError` rather than silently not applied.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from qiskit.circuit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from ...errors import InvalidOptionsError
from .twirling import measurement_twirl_signs, twirled_circuit
from .zne import AMPLIFIERS, EXTRAPOLATORS, extrapolate, fold_two_qubit_gates, required_noise_factors

__all__ = ["Mitigated", "NoisyEvaluator", "ResilienceSettings", "mitigated_values"]

DEFAULT_NOISE_FACTORS = (1.0, 3.0, 5.0)
DEFAULT_EXTRAPOLATORS = ("exponential", "linear")
DEFAULT_NUM_RANDOMIZATIONS = 32
TWIRLING_STRATEGIES = ("active", "active-circuit", "active-accum", "all")


class NoisyEvaluator(Protocol):
    """The backend's noisy expectation values of ``circuit`` (readout errors included).

    Returns ``(values, stds)``, each ``(bindings, len(observables))`` float64, ``stds`` 0.0 when
    exact. ``values`` has one row per binding, columns in ``names`` order. ``readout_twirl_signs``
    is, per circuit qubit, the mean of ``(-1)**flip`` over the measurement twirls used (``None``:
    no measurement twirling; 0: perfect twirling).
    """

    def __call__(
        self,
        circuit: QuantumCircuit,
        observables: Sequence[SparsePauliOp],
        values: np.ndarray,
        names: Sequence[str],
        readout_twirl_signs: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]: ...


def _option(options: object, path: str) -> Any:
    """The option at dotted ``path`` of ``options`` (attributes or mappings), ``None`` when it is
    missing or unset. The one place that knows how the options tree is shaped."""
    node: Any = options
    for part in path.split("."):
        if node is None:
            return None
        node = node.get(part) if isinstance(node, Mapping) else getattr(node, part, None)
    if node is None or type(node).__name__ == "UnsetType":
        return None
    return node


def _randomizations(value: Any, field: str) -> int:
    if value is None or value == "auto":
        return DEFAULT_NUM_RANDOMIZATIONS
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidOptionsError(f"{field}={value!r}: expected an int >= 1 or 'auto'")
    return value


@dataclasses.dataclass(frozen=True, kw_only=True)
class ResilienceSettings:
    """Resolved error-mitigation switches of one Estimator job.

    Attributes:
        level: the resilience level the switches started from (0, 1, 2).
        measure_mitigation: TREX.
        zne_mitigation: zero-noise extrapolation.
        noise_factors / extrapolators / extrapolated_noise_factors / amplifier: ``resilience.zne.*``
            (``extrapolated_noise_factors`` ``None`` means ``(0, *noise_factors)``).
        gate_twirling / measure_twirling: ``twirling.enable_gates`` / ``twirling.enable_measure``.
        num_randomizations / shots_per_randomization / strategy: ``twirling.*`` (``None`` shots is
            ``"auto"``).
        measure_num_randomizations: ``resilience.measure_noise_learning.num_randomizations``.

    Raises:
        InvalidOptionsError: for values IBM refuses, or PEC / PEA (not supported here).
    """

    level: int = 0
    measure_mitigation: bool = False
    zne_mitigation: bool = False
    pec_mitigation: bool = False
    noise_factors: tuple[float, ...] = DEFAULT_NOISE_FACTORS
    extrapolators: tuple[str, ...] = DEFAULT_EXTRAPOLATORS
    extrapolated_noise_factors: tuple[float, ...] | None = None
    amplifier: str = "gate_folding"
    gate_twirling: bool = False
    measure_twirling: bool = False
    num_randomizations: int = DEFAULT_NUM_RANDOMIZATIONS
    shots_per_randomization: int | None = None
    strategy: str = "active-accum"
    measure_num_randomizations: int = DEFAULT_NUM_RANDOMIZATIONS

    def __post_init__(self) -> None:
        if self.level not in (0, 1, 2):
            raise InvalidOptionsError(f"resilience_level={self.level!r}: expected 0, 1 or 2")
        if self.pec_mitigation:
            raise InvalidOptionsError(
                "resilience.pec_mitigation=True: probabilistic error cancellation is not supported "
                "by aqrt's local backends; use zne_mitigation or measure_mitigation"
            )
        if self.amplifier not in AMPLIFIERS:
            raise InvalidOptionsError(
                f"resilience.zne.amplifier={self.amplifier!r}: expected one of {', '.join(AMPLIFIERS)}"
                " ('pea' is not supported by aqrt's local backends)"
            )
        if not self.noise_factors or any(not factor >= 1 for factor in self.noise_factors):
            raise InvalidOptionsError(
                f"resilience.zne.noise_factors={self.noise_factors!r}: noise factors must all be >= 1"
            )
        if not self.extrapolators:
            raise InvalidOptionsError("resilience.zne.extrapolator: at least one extrapolator is needed")
        for name in self.extrapolators:
            if name not in EXTRAPOLATORS:
                raise InvalidOptionsError(
                    f"resilience.zne.extrapolator={name!r}: expected one of {', '.join(EXTRAPOLATORS)}"
                )
            if len(self.noise_factors) < required_noise_factors(name):
                raise InvalidOptionsError(
                    f"resilience.zne.extrapolator={name!r} requires at least "
                    f"{required_noise_factors(name)} noise_factors, got {len(self.noise_factors)}"
                )
        if self.strategy not in TWIRLING_STRATEGIES:
            raise InvalidOptionsError(
                f"twirling.strategy={self.strategy!r}: expected one of {', '.join(TWIRLING_STRATEGIES)}"
            )
        for field in ("num_randomizations", "measure_num_randomizations"):
            count = getattr(self, field)
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise InvalidOptionsError(f"{field}={count!r}: expected an int >= 1")

    @classmethod
    def from_options(cls, options: object, default_level: int) -> ResilienceSettings:
        """Settings from an options tree: the level (``default_level`` when unset) decides every
        switch left unset, as IBM's resilience-level table does for the Estimator."""
        level = _option(options, "resilience_level")
        level = default_level if level is None else level
        if isinstance(level, bool) or not isinstance(level, int):
            raise InvalidOptionsError(f"resilience_level={level!r}: expected 0, 1 or 2")

        def switch(path: str, by_level: bool) -> bool:
            value = _option(options, path)
            return by_level if value is None else bool(value)

        noise_factors = _option(options, "resilience.zne.noise_factors")
        extrapolator = _option(options, "resilience.zne.extrapolator")
        if isinstance(extrapolator, str):
            extrapolator = (extrapolator,)
        points = _option(options, "resilience.zne.extrapolated_noise_factors")
        shots = _option(options, "twirling.shots_per_randomization")
        return cls(
            level=level,
            measure_mitigation=switch("resilience.measure_mitigation", level >= 1),
            zne_mitigation=switch("resilience.zne_mitigation", level >= 2),
            pec_mitigation=switch("resilience.pec_mitigation", False),
            noise_factors=DEFAULT_NOISE_FACTORS
            if noise_factors is None
            else tuple(float(factor) for factor in noise_factors),
            extrapolators=DEFAULT_EXTRAPOLATORS if extrapolator is None else tuple(extrapolator),
            extrapolated_noise_factors=None if points is None else tuple(float(point) for point in points),
            amplifier=_option(options, "resilience.zne.amplifier") or "gate_folding",
            gate_twirling=switch("twirling.enable_gates", level >= 2),
            measure_twirling=switch("twirling.enable_measure", level >= 1),
            num_randomizations=_randomizations(
                _option(options, "twirling.num_randomizations"), "twirling.num_randomizations"
            ),
            shots_per_randomization=None if shots is None or shots == "auto" else int(shots),
            strategy=_option(options, "twirling.strategy") or "active-accum",
            measure_num_randomizations=_randomizations(
                _option(options, "resilience.measure_noise_learning.num_randomizations"),
                "resilience.measure_noise_learning.num_randomizations",
            ),
        )

    @property
    def applies_anything(self) -> bool:
        """Whether any mitigation or twirling is switched on."""
        return self.measure_mitigation or self.zne_mitigation or self.gate_twirling or self.measure_twirling

    @property
    def evaluation_points(self) -> tuple[float, ...]:
        """Where ``evs_extrapolated`` evaluates every fit (IBM's default ``[0, *noise_factors]``)."""
        if self.extrapolated_noise_factors is not None:
            return self.extrapolated_noise_factors
        return (0.0, *self.noise_factors)

    def metadata(self) -> dict[str, Any]:
        """IBM-shaped job metadata: ``{"resilience": {...}, "twirling": {...}}`` (the ``zne`` and
        ``measure_noise_learning`` entries only where those techniques are on, as IBM reports)."""
        resilience: dict[str, Any] = {
            "measure_mitigation": self.measure_mitigation,
            "zne_mitigation": self.zne_mitigation,
            "pec_mitigation": self.pec_mitigation,
        }
        if self.measure_mitigation:
            resilience["measure_noise_learning"] = {
                "num_randomizations": self.measure_num_randomizations,
                "shots_per_randomization": "auto",
            }
        if self.zne_mitigation:
            resilience["zne"] = {
                "amplifier": self.amplifier,
                "noise_factors": list(self.noise_factors),
                "extrapolator": list(self.extrapolators),
                "extrapolated_noise_factors": list(self.evaluation_points),
            }
        twirling = {
            "enable_gates": self.gate_twirling,
            "enable_measure": self.measure_twirling,
            "num_randomizations": self.num_randomizations,
            "shots_per_randomization": "auto" if self.shots_per_randomization is None else self.shots_per_randomization,
            "strategy": self.strategy,
        }
        return {"resilience": resilience, "twirling": twirling}


@dataclasses.dataclass
class Mitigated:
    """Mitigated values of one PUB.

    Attributes:
        evs / stds: ``(bindings, observables)``.
        data: IBM's extra data fields, leading axes ``(bindings, observables)``:
            ``ensemble_standard_error``; with ZNE ``evs_noise_factors``, ``stds_noise_factors``,
            ``ensemble_stds_noise_factors`` (``..., noise_factors``) and ``evs_extrapolated``,
            ``stds_extrapolated`` (``..., extrapolators, evaluation points``).
        metadata: the PUB's metadata; with ZNE ``{"resilience": {"zne": {"extrapolators": ...}}}``,
            the extrapolator selected per value (``"multiple"`` where terms differ), as IBM's.
    """

    evs: np.ndarray
    stds: np.ndarray
    data: dict[str, np.ndarray]
    metadata: dict[str, Any]


@dataclasses.dataclass
class _Terms:
    """The observables split into distinct non-identity Pauli terms."""

    labels: list[str]
    weights: np.ndarray  # (observables, terms): real coefficients
    constants: np.ndarray  # (observables,): identity coefficients

    @classmethod
    def of(cls, observables: Sequence[SparsePauliOp], num_qubits: int) -> _Terms:
        index: dict[str, int] = {}
        rows: list[dict[int, float]] = []
        constants = np.zeros(len(observables))
        for position, observable in enumerate(observables):
            if observable.num_qubits != num_qubits:
                raise ValueError(
                    f"observable {position} acts on {observable.num_qubits} qubits, the circuit has {num_qubits}"
                )
            row: dict[int, float] = {}
            for label, coefficient in observable.to_list():
                weight = float(np.real(coefficient))
                if set(label) <= {"I"}:
                    constants[position] += weight
                    continue
                column = index.setdefault(label, len(index))
                row[column] = row.get(column, 0.0) + weight
            rows.append(row)
        weights = np.zeros((len(observables), len(index)))
        for position, row in enumerate(rows):
            for column, weight in row.items():
                weights[position, column] = weight
        return cls(list(index), weights, constants)

    def combine(self, values: np.ndarray, errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Observable values and errors from term values ``(bindings, terms, *rest)``."""
        combined = np.einsum("ot,bt...->bo...", self.weights, values)
        combined += self.constants.reshape((1, -1) + (1,) * (values.ndim - 2))
        variance = np.einsum("ot,bt...->bo...", self.weights**2, errors**2)
        return combined, np.sqrt(variance)


def _noisy(
    values: np.ndarray, errors: np.ndarray, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    if noise <= 0:
        return values, errors
    return values + rng.normal(0.0, noise, size=values.shape), np.sqrt(errors**2 + noise**2)


def _evaluate(
    evaluate: NoisyEvaluator,
    circuit: QuantumCircuit,
    operators: Sequence[SparsePauliOp],
    values: np.ndarray,
    names: Sequence[str],
    signs: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    result, errors = evaluate(circuit, operators, values, names, signs)
    shape = (values.shape[0], len(operators))
    result = np.asarray(result, dtype=np.float64).reshape(shape)
    errors = np.asarray(errors, dtype=np.float64).reshape(shape)
    return result, errors


def _raw_term_values(
    circuit: QuantumCircuit,
    operators: Sequence[SparsePauliOp],
    values: np.ndarray,
    names: Sequence[str],
    settings: ResilienceSettings,
    evaluate: NoisyEvaluator,
    rng: np.random.Generator,
    precision: float,
    masks: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Noisy term values (twirled as the settings say), averaged over the randomizations;
    ``masks`` are the measurement twirls (``None``: not twirled)."""
    count = settings.num_randomizations
    if not settings.gate_twirling:
        signs = None if masks is None else masks.mean(axis=0)
        result, errors = _evaluate(evaluate, circuit, operators, values, names, signs)
        return _noisy(result, errors, precision, rng)
    totals = np.zeros((values.shape[0], len(operators)))
    variances = np.zeros_like(totals)
    for randomization in range(count):
        variant = twirled_circuit(circuit, rng)
        signs = None if masks is None else masks[randomization]
        result, errors = _evaluate(evaluate, variant, operators, values, names, signs)
        result, errors = _noisy(result, errors, precision * math.sqrt(count), rng)
        totals += result
        variances += errors**2
    return totals / count, np.sqrt(variances) / count


def _readout_calibration(
    labels: Sequence[str],
    num_qubits: int,
    settings: ResilienceSettings,
    evaluate: NoisyEvaluator,
    rng: np.random.Generator,
    precision: float,
) -> tuple[np.ndarray, np.ndarray]:
    """TREX calibration per term: the twirled-readout value of ``Z`` on the term's support,
    measured on ``|0...0>`` (an empty circuit on the same qubits), with its own twirls."""
    supports = ["".join("I" if letter == "I" else "Z" for letter in label) for label in labels]
    distinct = list(dict.fromkeys(supports))
    masks = measurement_twirl_signs(num_qubits, settings.measure_num_randomizations, rng)
    result, errors = _evaluate(
        evaluate,
        QuantumCircuit(num_qubits),
        [SparsePauliOp(support) for support in distinct],
        np.zeros((1, 0)),
        [],
        masks.mean(axis=0),
    )
    result, errors = _noisy(result, errors, precision, rng)
    position = {support: column for column, support in enumerate(distinct)}
    columns = [position[support] for support in supports]
    return result[0, columns], errors[0, columns]


def mitigated_values(
    circuit: QuantumCircuit,
    observables: Sequence[SparsePauliOp],
    values: np.ndarray,
    names: Sequence[str],
    settings: ResilienceSettings,
    evaluate: NoisyEvaluator,
    rng: np.random.Generator,
    precision: float,
) -> Mitigated:
    """Expectation values of ``observables`` on ``circuit`` (one row of ``values`` per binding,
    columns in ``names`` order), with the error mitigation ``settings`` asks for applied to the
    noisy values ``evaluate`` returns.

    Raises:
        ValueError: for an observable not on the circuit's qubits or ``values`` not 2-d.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(names):
        raise ValueError(f"values must be (bindings, {len(names)}), got shape {values.shape}")
    terms = _Terms.of(observables, circuit.num_qubits)
    operators = [SparsePauliOp(label) for label in terms.labels]
    factors = settings.noise_factors if settings.zne_mitigation else (1.0,)
    bindings = values.shape[0]
    per_factor = np.zeros((len(factors), bindings, len(operators)))
    per_factor_errors = np.zeros_like(per_factor)
    masks = None
    if settings.measure_twirling or settings.measure_mitigation:
        masks = measurement_twirl_signs(circuit.num_qubits, settings.num_randomizations, rng)
    if operators:
        for position, factor in enumerate(factors):
            amplified = circuit
            if settings.zne_mitigation and factor != 1.0:
                amplified = fold_two_qubit_gates(circuit, factor, settings.amplifier, rng)
            per_factor[position], per_factor_errors[position] = _raw_term_values(
                amplified, operators, values, names, settings, evaluate, rng, precision, masks
            )
        if settings.measure_mitigation:
            calibration, calibration_errors = _readout_calibration(
                terms.labels, circuit.num_qubits, settings, evaluate, rng, precision
            )
            per_factor_errors = np.sqrt(
                (per_factor_errors / calibration) ** 2 + (per_factor * calibration_errors / calibration**2) ** 2
            )
            per_factor = per_factor / calibration
    data: dict[str, np.ndarray] = {}
    metadata: dict[str, Any] = {}
    if not settings.zne_mitigation:
        evs, stds = terms.combine(per_factor[0], per_factor_errors[0])
        if settings.applies_anything:
            data["ensemble_standard_error"] = stds.copy()
        return Mitigated(evs, stds, data, metadata)

    fit = extrapolate(
        factors,
        np.moveaxis(per_factor, 0, -1),
        np.moveaxis(per_factor_errors, 0, -1),
        settings.extrapolators,
        settings.evaluation_points,
    )
    zero_values, zero_errors, selected = fit.value, fit.error, fit.selected
    fitted, fitted_errors = fit.values, fit.errors
    evs, stds = terms.combine(zero_values, zero_errors)
    by_factor, by_factor_errors = terms.combine(np.moveaxis(per_factor, 0, -1), np.moveaxis(per_factor_errors, 0, -1))
    extrapolated, extrapolated_errors = terms.combine(fitted, fitted_errors)
    data = {
        "evs_noise_factors": by_factor,
        "stds_noise_factors": by_factor_errors,
        "ensemble_stds_noise_factors": by_factor_errors.copy(),
        "evs_extrapolated": extrapolated,
        "stds_extrapolated": extrapolated_errors,
    }
    metadata = {"resilience": {"zne": {"extrapolators": _selected_per_value(terms, selected, settings)}}}
    return Mitigated(evs, stds, data, metadata)


def _selected_per_value(terms: _Terms, selected: np.ndarray, settings: ResilienceSettings) -> np.ndarray:
    """The extrapolator behind each ``(binding, observable)`` value; ``"multiple"`` when its
    terms were extrapolated differently (IBM's heterogeneous fit)."""
    names = np.full((selected.shape[0], terms.weights.shape[0]), settings.extrapolators[0], dtype=object)
    for observable, row in enumerate(terms.weights):
        used = selected[:, np.flatnonzero(row != 0)]
        if used.shape[1]:
            uniform = np.all(used == used[:, :1], axis=1)
            names[:, observable] = np.where(uniform, used[:, 0], "multiple")
    return names.astype(str)
