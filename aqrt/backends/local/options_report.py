"""The options a local backend accepts but cannot honour, named in the result's metadata.

An option is never silently ignored: what was requested and what was applied instead are
reported per job (``metadata["options_not_applied"]``, option path -> why). A backend that
honours more (a noisy one: resilience, twirling, the noise model) passes those paths as
``honoured``; a path is then left out, and so is everything under it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from ...job import Program
from ...options import Options

__all__ = ["options_not_applied"]

_NOISELESS = "the statevector backend is noiseless and exact"
# Set leaves the local backends honour whatever their value.
_HONOURED_ALWAYS = frozenset(
    {
        "optimization_level",
        "default_shots",
        "default_precision",
        "seed",
        "seed_estimator",
        "simulator.seed_simulator",
        "max_execution_time",
    }
)


def _shown(value: Any) -> str:
    if value is None or isinstance(value, bool | int | float | str | list | tuple):
        return repr(value)
    return f"a {type(value).__name__}"


def _why(path: str, value: Any, noisy: bool) -> str | None:
    """Why a set option is not applied, or None when it is (or changes nothing)."""
    requested = f"requested {_shown(value)}"
    if path in _HONOURED_ALWAYS:
        return None
    if path == "resilience_level":
        return f"{requested}, applied 0: {_NOISELESS}, so there is no error to mitigate" if value else None
    if path.startswith("resilience."):
        if path.endswith("_mitigation") and value is False:
            return None
        return f"{requested}, not applied: {_NOISELESS}, so there is no error to mitigate"
    if path.startswith("twirling."):
        if path.startswith("twirling.enable_") and value is False:
            return None
        if noisy:
            return f"{requested}, not applied: aqrt's noisy Sampler does not twirl (the Estimator's resilience does)"
        return f"{requested}, not applied: {_NOISELESS}; twirling would not change its results"
    if path.startswith("dynamical_decoupling."):
        if path == "dynamical_decoupling.enable" and value is False:
            return None
        if noisy:
            return f"{requested}, not applied: aqrt inserts no dynamical decoupling sequences"
        return f"{requested}, not applied: {_NOISELESS}; idle qubits do not decohere"
    if path == "execution.init_qubits":
        return None if value else f"{requested}, not applied: every shot starts from |0...0>"
    if path == "execution.meas_type":
        return None if value == "classified" else f"{requested}, applied 'classified': a simulator has no IQ data"
    if path == "execution.rep_delay":
        return f"{requested}, not applied: a simulator has no repetition delay"
    if path == "simulator.noise_model":
        return f"{requested}, not applied: this backend is noiseless"
    if path in ("simulator.coupling_map", "simulator.basis_gates"):
        return f"{requested}, not applied: circuits run on the backend's own target"
    if path.startswith("environment."):
        return f"{requested}, not applied: local jobs have no log level, tags, privacy or callbacks"
    if path == "experimental":
        return f"{requested}, not applied: aqrt has no experimental options"
    return f"{requested}, not applied"


def _leaves(values: dict[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for name, value in values.items():
        if isinstance(value, dict) and name != "experimental" and not name.endswith("noise_model"):
            yield from _leaves(value, f"{prefix}{name}.")
        else:
            yield prefix + name, value


@functools.lru_cache(maxsize=256)
def _report(program: Program, options: Options, honoured: frozenset[str], noisy: bool) -> tuple[tuple[str, str], ...]:
    not_applied = []
    for path, value in _leaves(options.to_dict(only_set=True)):
        if any(path == done or path.startswith(done + ".") for done in honoured):
            continue
        if program == "sampler" and (path == "resilience_level" or path.startswith("resilience.")):
            why: str | None = f"requested {_shown(value)}, not applied: error mitigation is an Estimator option"
        else:
            why = _why(path, value, noisy)
        if why is not None:
            not_applied.append((path, why))
    return tuple(not_applied)


def options_not_applied(
    program: Program, options: Options, *, honoured: Iterable[str] = (), noisy: bool = False
) -> dict[str, str] | None:
    """Option path -> why it was not applied, or None when every option set was honoured.

    Args:
        program: the job's program.
        options: the job's options (a snapshot; a mutable one is snapshotted here).
        honoured: option paths (``"resilience"``, ``"twirling.enable_gates"``) the calling
            backend honours beyond what the noiseless local backend does.
        noisy: the job ran with noise (the reasons then do not say the backend is noiseless).
    """
    report = _report(program, options.snapshot(), frozenset(honoured), noisy)
    return dict(report) if report else None
