"""Which optional dependencies (aqrt's extras) a command needs, and the line that says how to
install the missing ones, printed before any work is done."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

__all__ = ["missing_extras"]

# module -> the extra of aqrt that installs it
_EXTRA_OF = {
    "tqdm": "cli",
    "matplotlib": "cli",
    "qiskit_qasm3_import": "cli",
    "distributed": "dask",
    "qiskit_ibm_runtime": "devices",
    "qiskit_aer": "noise",
    "pennylane_lightning": "bench",
    "qsimcirq": "bench",
}


def missing_extras(what: str, modules: Sequence[str]) -> str | None:
    """``None`` when every module in ``modules`` (optional ones aqrt's extras install) can be
    imported; else what ``what`` (e.g.
    ``"aqrt sweep --plot"``) needs and the command that installs it, for the user to read
    before any work is done."""
    missing = [module for module in modules if not _importable(module)]
    if not missing:
        return None
    extras = sorted({_EXTRA_OF[module] for module in missing})
    spec = ",".join(extras)
    return (
        f"{what} needs {', '.join(missing)} (the extra{'s' if len(extras) > 1 else ''} aqrt[{spec}]): "
        f"in a clone of aqrt run  pip install -e '.[{spec}]'"
    )


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
