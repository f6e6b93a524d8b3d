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
squares with the given standard errors taken as absolute (so errors propagate: exact input gives
exact output with zero error); a fit's standard error at ``x`` is the delta-method
``sqrt(J C J^T)`` from the parameter covariance ``C``. A fit is accepted, in the order given, when
its value and error are finite, the error is at most 1 and ``value -+ error`` stays inside the
Pauli range ``[-1, 1]`` widened by 1; if none is, the one with the smallest error is taken (the
rule of IBM's ``qiskit-mitigation``).
"""

from __future__ import annotations

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


Model = Callable[..., np.ndarray]


def _polynomial(x: np.ndarray, *coefficients: float) -> np.ndarray:
    return np.polynomial.polynomial.polyval(x, coefficients)


def _exponentials(x: np.ndarray, *parameters: float) -> np.ndarray:
    total = np.zeros_like(np.asarray(x, dtype=np.float64))
    for amplitude, rate in zip(parameters[::2], parameters[1::2], strict=True):
        total = total + amplitude * np.exp(rate * x)
    return total


def _exponential_seed(x: np.ndarray, y: np.ndarray, terms: int) -> list[float]:
    """Starting point from a straight line through ``log|y|`` (sign from the lowest factor)."""
    sign = float(np.sign(y[np.argmin(x)])) or 1.0
    rate, log_amplitude = np.polyfit(x, np.log(np.clip(np.abs(y), 1e-12, None)), 1)
    rate = min(rate, 0.0) if terms > 1 else rate
    amplitude = sign * math.exp(log_amplitude)
    return [value for term in range(terms) for value in (amplitude / terms, rate * (term + 1))]


def _fit(name: str, x: np.ndarray, y: np.ndarray, sigma: np.ndarray | None) -> tuple[Model, np.ndarray, np.ndarray]:
    """Model, best parameters and their covariance (zeros when the data are exact)."""
    match = _POLYNOMIAL.fullmatch("polynomial_degree_1" if name == "linear" else name)
    if match is not None:
        degree = int(match.group(1))
        if len(x) <= degree:
            raise ValueError("too few noise factors")
        weights = None if sigma is None else 1.0 / sigma
        parameters = np.polyfit(x, y, degree, w=weights)[::-1]
        model: Model = _polynomial
    elif name in ("exponential", "double_exponential"):
        terms = 1 if name == "exponential" else 2
        seed = np.array(_exponential_seed(x, y, terms))
        upper = np.array([np.inf, 0.0] * terms) if terms > 1 else None
        parameters = _levenberg_marquardt(_exponentials, x, y, sigma, seed, upper)
        model = _exponentials
    else:
        raise ValueError(f"unknown extrapolator {name!r}")
    parameters = np.asarray(parameters, dtype=np.float64)
    if sigma is None:
        return model, parameters, np.zeros((len(parameters), len(parameters)))
    jacobian = _jacobian(model, parameters, x)
    weighted = jacobian / sigma[:, None]
    covariance = np.linalg.pinv(weighted.T @ weighted)
    return model, parameters, covariance


def _jacobian(model: Model, parameters: np.ndarray, x: np.ndarray) -> np.ndarray:
    """d model / d parameters at ``x`` by central differences, ``(len(x), len(parameters))``."""
    columns = []
    for index in range(len(parameters)):
        step = 1e-6 * max(abs(parameters[index]), 1.0)
        up, down = parameters.copy(), parameters.copy()
        up[index] += step
        down[index] -= step
        columns.append((model(x, *up) - model(x, *down)) / (2 * step))
    return np.stack(columns, axis=-1)


def _levenberg_marquardt(
    model: Model,
    x: np.ndarray,
    y: np.ndarray,
    sigma: np.ndarray | None,
    start: np.ndarray,
    upper: np.ndarray | None,
) -> np.ndarray:
    """Weighted least-squares parameters of ``model`` (a small Levenberg-Marquardt, parameters
    held at or below ``upper``).

    Raises:
        RuntimeError: when it does not reach finite parameters.
    """
    weights = np.ones_like(y) if sigma is None else 1.0 / sigma

    def cost(parameters: np.ndarray) -> float:
        return float(np.sum(((y - model(x, *parameters)) * weights) ** 2))

    parameters = start.astype(np.float64)
    current = cost(parameters)
    damping = 1e-3
    for _ in range(500):
        residual = (y - model(x, *parameters)) * weights
        jacobian = _jacobian(model, parameters, x) * weights[:, None]
        normal = jacobian.T @ jacobian
        gradient = jacobian.T @ residual
        step = np.linalg.lstsq(normal + damping * np.diag(np.diag(normal) + 1e-12), gradient, rcond=None)[0]
        trial = parameters + step
        if upper is not None:
            trial = np.minimum(trial, upper)
        trial_cost = cost(trial)
        if np.isfinite(trial_cost) and trial_cost <= current:
            converged = current - trial_cost <= 1e-15 * max(current, 1e-300) or trial_cost < 1e-30
            parameters, current = trial, trial_cost
            damping = max(damping / 10, 1e-12)
            if converged:
                break
        else:
            damping *= 10
            if damping > 1e12:
                break
    if not (np.all(np.isfinite(parameters)) and np.isfinite(current)):
        raise RuntimeError("the fit did not converge")
    return parameters


def _evaluate(
    name: str, x: np.ndarray, y: np.ndarray, sigma: np.ndarray | None, at: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One extrapolator's values and standard errors at ``at``; NaN where the fit fails."""
    if name == "fallback":
        lowest = int(np.argmin(x))
        error = 0.0 if sigma is None else float(sigma[lowest])
        return np.full(at.shape, y[lowest]), np.full(at.shape, error)
    try:
        with np.errstate(all="ignore"):
            model, parameters, covariance = _fit(name, x, y, sigma)
            values = np.asarray(model(at, *parameters), dtype=np.float64)
            jacobian = _jacobian(model, parameters, at)
            variance = np.einsum("ij,jk,ik->i", jacobian, covariance, jacobian)
    except (RuntimeError, ValueError, np.linalg.LinAlgError):
        return np.full(at.shape, np.nan), np.full(at.shape, np.nan)
    return values, np.sqrt(np.clip(variance, 0.0, None))


class Extrapolation:
    """Every extrapolator's fit of one Pauli term's noisy values, and the one selected.

    Attributes:
        values / errors: ``(len(extrapolators), len(points))`` each fit at each evaluation point.
        value / error: the selected fit at zero noise.
        selected: the selected extrapolator's name.
    """

    __slots__ = ("error", "errors", "selected", "value", "values")

    def __init__(
        self,
        values: np.ndarray,
        errors: np.ndarray,
        value: float,
        error: float,
        selected: str,
    ) -> None:
        self.values = values
        self.errors = errors
        self.value = value
        self.error = error
        self.selected = selected


def extrapolate(
    noise_factors: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    errors: Sequence[float] | np.ndarray,
    extrapolators: Sequence[str],
    points: Sequence[float] | np.ndarray,
) -> Extrapolation:
    """Fit ``values`` (measured at ``noise_factors``, standard errors ``errors``) with each of
    ``extrapolators``, evaluate each at ``points``, and select the zero-noise value by the
    fallback rule in this module's docstring."""
    x = np.asarray(noise_factors, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    sigma = _usable_sigma(np.asarray(errors, dtype=np.float64))
    at = np.concatenate([[0.0], np.asarray(points, dtype=np.float64)])
    fits = [_evaluate(name, x, y, sigma, at) for name in extrapolators]
    all_values = np.array([fit[0] for fit in fits])
    all_errors = np.array([fit[1] for fit in fits])
    zero_values, zero_errors = all_values[:, 0], all_errors[:, 0]
    limit = _PAULI_RANGE
    accepted = (
        np.isfinite(zero_values)
        & np.isfinite(zero_errors)
        & (zero_errors <= limit)
        & (zero_values - zero_errors >= -_PAULI_RANGE - limit)
        & (zero_values + zero_errors <= _PAULI_RANGE + limit)
    )
    if accepted.any():
        chosen = int(np.flatnonzero(accepted)[0])
    else:
        chosen = int(np.argmin(np.nan_to_num(zero_errors, nan=np.inf)))
    return Extrapolation(
        all_values[:, 1:],
        all_errors[:, 1:],
        float(np.nan_to_num(zero_values[chosen], nan=np.inf)),
        float(np.nan_to_num(zero_errors[chosen], nan=np.inf)),
        extrapolators[chosen],
    )


def _usable_sigma(errors: np.ndarray) -> np.ndarray | None:
    """``None`` when every error is zero (exact data, unweighted fit with zero error); otherwise
    the errors with zeros raised and non-finite ones lowered to the finite positive range."""
    positive = errors[np.isfinite(errors) & (errors > 0)]
    if positive.size == 0:
        return None
    return np.clip(np.nan_to_num(errors, nan=np.inf, posinf=np.inf), positive.min(), positive.max())
