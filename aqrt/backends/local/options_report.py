"""The options a local backend accepts but cannot honour, named in the result's metadata.

An option is never silently ignored: what was requested and what was applied instead are
reported per job (``metadata["options_not_applied"]``).
"""

from __future__ import annotations

import functools

from ...job import Program
from ...options import Options

__all__ = ["options_not_applied"]


@functools.lru_cache(maxsize=256)
def _report(program: Program, options: Options) -> tuple[tuple[str, str], ...]:
    not_applied = []
    if options.resilience_level:
        not_applied.append(
            (
                "resilience_level",
                (
                    f"requested {options.resilience_level}, applied 0: the statevector backend is noiseless "
                    "and exact, so there is no error to mitigate"
                ),
            )
        )
    return tuple(not_applied)


def options_not_applied(program: Program, options: Options) -> dict[str, str] | None:
    """Option name -> why it was not applied, or None when every option was honoured."""
    report = _report(program, options)
    return dict(report) if report else None
