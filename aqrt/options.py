"""Primitive options and the duration grammar used by ``max_time`` and timeouts."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any

from .errors import InvalidOptionsError, InvalidTimeSpecError

__all__ = ["Options", "parse_duration"]

_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_TOKEN = re.compile(r"([0-9]+)([dhms])")
_GRAMMAR = (
    "expected an int of seconds or a string of space-separated '<integer><unit>' parts, "
    "units d/h/m/s in that order, each at most once, e.g. '2h 30m 40s', '25m', '1d'"
)


def parse_duration(value: int | str, *, what: str = "duration") -> int:
    """Turn ``value`` (int seconds or ``"2h 30m 40s"``) into a positive number of seconds.

    Raises:
        InvalidTimeSpecError: for anything outside the grammar, zero, or negative values.
    """
    if isinstance(value, bool):
        raise InvalidTimeSpecError(f"{what}={value!r}: booleans are not durations; {_GRAMMAR}")
    if isinstance(value, Integral):
        seconds = int(value)
    elif isinstance(value, str):
        seconds = _parse_duration_string(value, what)
    else:
        raise InvalidTimeSpecError(f"{what}={value!r} ({type(value).__name__}): {_GRAMMAR}")
    if seconds <= 0:
        raise InvalidTimeSpecError(f"{what}={value!r} must be positive; {_GRAMMAR}")
    return seconds


def _parse_duration_string(text: str, what: str) -> int:
    parts = text.split(" ")
    if not text or any(not part for part in parts):
        raise InvalidTimeSpecError(f"{what}={text!r}: {_GRAMMAR}")
    total = 0
    seen: list[str] = []
    for part in parts:
        match = _TOKEN.fullmatch(part)
        if match is None:
            raise InvalidTimeSpecError(f"{what}={text!r}: bad part {part!r}; {_GRAMMAR}")
        amount, unit = match.groups()
        if seen and "dhms".index(unit) <= "dhms".index(seen[-1]):
            raise InvalidTimeSpecError(f"{what}={text!r}: units out of order or repeated; {_GRAMMAR}")
        seen.append(unit)
        total += int(amount) * _UNIT_SECONDS[unit]
    return total


@dataclasses.dataclass(frozen=True, kw_only=True)
class Options:
    """Options shared by :class:`~aqrt.Estimator` and :class:`~aqrt.Sampler`.

    Args:
        optimization_level: ``None`` runs circuits as given; 0-3 runs Qiskit's preset pass
            manager of that level against the backend's target first.
        resilience_level: 0-2, error mitigation (Estimator only). Backends that cannot
            honour it say so in the result metadata.
        default_shots: shots for Sampler PUBs that do not set their own.
        default_precision: precision for Estimator PUBs that do not set their own (0 = exact).
        seed: seed for every random draw of a job (shots, precision noise); ``None`` = fresh.
        max_execution_time: seconds a job may run before it fails with ``JobTimeoutError``.

    Raises:
        InvalidOptionsError: for values out of range; :meth:`from_mapping` also for unknown names.

    Example:
        >>> Options(optimization_level=2, resilience_level=2).replace(seed=7).seed
        7
    """

    optimization_level: int | None = None
    resilience_level: int | None = None
    default_shots: int = 1024
    default_precision: float = 0.0
    seed: int | None = None
    max_execution_time: int | None = None

    def __post_init__(self) -> None:
        _check_int_range("optimization_level", self.optimization_level, 0, 3, allow_none=True)
        _check_int_range("resilience_level", self.resilience_level, 0, 2, allow_none=True)
        _check_int_range("default_shots", self.default_shots, 1, None)
        if self.seed is not None:
            _check_int_range("seed", self.seed, 0, None)
        if isinstance(self.default_precision, bool) or not isinstance(self.default_precision, Real):
            raise InvalidOptionsError(f"default_precision must be a real number, got {self.default_precision!r}")
        if not math.isfinite(self.default_precision) or self.default_precision < 0:
            raise InvalidOptionsError(f"default_precision must be finite and >= 0, got {self.default_precision!r}")
        if self.max_execution_time is not None:
            object.__setattr__(
                self,
                "max_execution_time",
                _parse_option_duration(self.max_execution_time),
            )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Options:
        """Build options from a dict, rejecting names that are not options."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InvalidOptionsError(f"unknown option(s) {unknown}; known options are {sorted(known)}")
        return cls(**values)

    @classmethod
    def coerce(cls, value: Options | Mapping[str, Any] | None) -> Options:
        """Accept an ``Options``, a dict of options, or ``None`` (defaults)."""
        if value is None:
            return cls()
        if isinstance(value, Options):
            return value
        if isinstance(value, Mapping):
            return cls.from_mapping(value)
        raise InvalidOptionsError(f"options must be Options or a dict, got {type(value).__name__}")

    def replace(self, **changes: Any) -> Options:
        """A copy with ``changes`` applied (unknown names raise)."""
        return self.from_mapping({**dataclasses.asdict(self), **changes})

    def to_dict(self) -> dict[str, Any]:
        """The options as a plain dict (for metadata and the wire)."""
        return dataclasses.asdict(self)


_dataclass_init = Options.__init__


def _checked_init(self: Options, *args: Any, **kwargs: Any) -> None:
    # ``Options(bogus=1)`` raises the typed error too, not a bare TypeError.
    known = {field.name for field in dataclasses.fields(Options)}
    unknown = sorted(set(kwargs) - known)
    if args or unknown:
        what = f"unknown option(s) {unknown}" if unknown else "options are keyword-only"
        raise InvalidOptionsError(f"{what}; known options are {sorted(known)}")
    _dataclass_init(self, **kwargs)


Options.__init__ = _checked_init  # type: ignore[method-assign]


def _parse_option_duration(value: Any) -> int:
    try:
        return parse_duration(value, what="max_execution_time")
    except InvalidTimeSpecError as exc:
        raise InvalidOptionsError(str(exc)) from None


def _check_int_range(name: str, value: Any, low: int, high: int | None, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InvalidOptionsError(f"{name} must be an int, got {value!r}")
    number = int(value)
    if number < low or (high is not None and number > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise InvalidOptionsError(f"{name} must be in {bound}, got {value!r}")
