"""The memory guard: how many bytes a job's state needs, and whether this machine has them.

Sizes are computed from what a circuit declares (its width) before anything is allocated, so a
circuit too wide for this machine is refused at ``run()`` with the figures, never by an
out-of-memory error halfway through a job.
"""

from __future__ import annotations

import os

__all__ = [
    "ALWAYS_FITS",
    "PEAK_BYTES_PER_AMPLITUDE",
    "available_memory",
    "format_bytes",
    "qubits_that_fit",
    "state_bytes",
    "total_memory",
]

# Bytes per amplitude a job holds at its peak: the numba engine keeps one complex128 state plus,
# when sampling, probabilities and their cumulative sum (8 + 8); Statevector keeps ~3 states.
PEAK_BYTES_PER_AMPLITUDE = {"numba": 32, "reference": 48}
ALWAYS_FITS = 64 << 20  # smaller jobs skip the free-memory query


def state_bytes(num_qubits: int, bytes_per_amplitude: int) -> int:
    """Peak bytes of a ``num_qubits``-wide job."""
    return bytes_per_amplitude * (1 << num_qubits)


def qubits_that_fit(memory: int, bytes_per_amplitude: int) -> int:
    """The widest circuit whose peak fits in ``memory`` bytes (at least 1)."""
    width = 1
    while state_bytes(width + 1, bytes_per_amplitude) <= memory:
        width += 1
    return width


def total_memory() -> int:
    """This machine's physical memory in bytes (8 GiB where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 << 30


def available_memory() -> int | None:
    """Bytes of memory free now, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return None


def format_bytes(count: int) -> str:
    """``count`` bytes for a message: ``"256.0 MiB"``, ``"2.0 EiB"``; past YiB, a power of two: ``"2^127 bytes"``."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"2^{count.bit_length() - 1} bytes" if count & (count - 1) == 0 else f"about 2^{count.bit_length()} bytes"
