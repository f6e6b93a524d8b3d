"""Zero-noise extrapolation: 2-qubit gate folding and IBM's extrapolators (issue #11).

Folding replaces a 2-qubit gate ``G`` by ``G (G^dagger G)^k``. With ``d`` such gates, a noise
factor ``lambda`` folds every gate ``floor((lambda - 1) / 2)`` times and one more time a subset of
``round(d * frac((lambda - 1) / 2))`` gates, so the 2-qubit gate count becomes about ``lambda * d``
(exactly for odd integer factors). The subset is random for ``"gate_folding"`` and the first or
last gates in circuit order for ``"gate_folding_front"`` / ``"gate_folding_back"``, as IBM defines
them. ``G^dagger`` is ``G.inverse()``: the ISA gates ``cx``, ``cz``, ``ecr`` are their own inverse
and ``rzz(t)^dagger = rzz(-t)``, so the folded gates are gates the noise model attaches noise to.

Extrapolators (IBM's names): ``"linear"`` = ``"polynomial_degree_1"``, ``"polynomial_degree_k"``
(1 <= k <= 7), ``"exponential"`` (``a * exp(b * x)``), ``"double_exponential"`` (two decaying
exponentials) and ``"fallback"`` (the value at the lowest noise factor). Fits are weighted least
squares (linear algebra for polynomials, a small Levenberg-Marquardt for exponentials, both batched
over every series at once) with the given standard errors taken as absolute, so errors propagate
and exact input gives exact output with zero error; a fit's standard error at ``x`` is the
delta-method ``sqrt(J C J^T)`` from the parameter covariance ``C``. A fit is accepted, in the order given, when
its value and error are finite, the error is at most 1 and ``value -+ error`` stays inside the
Pauli range ``[-1, 1]`` widened by 1; if none is, the one with the smallest error is taken (the
rule of IBM's ``qiskit-mitigation``).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Sequence

import numpy as np
from qiskit.circuit import Gate, QuantumCircuit
from qiskit.circuit.library import PauliGate

__all__ = [
    "AMPLIFIERS",
    "EXTRAPOLATORS",
    "Extrapolation",
    "extrapolate",
    "fold_two_qubit_gates",
    "required_noise_factors",
]

AMPLIFIERS = ("gate_folding", "gate_folding_front", "gate_folding_back")
EXTRAPOLATORS = (
    "exponential",
    "double_exponential",
    "linear",
    "fallback",
    *(f"polynomial_degree_{degree}" for degree in range(1, 8)),
)
_POLYNOMIAL = re.compile(r"polynomial_degree_([1-7])")
_PAULI_RANGE = 1.0


def required_noise_factors(extrapolator: str) -> int:
    """How many noise factors ``extrapolator`` needs (IBM's ``ZneOptions`` check)."""
    if extrapolator in ("linear", "exponential", "fallback"):
        return 2
    if extrapolator == "double_exponential":
        return 4
    match = _POLYNOMIAL.fullmatch(extrapolator)
    if match is None:
        raise ValueError(f"unknown extrapolator {extrapolator!r}; expected one of {', '.join(EXTRAPOLATORS)}")
    return int(match.group(1)) + 1


def _is_foldable(operation: object, num_qubits: int) -> bool:
    return isinstance(operation, Gate) and num_qubits == 2 and not isinstance(operation, PauliGate)


def fold_two_qubit_gates(
    circuit: QuantumCircuit, noise_factor: float, amplifier: str, rng: np.random.Generator
) -> QuantumCircuit:
    """``circuit`` with its top-level 2-qubit gates folded to amplify their noise by ``noise_factor``.

    Raises:
        ValueError: for a factor below 1 or an unknown amplifier.
    """
    if not noise_factor >= 1.0:
        raise ValueError(f"noise factor {noise_factor!r} must be >= 1")
    if amplifier not in AMPLIFIERS:
        raise ValueError(f"amplifier {amplifier!r} is not one of {', '.join(AMPLIFIERS)}")
    positions = [
        index
        for index, instruction in enumerate(circuit.data)
        if _is_foldable(instruction.operation, len(instruction.qubits))
    ]
    folds_per_gate = (noise_factor - 1.0) / 2.0
    full_folds = math.floor(folds_per_gate + 1e-9)
    extra_count = round(len(positions) * (folds_per_gate - full_folds))
    if amplifier == "gate_folding":
        chosen = rng.choice(len(positions), size=extra_count, replace=False)
        extra = {positions[int(index)] for index in chosen}
    elif amplifier == "gate_folding_front":
        extra = set(positions[:extra_count])
    else:
        extra = set(positions[len(positions) - extra_count :])
    foldable = set(positions)
    folded = circuit.copy_empty_like()
    for index, instruction in enumerate(circuit.data):
        folded.append(instruction)
        if index not in foldable:
            continue
        operation = instruction.operation
        assert isinstance(operation, Gate)
        inverse = operation.inverse()
        for _ in range(full_folds + (index in extra)):
            folded.append(inverse, instruction.qubits)
            folded.append(instruction)
    return folded


# A model maps noise factors x (M,) and parameters (S, P) of S series to values (S, M).
Model = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _polynomial(x: np.ndarray, parameters: np.ndarray) -> np.ndarray:
    powers = x[None, :, None] ** np.arange(parameters.shape[1])
    return np.einsum("smk,sk->sm", np.broadcast_to(powers, (parameters.shape[0], *powers.shape[1:])), parameters)


def _exponentials(x: np.ndarray, parameters: np.ndarray) -> np.ndarray:
    amplitudes, rates = parameters[:, 0::2], parameters[:, 1::2]
    return np.einsum("sk,skm->sm", amplitudes, np.exp(rates[:, :, None] * x[None, None, :]))


def _exponential_seed(x: np.ndarray, y: np.ndarray, terms: int) -> np.ndarray:
    """Starting points from straight lines through ``log|y|`` (sign from the lowest factor)."""
    sign = np.sign(y[:, np.argmin(x)])
    sign[sign == 0] = 1.0
    rates, log_amplitudes = np.polyfit(x, np.log(np.clip(np.abs(y), 1e-12, None)).T, 1)
    if terms > 1:
        rates = np.minimum(rates, 0.0)
    amplitudes = sign * np.exp(log_amplitudes)
    return np.stack([value for term in range(terms) for value in (amplitudes / terms, rates * (term + 1))], axis=1)


def _jacobian(model: Model, parameters: np.ndarray, x: np.ndarray) -> np.ndarray:
    """d model / d parameters at ``x`` by central differences, ``(S, len(x), P)``."""
    columns = []
    for index in range(parameters.shape[1]):
        step = 1e-6 * np.maximum(np.abs(parameters[:, index]), 1.0)
        up, down = parameters.copy(), parameters.copy()
        up[:, index] += step
        down[:, index] -= step
        columns.append((model(x, up) - model(x, down)) / (2 * step[:, None]))
    return np.stack(columns, axis=-1)


def _pinv(matrices: np.ndarray) -> np.ndarray:
    """Pseudo-inverses of a stack of matrices; NaN for those with a non-finite entry."""
    finite = np.all(np.isfinite(matrices), axis=(-2, -1))
    inverses = np.full(matrices.shape[:-2] + matrices.shape[:-3:-1], np.nan)
    if finite.any():
        inverses[finite] = np.linalg.pinv(matrices[finite])
    return inverses


def _levenberg_marquardt(
    model: Model, x: np.ndarray, y: np.ndarray, weights: np.ndarray, start: np.ndarray, upper: np.ndarray | None
) -> np.ndarray:
    """Weighted least-squares parameters of ``model`` for every series at once (a small
    Levenberg-Marquardt; parameters held at or below ``upper``); NaN rows where it fails."""

    def cost(parameters: np.ndarray) -> np.ndarray:
        return np.sum(((y - model(x, parameters)) * weights) ** 2, axis=1)

    parameters = start.astype(np.float64)
    current = cost(parameters)
    damping = np.full(len(y), 1e-3)
    active = np.isfinite(current)
    for _ in range(500):
        if not active.any():
            break
        residual = (y - model(x, parameters)) * weights
        jacobian = _jacobian(model, parameters, x) * weights[:, :, None]
        normal = np.einsum("smp,smq->spq", jacobian, jacobian)
        gradient = np.einsum("smp,sm->sp", jacobian, residual)
        diagonal = np.einsum("spp->sp", normal) + 1e-12
        damped = normal + damping[:, None, None] * np.einsum("sp,pq->spq", diagonal, np.eye(len(diagonal[0])))
        step = np.einsum("spq,sq->sp", _pinv(damped), gradient)
        trial = parameters + step
        if upper is not None:
            trial = np.minimum(trial, upper)
        trial_cost = cost(trial)
        better = active & np.isfinite(trial_cost) & (trial_cost <= current)
        converged = better & ((current - trial_cost <= 1e-12 * current) | (trial_cost < 1e-30))
        parameters[better] = trial[better]
        current[better] = trial_cost[better]
        damping = np.where(better, np.maximum(damping / 10, 1e-12), damping * 10)
        active &= ~converged & (damping <= 1e12)
    failed = ~(np.all(np.isfinite(parameters), axis=1) & np.isfinite(current))
    parameters[failed] = np.nan
    return parameters


def _fit(
    name: str, x: np.ndarray, y: np.ndarray, weights: np.ndarray, exact: np.ndarray
) -> tuple[Model, np.ndarray, np.ndarray]:
    """Model, best parameters ``(S, P)`` (NaN where the fit fails) and their covariance
    ``(S, P, P)`` (zero for the exact series)."""
    match = _POLYNOMIAL.fullmatch("polynomial_degree_1" if name == "linear" else name)
    if match is not None:
        degree = int(match.group(1))
        model: Model = _polynomial
        if len(x) <= degree:
            return model, np.full((len(y), degree + 1), np.nan), np.zeros((len(y), degree + 1, degree + 1))
        design = weights[:, :, None] * x[None, :, None] ** np.arange(degree + 1)
        parameters = np.einsum("spm,sm->sp", _pinv(design), weights * y)
    elif name in ("exponential", "double_exponential"):
        terms = 1 if name == "exponential" else 2
        upper = np.array([np.inf, 0.0] * terms) if terms > 1 else None
        model = _exponentials
        with np.errstate(all="ignore"):
            parameters = _levenberg_marquardt(model, x, y, weights, _exponential_seed(x, y, terms), upper)
    else:
        raise ValueError(f"unknown extrapolator {name!r}")
    with np.errstate(all="ignore"):
        jacobian = _jacobian(model, np.nan_to_num(parameters), x) * weights[:, :, None]
        covariance = _pinv(np.einsum("smp,smq->spq", jacobian, jacobian))
    covariance[exact] = 0.0
    return model, parameters, covariance


def _evaluate(
    name: str, x: np.ndarray, y: np.ndarray, weights: np.ndarray, exact: np.ndarray, errors: np.ndarray, at: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One extrapolator's values and standard errors at ``at``, ``(S, len(at))``; NaN where the
    fit fails."""
    if name == "fallback":
        lowest = int(np.argmin(x))
        shape = (len(y), len(at))
        return np.broadcast_to(y[:, lowest : lowest + 1], shape).copy(), np.broadcast_to(
            errors[:, lowest : lowest + 1], shape
        ).copy()
    model, parameters, covariance = _fit(name, x, y, weights, exact)
    with np.errstate(all="ignore"):
        values = model(at, parameters)
        jacobian = _jacobian(model, parameters, at)
        variance = np.einsum("smp,spq,smq->sm", jacobian, covariance, jacobian)
    return values, np.sqrt(np.clip(variance, 0.0, None))


@dataclasses.dataclass(frozen=True)
class Extrapolation:
    """Every extrapolator's fit of each series of noisy values, and the one selected.

    Attributes (``...`` the leading shape of the values given):
        values / errors: ``(..., len(extrapolators), len(points))`` each fit at each point.
        value / error: ``(...)`` the selected fit at zero noise.
        selected: ``(...)`` the selected extrapolator's name.
    """

    values: np.ndarray
    errors: np.ndarray
    value: np.ndarray
    error: np.ndarray
    selected: np.ndarray


def extrapolate(
    noise_factors: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    errors: Sequence[float] | np.ndarray,
    extrapolators: Sequence[str],
    points: Sequence[float] | np.ndarray,
) -> Extrapolation:
    """Fit each series of ``values`` (``(..., len(noise_factors))``, standard errors ``errors``
    of the same shape) with each of ``extrapolators``, evaluate each at ``points``, and select
    the zero-noise value by the rule in this module's docstring."""
    x = np.asarray(noise_factors, dtype=np.float64)
    given = np.asarray(values, dtype=np.float64)
    leading = given.shape[:-1]
    y = given.reshape(-1, len(x))
    sigma = np.asarray(errors, dtype=np.float64).reshape(y.shape)
    broken = ~np.all(np.isfinite(y), axis=1)
    y = np.where(broken[:, None], 0.0, y)
    at = np.concatenate([[0.0], np.asarray(points, dtype=np.float64)])
    if not len(y):
        empty = np.zeros((*leading, len(extrapolators), len(at) - 1))
        return Extrapolation(empty, empty.copy(), np.zeros(leading), np.zeros(leading), np.zeros(leading, dtype=str))
    weights, exact = _weights(sigma)
    fits = [_evaluate(name, x, y, weights, exact, sigma, at) for name in extrapolators]
    all_values = np.stack([fit[0] for fit in fits], axis=1)  # (S, E, 1 + points)
    all_errors = np.stack([fit[1] for fit in fits], axis=1)
    all_values[broken], all_errors[broken] = np.nan, np.nan
    zero_values, zero_errors = all_values[:, :, 0], all_errors[:, :, 0]
    limit = _PAULI_RANGE
    with np.errstate(invalid="ignore"):
        accepted = (
            np.isfinite(zero_values)
            & np.isfinite(zero_errors)
            & (zero_errors <= limit)
            & (zero_values - zero_errors >= -_PAULI_RANGE - limit)
            & (zero_values + zero_errors <= _PAULI_RANGE + limit)
        )
    smallest_error = np.argmin(np.nan_to_num(zero_errors, nan=np.inf), axis=1)
    chosen = np.where(accepted.any(axis=1), np.argmax(accepted, axis=1), smallest_error)
    rows = np.arange(len(y))
    names = np.asarray(extrapolators, dtype=str)
    return Extrapolation(
        all_values[:, :, 1:].reshape(*leading, len(extrapolators), len(at) - 1),
        all_errors[:, :, 1:].reshape(*leading, len(extrapolators), len(at) - 1),
        np.nan_to_num(zero_values[rows, chosen], nan=np.inf).reshape(leading),
        np.nan_to_num(zero_errors[rows, chosen], nan=np.inf).reshape(leading),
        names[chosen].reshape(leading),
    )


def _weights(sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fit weights ``1 / sigma`` per series and which series are exact (every error zero: an
    unweighted fit with zero error). Zero errors in a series are raised and non-finite ones
    lowered to that series' finite positive range."""
    usable = np.isfinite(sigma) & (sigma > 0)
    exact = ~usable.any(axis=1)
    lowest = np.where(usable, sigma, np.inf).min(axis=1, initial=np.inf)
    highest = np.where(usable, sigma, 0.0).max(axis=1, initial=0.0)
    lowest[exact], highest[exact] = 1.0, 1.0
    clipped = np.clip(np.nan_to_num(sigma, nan=np.inf, posinf=np.inf), lowest[:, None], highest[:, None])
    clipped[exact] = 1.0
    return 1.0 / clipped, exact
