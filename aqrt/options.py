"""Primitive options (qiskit-ibm-runtime's V2 options tree) and the duration grammar used by
``max_time`` and timeouts.

:class:`Options` (aqrt's class, both primitives), :class:`EstimatorOptions` and
:class:`SamplerOptions` (IBM's names and nesting, for one primitive each) and their groups.
Where aqrt differs from IBM: unset reads ``None`` (IBM's ``Unset`` is not imported:
qiskit-ibm-runtime is optional); ``default_precision`` may be 0 (exact) and defaults to it;
``default_shots`` defaults to 1024 (IBM's 4096) and must be >= 1; ``max_execution_time`` also
takes ``"2h 30m"``; sequences read back as tuples (so that a stored list cannot change behind
a check); assigning a group copies it; ``update`` also takes dotted and bare leaf names and is
all-or-nothing; ``optimization_level`` and ``seed`` are aqrt's. Checks are stricter than
pydantic's lax mode in qiskit-ibm-runtime: a bool must be ``True``/``False`` (not ``"yes"`` or
1), an int an int (not ``"1"``), seeds and ``execution.rep_delay`` >= 0, tags strings,
coupling-map entries pairs.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import math
import re
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from numbers import Integral, Real
from typing import Any, ClassVar, Final, cast

from .errors import InvalidOptionsError, InvalidTimeSpecError

__all__ = [
    "DD_SEQUENCES",
    "DEFAULT_PRECISION",
    "DEFAULT_SHOTS",
    "LOG_LEVELS",
    "MEAS_TYPES",
    "TWIRLING_STRATEGIES",
    "ZNE_AMPLIFIERS",
    "ZNE_EXTRAPOLATORS",
    "DynamicalDecouplingOptions",
    "EnvironmentOptions",
    "EstimatorOptions",
    "ExecutionOptions",
    "LayerNoiseLearningOptions",
    "MeasureNoiseLearningOptions",
    "Options",
    "PecOptions",
    "ResilienceOptions",
    "SamplerExecutionOptions",
    "SamplerOptions",
    "SimulatorOptions",
    "TwirlingOptions",
    "ZneOptions",
    "effective_precision",
    "effective_shots",
    "option_fields",
    "parse_duration",
    "program_options_class",
]

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


# -- the options tree ----------------------------------------------------------------------------
#
# qiskit-ibm-runtime's V2 names and nesting (EstimatorOptions / SamplerOptions), written as plain
# classes: every assignment is checked at once (InvalidOptionsError naming the full path and the
# allowed values), None means "unset" (IBM's ``Unset``; the default then applies), and a frozen
# snapshot (:meth:`Options.snapshot`) is what a submitted job carries.

#: Shots of Sampler PUBs when neither the PUB, ``run(shots=)`` nor ``default_shots`` set any.
DEFAULT_SHOTS: Final = 1024
#: Precision of Estimator PUBs when nothing sets one: 0.0, exact values (IBM's is 1/sqrt(4096)).
DEFAULT_PRECISION: Final = 0.0

ZNE_EXTRAPOLATORS: Final = (
    "linear",
    "exponential",
    "double_exponential",
    "polynomial_degree_1",
    "polynomial_degree_2",
    "polynomial_degree_3",
    "polynomial_degree_4",
    "polynomial_degree_5",
    "polynomial_degree_6",
    "polynomial_degree_7",
    "fallback",
)
ZNE_AMPLIFIERS: Final = ("gate_folding", "gate_folding_front", "gate_folding_back", "pea")
TWIRLING_STRATEGIES: Final = ("active", "active-accum", "active-circuit", "all")
DD_SEQUENCES: Final = ("XX", "XpXm", "XY4")
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MEAS_TYPES: Final = ("classified", "kerneled", "avg_kerneled")
# IBM's ZneOptions check: an extrapolator needs at least this many noise factors.
_REQUIRED_FACTORS: Final = {
    "linear": 2,
    "exponential": 2,
    "double_exponential": 4,
    "fallback": 2,
    **{f"polynomial_degree_{degree}": degree + 1 for degree in range(1, 8)},
}
_DEFAULT_NOISE_FACTORS: Final = (1.0, 3.0, 5.0)
_DEFAULT_EXTRAPOLATORS: Final = ("exponential", "linear")

_Check = Callable[[Any, str], Any]


def _bad(path: str, expected: str, value: Any) -> InvalidOptionsError:
    return InvalidOptionsError(f"{path} must be {expected}, got {value!r}")


def _int(low: int, high: int | None = None) -> _Check:
    def check(value: Any, path: str) -> int:
        _check_int_range(path, value, low, high)
        return int(value)

    return check


def _real(*, low: float, inclusive: bool) -> _Check:
    relation = ">=" if inclusive else ">"

    def check(value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, Real):
            raise InvalidOptionsError(f"{path} must be a real number, got {value!r}")
        number = float(value)
        if not math.isfinite(number) or (number < low if inclusive else number <= low):
            raise InvalidOptionsError(f"{path} must be finite and {relation} {low:g}, got {value!r}")
        return number

    return check


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _bad(path, "True or False", value)
    return value


def _choice(*allowed: str) -> _Check:
    listed = ", ".join(repr(item) for item in allowed)

    def check(value: Any, path: str) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise _bad(path, f"one of {listed}", value)
        return value

    return check


def _int_or_auto(value: Any, path: str) -> int | str:
    if value == "auto" and isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, Integral) or int(value) < 1:
        raise _bad(path, "an int >= 1 or 'auto'", value)
    return int(value)


def _reals(*, low: float | None, nonempty: bool) -> _Check:
    expected = "a list of real numbers" + (f", each >= {low:g}" if low is not None else "")
    expected += " (at least one)" if nonempty else ""

    def check(value: Any, path: str) -> tuple[float, ...]:
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise _bad(path, expected, value)
        items = tuple(value)
        if (nonempty and not items) or not all(
            not isinstance(item, bool)
            and isinstance(item, Real)
            and math.isfinite(float(item))
            and (low is None or float(item) >= low)
            for item in items
        ):
            raise _bad(path, expected, value)
        return tuple(float(item) for item in items)

    return check


def _extrapolator(value: Any, path: str) -> str | tuple[str, ...]:
    listed = ", ".join(repr(name) for name in ZNE_EXTRAPOLATORS)
    expected = f"one of {listed}, or a non-empty list of them"
    if isinstance(value, str):
        if value not in ZNE_EXTRAPOLATORS:
            raise _bad(path, expected, value)
        return value
    if not isinstance(value, Iterable):
        raise _bad(path, expected, value)
    items = tuple(value)
    if not items or not all(isinstance(item, str) and item in ZNE_EXTRAPOLATORS for item in items):
        raise _bad(path, expected, value)
    return items


def _ints(*, low: int) -> _Check:
    def check(value: Any, path: str) -> tuple[int, ...]:
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise _bad(path, f"a list of ints >= {low}", value)
        items = tuple(value)
        if not all(not isinstance(item, bool) and isinstance(item, Integral) and int(item) >= low for item in items):
            raise _bad(path, f"a list of ints >= {low}", value)
        return tuple(int(item) for item in items)

    return check


def _strings(value: Any, path: str) -> tuple[str, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise _bad(path, "a list of strings", value)
    items = tuple(value)
    if not all(isinstance(item, str) for item in items):
        raise _bad(path, "a list of strings", value)
    return items


def _coupling_map(value: Any, path: str) -> Any:
    from qiskit.transpiler import CouplingMap

    if isinstance(value, CouplingMap):
        return value
    expected = "a CouplingMap or a list of [control, target] qubit pairs"
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise _bad(path, expected, value)
    edges = []
    for edge in value:
        pair = tuple(edge) if isinstance(edge, Iterable) and not isinstance(edge, str | bytes) else ()
        if len(pair) != 2 or not all(not isinstance(q, bool) and isinstance(q, Integral) and int(q) >= 0 for q in pair):
            raise _bad(path, expected, value)
        edges.append((int(pair[0]), int(pair[1])))
    return tuple(edges)


def _noise_model(value: Any, path: str) -> Any:
    """A dict (Aer's ``NoiseModel.to_dict`` form), a ``qiskit_aer.noise.NoiseModel``, or aqrt's
    own :class:`aqrt.noise.NoiseModel` (checked by its module, so this layer imports neither)."""
    if isinstance(value, Mapping):
        return copy.deepcopy(dict(value))
    kind = type(value)
    if kind.__name__ == "NoiseModel" and kind.__module__.split(".")[0] in ("qiskit_aer", "aqrt"):
        return value
    raise _bad(path, "a qiskit_aer.noise.NoiseModel, an aqrt.noise.NoiseModel or a dict", value)


def _callable(value: Any, path: str) -> Any:
    if not callable(value):
        raise _bad(path, "a callable", value)
    return value


def _mapping(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise _bad(path, "a dict with string keys", value)
    return copy.deepcopy(dict(value))


def _anything(value: Any, path: str) -> Any:
    return value


def _duration(value: Any, path: str) -> int:
    return _parse_option_duration(value)


@dataclasses.dataclass(frozen=True)
class _Field:
    """One option: a leaf checked by ``check``, or a group of options of class ``group``."""

    check: _Check | None = None
    group: type[_Group] | None = None
    default: Any = None


def _leaf(check: _Check, default: Any = None) -> _Field:
    return _Field(check=check, default=default)


def _group(kind: type[_Group]) -> _Field:
    return _Field(group=kind)


class _Group:
    """A node of the options tree: fields set by keyword or by attribute, each checked at once.

    Unset fields read ``None`` (assigning ``None`` unsets a field); a group field assigned a
    dict or an options object is replaced by a copy of it (IBM replaces it too; aqrt copies, so
    one object is never shared by two primitives); :meth:`update` merges instead.
    """

    _FIELDS: ClassVar[dict[str, _Field]] = {}
    #: Where the group sits in the tree (for messages): ``""`` for the roots.
    _PATH: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        parameters = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=field.default)
            for name, field in cls._FIELDS.items()
        ]
        cls.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]

    def __init__(self, *args: Any, **values: Any) -> None:
        state = self.__dict__
        state["_parent"] = None
        state["_frozen"] = False
        state["_snapshot"] = None
        state["_hash"] = None
        state["_set"] = None
        state["_pristine"] = not values  # defaults, never assigned since: see snapshot()
        unknown = sorted(name for name in values if name not in self._FIELDS)
        if args or unknown:
            what = f"unknown option(s) {self._paths(unknown)}" if unknown else "options are keyword-only"
            raise InvalidOptionsError(f"{what}; {self._known()}")
        for name, field in self._FIELDS.items():
            if field.group is not None:
                child = field.group()
                child.__dict__["_parent"] = self
                state[name] = child
            else:
                state[name] = field.default
        for name, value in values.items():
            state[name] = self._converted(name, value)
        self._check()

    # -- reading ----------------------------------------------------------------------------------

    def _path(self, name: str) -> str:
        return f"{self._PATH}.{name}" if self._PATH else name

    def _paths(self, names: Iterable[str]) -> list[str]:
        return [self._path(name) for name in names]

    def _known(self) -> str:
        where = f" of {self._PATH}" if self._PATH else ""
        return f"known options{where} are {sorted(self._FIELDS)} ({type(self).__name__})"

    def _items(self) -> Iterator[tuple[str, Any]]:
        state = self.__dict__
        for name in self._FIELDS:
            yield name, state[name]

    def to_dict(self, *, only_set: bool = False) -> dict[str, Any]:
        """The options as nested plain dicts (lists for sequences), as IBM's ``asdict`` gives
        them; ``only_set=True`` keeps only the fields that differ from their defaults (what
        the official client sends)."""
        out: dict[str, Any] = {}
        for name, value in self._items():
            field = self._FIELDS[name]
            if field.group is not None:
                nested = value.to_dict(only_set=only_set)
                if nested or not only_set:
                    out[name] = nested
            elif not only_set or value != field.default:
                out[name] = _plain(value)
        return out

    def _set_items(self) -> tuple[tuple[str, Any], ...]:
        """The set fields, nested, as a comparable tuple (groups by their own set fields); a
        frozen snapshot's made once (its hash and every comparison read it: a fresh session's
        first job compares its snapshot with the cached reports' keys)."""
        state = self.__dict__
        known = state.get("_set")
        if known is not None:
            return known
        items = []
        for name, value in self._items():
            field = self._FIELDS[name]
            if field.group is not None:
                nested = value._set_items()
                if nested:
                    items.append((name, nested))
            elif value != field.default:
                items.append((name, value))
        made = tuple(items)
        if state["_frozen"]:
            state["_set"] = made
        return made

    def __eq__(self, other: object) -> bool:
        """Options are equal when they set the same values (whatever their class)."""
        if not isinstance(other, _Group):
            return NotImplemented
        return self._set_items() == other._set_items()

    def __hash__(self) -> int:
        if not self.__dict__["_frozen"]:
            raise TypeError(f"unhashable type: '{type(self).__name__}' (mutable; hash its .snapshot())")
        cached = self.__dict__["_hash"]
        if cached is None:
            cached = self.__dict__["_hash"] = hash(_hashable(self._set_items()))
        return int(cached)

    def __getstate__(self) -> dict[str, Any]:
        # str hashes differ between processes: an unpickled snapshot computes its own.
        return {**self.__dict__, "_hash": None, "_set": None}

    def __repr__(self) -> str:
        parts = []
        for name, value in self._items():
            field = self._FIELDS[name]
            if field.group is not None:
                if value._set_items():
                    parts.append(f"{name}={value!r}")
            elif value != field.default:
                parts.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    # -- assignment -------------------------------------------------------------------------------

    def _converted(self, name: str, value: Any) -> Any:
        """``value`` checked and normalised for field ``name`` (a group: a new, attached copy)."""
        field = self._FIELDS[name]
        path = self._path(name)
        if field.group is None:
            if value is None:
                return field.default
            assert field.check is not None
            return field.check(value, path)
        kind = field.group
        if value is None:
            child = kind()
        elif isinstance(value, Mapping):
            child = kind(**value)
        elif isinstance(value, _Group):
            child = value.copy() if type(value) is kind else kind(**value.to_dict(only_set=True))
        else:
            raise InvalidOptionsError(f"{path} must be a {kind.__name__} or a dict, got {value!r}")
        child.__dict__["_parent"] = self
        return child

    def __setattr__(self, name: str, value: Any) -> None:
        state = self.__dict__
        if state["_frozen"]:
            raise dataclasses.FrozenInstanceError(
                f"cannot assign to {self._path(name)}: a job's options are a frozen snapshot; "
                "change the primitive's options (or a copy) instead"
            )
        if name not in self._FIELDS:
            raise InvalidOptionsError(f"unknown option(s) {self._paths([name])}; {self._known()}")
        new = self._converted(name, value)
        old = state[name]
        state[name] = new
        try:
            self._check()
        except InvalidOptionsError:
            state[name] = old
            raise
        self._invalidate()

    def _check(self) -> None:
        """Checks across this group's fields (IBM's model validators); run on construction and
        on every assignment to one of its fields."""

    def _invalidate(self) -> None:
        node: _Group | None = self
        while node is not None:
            node.__dict__["_snapshot"] = None
            node.__dict__["_pristine"] = False
            node = node.__dict__["_parent"]

    def _is_pristine(self) -> bool:
        return bool(self.__dict__.get("_pristine", False))  # an unpickled tree of an older aqrt: no

    def update(self, **changes: Any) -> None:
        """Set several options at once, all or none (IBM's ``update``).

        Accepts top-level names, nested dicts (merged into the groups they name, as IBM merges
        them: ``update(twirling={"enable_gates": True})`` keeps the other twirling fields),
        dotted names (``**{"resilience.zne.noise_factors": [1, 3]}``) and, V1-style, a leaf's
        bare name when it occurs once in the tree (``update(zne_mitigation=True)``).

        Raises:
            InvalidOptionsError: an unknown or ambiguous name, or a value out of range (nothing
                is changed then).
        """
        if self.__dict__["_frozen"]:
            raise dataclasses.FrozenInstanceError("a job's options are a frozen snapshot; update the primitive's")
        merged = self.to_dict(only_set=True)
        for name, value in changes.items():
            _merge(merged, self._nested(name, value))
        fresh = type(self)(**merged)
        self._load(fresh)
        self._invalidate()

    def _nested(self, name: str, value: Any) -> dict[str, Any]:
        """``{name: value}`` with a dotted or bare leaf name turned into nested dicts."""
        if name in self._FIELDS:
            return {name: value}
        parts = name.split(".") if "." in name else self._leaf_path(name)
        node: type[_Group] = type(self)
        for depth, part in enumerate(parts[:-1]):
            field = node._FIELDS.get(part)
            if field is None or field.group is None:
                where = ".".join(parts[: depth + 1])
                raise InvalidOptionsError(f"unknown option(s) [{where!r}]; {node._known_of(self)}")
            node = field.group
        if parts[-1] not in node._FIELDS:
            raise InvalidOptionsError(f"unknown option(s) [{name!r}]; {node._known_of(self)}")
        nested: Any = value
        for part in reversed(parts):
            nested = {part: nested}
        return cast(dict[str, Any], nested)

    @classmethod
    def _known_of(cls, root: _Group) -> str:
        where = f" of {cls._PATH}" if cls._PATH else ""
        return f"known options{where} are {sorted(cls._FIELDS)}"

    def _leaf_path(self, name: str) -> list[str]:
        found = [path for path in _leaf_paths(type(self)) if path[-1] == name]
        if len(found) == 1:
            return found[0]
        if not found:
            raise InvalidOptionsError(f"unknown option(s) [{name!r}]; {self._known()}")
        names = ", ".join(".".join(path) for path in found)
        raise InvalidOptionsError(f"option {name!r} is ambiguous: it names {names}; use a dotted name or a nested dict")

    def _load(self, source: _Group) -> None:
        """Take ``source``'s values (same class, already checked), keeping this tree's groups."""
        state = self.__dict__
        for name, value in source._items():
            if self._FIELDS[name].group is not None:
                state[name]._load(value)
            else:
                state[name] = value

    # -- copies -----------------------------------------------------------------------------------

    def copy(self) -> Any:
        """A mutable deep copy of the same class."""
        clone = type(self).__new__(type(self))
        state = clone.__dict__
        state.update(_parent=None, _frozen=False, _snapshot=None, _hash=None, _set=None, _pristine=self._is_pristine())
        for name, value in self._items():
            if self._FIELDS[name].group is not None:
                child = value.copy()
                child.__dict__["_parent"] = clone
                state[name] = child
            else:
                state[name] = copy.deepcopy(value) if isinstance(value, dict) else value
        return clone

    def _frozen_as(self, kind: type[_Group]) -> Any:
        """A frozen copy as class ``kind`` (which has every field of this one)."""
        clone = kind.__new__(kind)
        state = clone.__dict__
        state.update(_parent=None, _frozen=True, _snapshot=clone, _hash=None, _set=None, _pristine=False)
        mine = self.__dict__
        for name, field in kind._FIELDS.items():
            value = mine.get(name, field.default)
            if field.group is not None:
                assert isinstance(value, _Group) or value is None
                source = value if value is not None else field.group()
                state[name] = source._frozen_as(field.group)
            else:
                state[name] = copy.deepcopy(value) if isinstance(value, dict) else value
        return clone


def _merge(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    """IBM's ``merge_options_v2``: dicts merge key by key, anything else replaces."""
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _leaf_paths(kind: type[_Group]) -> list[list[str]]:
    paths: list[list[str]] = []
    for name, field in kind._FIELDS.items():
        if field.group is not None:
            paths.extend([name, *path] for path in _leaf_paths(field.group))
        else:
            paths.append([name])
    return paths


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return copy.deepcopy(value)
    return value


def _hashable(value: Any) -> Hashable:
    if isinstance(value, tuple):
        return tuple(_hashable(item) for item in value)
    if isinstance(value, dict):
        return ("dict", tuple(sorted((str(key), _hashable(item)) for key, item in value.items())))
    try:
        hash(value)
    except TypeError:
        return ("unhashable", type(value).__name__)  # equal values share a type: the hash holds
    return cast(Hashable, value)


# -- the groups (IBM's classes, same names and fields) -------------------------------------------


class DynamicalDecouplingOptions(_Group):
    """Dynamical decoupling (IBM's ``DynamicalDecouplingOptions``).

    Args:
        enable: insert DD sequences on idle periods (IBM default ``False``).
        sequence_type: ``"XX"``, ``"XpXm"`` or ``"XY4"`` (default ``"XX"``).
        extra_slack_distribution: ``"middle"`` or ``"edges"`` (default ``"middle"``).
        scheduling_method: ``"alap"`` or ``"asap"`` (default ``"alap"``).
        skip_reset_qubits: no DD right after a reset (default ``False``).
    """

    _PATH = "dynamical_decoupling"
    enable: bool | None
    sequence_type: str | None
    extra_slack_distribution: str | None
    scheduling_method: str | None
    skip_reset_qubits: bool | None
    _FIELDS: ClassVar[dict[str, _Field]] = {
        "enable": _leaf(_bool),
        "sequence_type": _leaf(_choice(*DD_SEQUENCES)),
        "extra_slack_distribution": _leaf(_choice("middle", "edges")),
        "scheduling_method": _leaf(_choice("alap", "asap")),
        "skip_reset_qubits": _leaf(_bool),
    }


class ZneOptions(_Group):
    """Zero-noise extrapolation (IBM's ``ZneOptions``), under ``resilience.zne``.

    Args:
        amplifier: ``"gate_folding"`` (default), ``"gate_folding_front"``, ``"gate_folding_back"``
            or ``"pea"``.
        noise_factors: factors >= 1 (default ``(1, 3, 5)``).
        extrapolator: one of :data:`ZNE_EXTRAPOLATORS` or a list of them, tried in order
            (default ``("exponential", "linear")``); each needs enough noise factors.
        extrapolated_noise_factors: where the fits are evaluated (default ``[0, *noise_factors]``).
    """

    _PATH = "resilience.zne"
    amplifier: str | None
    noise_factors: tuple[float, ...] | None
    extrapolator: str | tuple[str, ...] | None
    extrapolated_noise_factors: tuple[float, ...] | None
    _FIELDS: ClassVar[dict[str, _Field]] = {
        "amplifier": _leaf(_choice(*ZNE_AMPLIFIERS)),
        "noise_factors": _leaf(_reals(low=1.0, nonempty=True)),
        "extrapolator": _leaf(_extrapolator),
        "extrapolated_noise_factors": _leaf(_reals(low=None, nonempty=False)),
    }

    def _check(self) -> None:
        factors = self.noise_factors if self.noise_factors is not None else _DEFAULT_NOISE_FACTORS
        chosen = self.extrapolator if self.extrapolator is not None else _DEFAULT_EXTRAPOLATORS
        for name in (chosen,) if isinstance(chosen, str) else chosen:
            if len(factors) < _REQUIRED_FACTORS[name]:
                raise InvalidOptionsError(
                    f"resilience.zne.extrapolator {name!r} requires at least {_REQUIRED_FACTORS[name]} "
                    f"noise_factors, got {len(factors)} ({list(factors)})"
                )


class PecOptions(_Group):
    """Probabilistic error cancellation (IBM's ``PecOptions``), under ``resilience.pec``.

    Args:
        max_overhead: sampling overhead bound, > 0 (default 100).
        noise_gain: >= 0, or ``"auto"`` (default).
    """

    _PATH = "resilience.pec"
    max_overhead: float | None
    noise_gain: float | str | None
    _FIELDS: ClassVar[dict[str, _Field]] = {
        "max_overhead": _leaf(_real(low=0.0, inclusive=False)),
        "noise_gain": _leaf(
            lambda value, path: "auto" if value == "auto" else _real(low=0.0, inclusive=True)(value, path)
        ),
    }


class MeasureNoiseLearningOptions(_Group):
    """Readout-noise learning for TREX (IBM's ``MeasureNoiseLearningOptions``).

    Args:
        num_randomizations: random circuits, >= 1 (default 32).
        shots_per_randomization: >= 1 or ``"auto"`` (default).
    """

    _PATH = "resilience.measure_noise_learning"
    num_randomizations: int | None
    shots_per_randomization: int | str | None
    _FIELDS: ClassVar[dict[str, _Field]] = {
        "num_randomizations": _leaf(_int(1)),
        "shots_per_randomization": _leaf(_int_or_auto),
    }


class LayerNoiseLearningOptions(_Group):
    """Layer-noise learning for PEC / PEA (IBM's ``LayerNoiseLearningOptions``).

    Args:
        max_layers_to_learn: >= 0 (default 4).
        shots_per_randomization: >= 1 (default 128).
        num_randomizations: >= 1 (default 32).
        layer_pair_depths: depths >= 0 (default ``(0, 1, 2, 4, 16, 32)``).
    """

    _PATH = "resilience.layer_noise_learning"
    max_layers_to_learn: int | None
    shots_per_randomization: int | None
    num_randomizations: int | None
    layer_pair_depths: tuple[int, ...] | None
    _FIELDS: ClassVar[dict[str, _Field]] = {
        "max_layers_to_learn": _leaf(_int(0)),
        "shots_per_randomization": _leaf(_int(1)),
        "num_randomizations": _leaf(_int(1)),
        "layer_pair_depths": _leaf(_ints(low=0)),
    }


class ResilienceOptions(_Group):
    """Error mitigation switches (IBM's ``ResilienceOptionsV2``); unset switches follow
    ``resilience_level`` (1: ``measure_mitigation``; 2: also ``zne_mitigation``).

    Args:
        measure_mitigation: TREX readout mitigation.
        measure_noise_learning: :class:`MeasureNoiseLearningOptions` (only with
            ``measure_mitigation=True``, as IBM checks).
        zne_mitigation: zero-noise extrapolation.
        zne: :class:`ZneOptions`.
        pec_mitigation: probabilistic error cancellation (not together with ZNE).
        pec: :class:`PecOptions`.
        layer_noise_learning: :class:`LayerNoiseLearningOptions`.
        layer_noise_model: learned layer noise (IBM's ``NoiseLearnerResult``), kept as given.
    """

    _PATH = "resilience"
    measure_mitigation: bool | None
    measure_noise_learning: MeasureNoiseLearningOptions
    zne_mitigation: bool | None
    zne: ZneOptions
    pec_mitigation: bool | None
    pec: PecOptions
    layer_noise_learning: LayerNoiseLearningOptions
    layer_noise_model: Any
    _FIELDS: ClassVar[dict[str, _Field]] = {
        "measure_mitigation": _leaf(_bool),
        "measure_noise_learning": _group(MeasureNoiseLearningOptions),
        "zne_mitigation": _leaf(_bool),
        "zne": _group(ZneOptions),
        "pec_mitigation": _leaf(_bool),
        "pec": _group(PecOptions),
        "layer_noise_learning": _group(LayerNoiseLearningOptions),
        "layer_noise_model": _leaf(_anything),
    }

    def _check(self) -> None:
        if self.measure_mitigation is not True and self.measure_noise_learning._set_items():
            raise InvalidOptionsError(
                "resilience.measure_noise_learning options are set, but resilience.measure_mitigation "
                "is not set to True"
            )
        if self.pec_mitigation is True and self.zne_mitigation is True:
            raise InvalidOptionsError(
                "resilience.pec_mitigation and resilience.zne_mitigation cannot both be True; set one to False"
            )


class TwirlingOptions(_Group):
    """Pauli twirling (IBM's ``TwirlingOptions``).

    Args:
        enable_gates: twirl 2-qubit gates (Estimator: on at resilience level 2).
        enable_measure: twirl measurements (Estimator: on at levels 1 and 2).
        num_randomizations: >= 1 or ``"auto"`` (default).
        shots_per_randomization: >= 1 or ``"auto"`` (default).
        strategy: one of :data:`TWIRLING_STRATEGIES` (default ``"active-accum"``).
    """

    _PATH = "twirling"
    enable_gates: bool | None
    enable_measure: bool | None
    num_randomizations: int | str | None
    shots_per_randomization: int | str | None
    strategy: str | None
    _FIELDS: ClassVar[dict[str, _Field]] = {
        "enable_gates": _leaf(_bool),
        "enable_measure": _leaf(_bool),
        "num_randomizations": _leaf(_int_or_auto),
        "shots_per_randomization": _leaf(_int_or_auto),
        "strategy": _leaf(_choice(*TWIRLING_STRATEGIES)),
    }


class ExecutionOptions(_Group):
    """Execution (IBM's ``ExecutionOptionsV2``).

    Args:
        init_qubits: reset the qubits before each shot (default ``True``).
        rep_delay: delay between shots, seconds, >= 0 (the backend's default).
    """

    _PATH = "execution"
    init_qubits: bool | None
    rep_delay: float | None
    _FIELDS: ClassVar[dict[str, _Field]] = {
        "init_qubits": _leaf(_bool),
        "rep_delay": _leaf(_real(low=0.0, inclusive=True)),
    }


class SamplerExecutionOptions(ExecutionOptions):
    """The Sampler's execution options (IBM's ``SamplerExecutionOptionsV2``).

    Args:
        init_qubits: reset the qubits before each shot (default ``True``).
        rep_delay: delay between shots, seconds, >= 0.
        meas_type: ``"classified"`` (bits, default), ``"kerneled"`` or ``"avg_kerneled"``.
    """

    meas_type: str | None
    _FIELDS: ClassVar[dict[str, _Field]] = {**ExecutionOptions._FIELDS, "meas_type": _leaf(_choice(*MEAS_TYPES))}


class EnvironmentOptions(_Group):
    """The job's environment (IBM's ``EnvironmentOptions``); these travel in the job's body
    (``log_level``, ``tags``, ``private``), not in its params.

    Args:
        log_level: one of :data:`LOG_LEVELS` (default ``"WARNING"``).
        callback: called with interim and final results (older qiskit-ibm-runtime); kept,
            reported as not applied.
        job_tags: tags for the job (a list of strings).
        private: the job's inputs and results are deleted once read (default ``False``).
    """

    _PATH = "environment"
    log_level: str
    callback: Callable[..., Any] | None
    job_tags: tuple[str, ...] | None
    private: bool
    _FIELDS: ClassVar[dict[str, _Field]] = {
        "log_level": _leaf(_choice(*LOG_LEVELS), "WARNING"),
        "callback": _leaf(_callable),
        "job_tags": _leaf(_strings),
        "private": _leaf(_bool, False),
    }


class SimulatorOptions(_Group):
    """Simulator options (IBM's ``SimulatorOptions``).

    Args:
        noise_model: a ``qiskit_aer.noise.NoiseModel``, an :class:`aqrt.noise.NoiseModel` or a
            dict; kept by reference (not copied per job).
        seed_simulator: seed of the simulator's draws (see :attr:`Options.seed`).
        coupling_map: a ``CouplingMap`` or ``[[control, target], ...]``.
        basis_gates: gate names.
    """

    _PATH = "simulator"
    noise_model: Any
    seed_simulator: int | None
    coupling_map: Any
    basis_gates: tuple[str, ...] | None
    _FIELDS: ClassVar[dict[str, _Field]] = {
        "noise_model": _leaf(_noise_model),
        "seed_simulator": _leaf(_int(0)),
        "coupling_map": _leaf(_coupling_map),
        "basis_gates": _leaf(_strings),
    }


# -- the roots ------------------------------------------------------------------------------------

_COMMON: Final[dict[str, _Field]] = {
    "optimization_level": _leaf(_int(0, 3)),
    "default_shots": _leaf(_int(1)),
    "seed": _leaf(_int(0)),
    "max_execution_time": _leaf(_duration),
    "dynamical_decoupling": _group(DynamicalDecouplingOptions),
    "twirling": _group(TwirlingOptions),
    "environment": _group(EnvironmentOptions),
    "simulator": _group(SimulatorOptions),
    "experimental": _leaf(_mapping),
}
_ORDER: Final = (
    "optimization_level",
    "resilience_level",
    "default_shots",
    "default_precision",
    "seed",
    "seed_estimator",
    "max_execution_time",
    "dynamical_decoupling",
    "resilience",
    "execution",
    "twirling",
    "environment",
    "simulator",
    "experimental",
)


def _ordered(fields: Mapping[str, _Field]) -> dict[str, _Field]:
    return {name: fields[name] for name in _ORDER if name in fields}


_ESTIMATOR_ONLY: Final[dict[str, _Field]] = {
    "resilience_level": _leaf(_int(0, 2)),
    "default_precision": _leaf(_real(low=0.0, inclusive=True)),
    "seed_estimator": _leaf(_int(0)),
    "resilience": _group(ResilienceOptions),
}


class Options(_Group):
    """Options of :class:`~aqrt.Estimator` and :class:`~aqrt.Sampler`: qiskit-ibm-runtime's V2
    options tree (the union of :class:`EstimatorOptions` and :class:`SamplerOptions`) plus
    aqrt's ``optimization_level`` and ``seed``.

    Set them by keyword (nested groups as dicts or objects), by attribute at any depth
    (``options.resilience.zne_mitigation = True``) or with :meth:`update`; every value is
    checked when it is set. Unset fields read ``None`` (IBM's ``Unset``; assigning ``None``
    unsets), and the default named below applies. A job carries a frozen :meth:`snapshot`, so
    changing options later never changes a submitted job.

    Args:
        optimization_level: aqrt's extension: ``None`` runs circuits as given; 0-3 runs Qiskit's
            preset pass manager of that level against the backend's target first.
        resilience_level: 0-2, error mitigation (Estimator). ``None``: the backend's default
            (0 on noiseless backends; IBM's default is 1).
        default_shots: Sampler: shots for PUBs without their own (default 1024, IBM's 4096).
            Estimator: when set, PUBs without a precision get ``1/sqrt(default_shots)`` (IBM:
            it overrides ``default_precision``).
        default_precision: Estimator precision for PUBs without their own (default 0.0, exact;
            IBM's is 1/sqrt(4096) and must be > 0).
        seed: aqrt's seed for every random draw of a job; see :attr:`seed` for how it relates to
            ``seed_estimator`` and ``simulator.seed_simulator``.
        seed_estimator: IBM's Estimator seed.
        max_execution_time: seconds (or ``"2h 30m"``) a job may run before it fails with
            ``JobTimeoutError``.
        dynamical_decoupling, resilience, execution, twirling, environment, simulator: the
            groups (:class:`DynamicalDecouplingOptions`, :class:`ResilienceOptions`,
            :class:`SamplerExecutionOptions`, :class:`TwirlingOptions`,
            :class:`EnvironmentOptions`, :class:`SimulatorOptions`), as objects or dicts.
        experimental: a dict, sent as IBM's client sends it (assign a new dict to change it:
            one changed in place does not reach the cached snapshot).

    Raises:
        InvalidOptionsError: an unknown name (at any depth) or a value out of range; the message
            names the full path and the allowed values.

    Example:
        >>> options = Options()
        >>> options.optimization_level = 2
        >>> options.resilience.zne_mitigation = True
        >>> options.replace(seed=7).seed
        7
    """

    optimization_level: int | None
    resilience_level: int | None
    default_shots: int | None
    default_precision: float | None
    seed_estimator: int | None
    max_execution_time: int | None
    dynamical_decoupling: DynamicalDecouplingOptions
    resilience: ResilienceOptions
    execution: SamplerExecutionOptions
    twirling: TwirlingOptions
    environment: EnvironmentOptions
    simulator: SimulatorOptions
    experimental: dict[str, Any] | None
    _FIELDS: ClassVar[dict[str, _Field]] = _ordered(
        {**_COMMON, **_ESTIMATOR_ONLY, "execution": _group(SamplerExecutionOptions)}
    )

    @property
    def seed(self) -> int | None:
        """The seed a job draws with: aqrt's ``seed`` if set, else ``seed_estimator``, else
        ``simulator.seed_simulator`` (``None``: fresh draws, from a generator the process seeds
        once from the OS's entropy). aqrt uses one seed for every draw of a job; IBM's two names
        are kept so that ported code and the wire keep them apart. Assigning sets aqrt's own
        ``seed``."""
        state = self.__dict__
        seed = state["seed"]
        if seed is None:
            seed = state.get("seed_estimator")
        if seed is None:
            seed = state["simulator"].__dict__["seed_simulator"]
        return cast("int | None", seed)

    @seed.setter
    def seed(self, value: int | None) -> None:
        _Group.__setattr__(self, "seed", value)

    def snapshot(self) -> Options:
        """The frozen copy a job carries (an :class:`Options`, whatever this class is): cached,
        and made afresh only after a change, so ``run()`` stays cheap."""
        snap = self.__dict__["_snapshot"]
        if snap is None:
            snap = _pristine_snapshot(type(self)) if self._is_pristine() else self._frozen_as(Options)
            self.__dict__["_snapshot"] = snap
        return cast(Options, snap)

    @property
    def frozen(self) -> bool:
        """Whether these are a job's frozen snapshot."""
        return bool(self.__dict__["_frozen"])

    def replace(self, **changes: Any) -> Any:
        """A copy with ``changes`` applied as :meth:`update` applies them; a snapshot's copy is
        frozen too."""
        clone = self.copy()
        clone.update(**changes)
        return clone.snapshot() if self.frozen else clone

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Any:
        """Options from a (nested) dict, rejecting names that are not options."""
        if not isinstance(values, Mapping):
            raise InvalidOptionsError(f"options must be Options or a dict, got {type(values).__name__}")
        return cls(**values)

    @classmethod
    def coerce(cls, value: Options | Mapping[str, Any] | None) -> Any:
        """A new ``cls`` from an ``Options`` (copied; another class's set values converted), a
        (nested) dict of options, or ``None`` (defaults)."""
        if value is None:
            return cls()
        if isinstance(value, Options):
            return value.copy() if type(value) is cls else cls(**value.to_dict(only_set=True))
        if isinstance(value, Mapping):
            return cls.from_mapping(value)
        raise InvalidOptionsError(f"options must be Options or a dict, got {type(value).__name__}")


_PRISTINE_SNAPSHOTS: dict[type[Options], Options] = {}


def _pristine_snapshot(kind: type[Options]) -> Options:
    """The snapshot of ``kind()`` never changed, made once per class and shared (frozen, its hash
    made): a primitive made per job (a fresh ``Estimator()`` each time) would otherwise copy
    the whole tree at every ``run()`` (~0.1 ms) and hash the copy on the worker (~0.08 ms)."""
    snap = _PRISTINE_SNAPSHOTS.get(kind)
    if snap is None:
        snap = kind()._frozen_as(Options)
        hash(snap)
        _PRISTINE_SNAPSHOTS[kind] = snap  # two threads racing here make two equal snapshots: harmless
    return snap


class EstimatorOptions(Options):
    """qiskit-ibm-runtime's ``EstimatorOptions`` (plus aqrt's ``optimization_level`` and
    ``seed``): what :class:`Options` holds but ``execution.meas_type``.
    """

    execution: SamplerExecutionOptions  # an ExecutionOptions here (no meas_type)
    _FIELDS: ClassVar[dict[str, _Field]] = _ordered(
        {**_COMMON, **_ESTIMATOR_ONLY, "execution": _group(ExecutionOptions)}
    )


class SamplerOptions(Options):
    """qiskit-ibm-runtime's ``SamplerOptions`` (plus aqrt's ``optimization_level`` and
    ``seed``): no ``resilience_level``, ``resilience``, ``default_precision`` nor
    ``seed_estimator`` (setting them raises, as on IBM); ``execution.meas_type`` is the
    Sampler's.
    """

    _FIELDS: ClassVar[dict[str, _Field]] = _ordered({**_COMMON, "execution": _group(SamplerExecutionOptions)})


def effective_shots(options: Options) -> int:
    """Shots of Sampler PUBs that set none: ``default_shots``, or :data:`DEFAULT_SHOTS`."""
    shots = options.default_shots
    return DEFAULT_SHOTS if shots is None else shots


def effective_precision(options: Options) -> float:
    """Precision of Estimator PUBs that set none: ``1/sqrt(default_shots)`` when
    ``default_shots`` is set (IBM: it overrides ``default_precision``), else
    ``default_precision``, else :data:`DEFAULT_PRECISION` (0.0, exact)."""
    shots = options.__dict__.get("default_shots")
    if shots is not None:
        return float(shots) ** -0.5
    precision = options.__dict__.get("default_precision")
    return DEFAULT_PRECISION if precision is None else float(precision)


def option_fields(options_class: type[Options]) -> dict[str, bool]:
    """Every option path of ``options_class`` (``"resilience.zne.noise_factors"``) -> whether it
    is a group."""
    out: dict[str, bool] = {}

    def walk(kind: type[_Group], prefix: str) -> None:
        for name, field in kind._FIELDS.items():
            out[prefix + name] = field.group is not None
            if field.group is not None:
                walk(field.group, f"{prefix}{name}.")

    walk(options_class, "")
    return out


def program_options_class(program: str) -> type[Options]:
    """:class:`EstimatorOptions` or :class:`SamplerOptions` for a program id."""
    return EstimatorOptions if program == "estimator" else SamplerOptions


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
