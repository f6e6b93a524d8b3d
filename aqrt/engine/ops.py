"""What a lowered program is: op kinds, the op-array record and the bound program (numpy only).

Conventions (shared by lowering, scheduling and every kernel):

- Qubit q is bit q of an amplitude index (Qiskit's little-endian order). A k-qubit op on
  ``qubits = (q_0, ..., q_{k-1})`` has q_j as bit j of its matrix's row/column index.
- Op j acts on ``qubits[j, :widths[j]]``; its entries are ``entry_count(kind, width)`` numbers
  from ``offsets[j]`` in the program's static buffer (``sources[j] == 0``) or in the binding's
  buffer (``sources[j] == 1``). Dense and permutation ops store the (2**k, 2**k) matrix row-major,
  diagonal ops the 2**k diagonal entries, CTRL ops the 2x2 base matrix, CX ops nothing.
- A CTRL op lists its target first, then its controls; ``aux[j] = (control mask, control value)``
  in global qubit bits: the 2x2 matrix acts where ``(index & mask) == value``. A CX op's qubits
  are (control, target). A SEL op's qubits are (target, control) and its 8 entries two 2x2s,
  row-major: the one acting on the target's pairs where the control bit is 0, then the one where
  it is 1 (lowering makes one of a 1-qubit gate followed by a CX or CZ on its qubit, so the
  controlled gate costs no pass of its own). ``aux`` is unused (zero) for the other kinds.

This module imports only numpy, so :mod:`aqrt.engine.lowering` can use it without numba.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "CTRL",
    "CX",
    "DENSE",
    "DIAG",
    "KIND_NAMES",
    "PERM",
    "SEL",
    "WIDE_QUBITS",
    "BoundProgram",
    "OpArrays",
    "OpTuple",
    "SweepAngles",
    "entry_count",
    "runs_wide",
]

DENSE = 0  # dense k-qubit matrix
DIAG = 1  # diagonal: the entries are the 2**k diagonal entries
PERM = 2  # one non-zero per row/column (X, CX, SWAP, CCX, Y, ...): dense storage, permuted apply
CTRL = 3  # multi-controlled 1-qubit gate: 2x2 base matrix; aux = (control mask, control value)
CX = 4  # controlled-X: qubits = (control, target); no entries are read
SEL = 5  # one of two 2x2s on the target, picked by a control bit: qubits = (target, control); 8 entries

KIND_NAMES = {DENSE: "dense", DIAG: "diag", PERM: "perm", CTRL: "ctrl", CX: "cx", SEL: "sel"}

WIDE_QUBITS = 17  # from this width on, states run one binding at a time, cache-blocked (aqrt.engine.simulate)
# From this width on, a job's single binding runs as wide states do (cache-blocked, parallel over
# amplitudes) instead of serially: on 2 cores a 10-layer ansatz's binding ran 1.4x faster at
# n = 13, 1.6x at 14, 2.2x at 16 (0.8x at 12, where the serial kernels stay).
ONE_BINDING_WIDE_QUBITS = 13


def runs_wide(num_qubits: int, bindings: int) -> bool:
    """Whether ``bindings`` bindings of a ``num_qubits``-qubit state run one at a time,
    cache-blocked and parallel over amplitudes: wide states, and a single binding from
    ``ONE_BINDING_WIDE_QUBITS`` qubits on (aqrt.engine.simulate runs them so; the backends load
    the ``wide`` tier for them)."""
    return num_qubits >= WIDE_QUBITS or (bindings == 1 and num_qubits >= ONE_BINDING_WIDE_QUBITS)


def entry_count(kind: int, width: int) -> int:
    """How many buffer entries an op of ``kind`` on ``width`` qubits reads."""
    if kind == CX:
        return 0
    if kind == CTRL:
        return 4
    if kind == SEL:
        return 8
    if kind == DIAG:
        return 1 << width
    return 1 << (2 * width)


# The OpArrays fields in order, as the plain tuple the kernels take (see OpArrays.as_tuple).
OpTuple = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class OpArrays(NamedTuple):
    """The ops of a program as flat int64 arrays, one row per op (see the module docstring).

    Kernels take them as one argument, :meth:`as_tuple`: numba accepts a tuple of arrays as a
    record, and types a plain tuple at each call in about half the time of a NamedTuple (measured
    0.9 against 1.6 us per call), which counts in per-binding serial calls.
    """

    kinds: np.ndarray  # (ops,) op kind
    qubits: np.ndarray  # (ops, widest op) op j's qubits are qubits[j, :widths[j]]
    widths: np.ndarray  # (ops,)
    aux: np.ndarray  # (ops, 2) CTRL: (control mask, control value)
    sources: np.ndarray  # (ops,) 0: entries in the static buffer, 1: in the binding's buffer
    offsets: np.ndarray  # (ops,) first entry in that buffer

    @property
    def num_ops(self) -> int:
        return int(self.kinds.shape[0])

    def as_tuple(self) -> OpTuple:
        """The arrays as a plain tuple, in field order: the form every kernel takes."""
        return (self.kinds, self.qubits, self.widths, self.aux, self.sources, self.offsets)

    def select(self, index: np.ndarray) -> OpArrays:
        """The ops at ``index`` (an int64 array), as fresh contiguous arrays."""
        return OpArrays(*(np.ascontiguousarray(array[index]) for array in self))


@dataclasses.dataclass(frozen=True)
class SweepAngles:
    """A sweep's bindings as the sweep kernels take them (:mod:`aqrt.engine.kernels.sweeps`):
    every binding's angle columns (half angles for rotations), whose cosines and sines the
    recipes make a binding's entries from (built by :mod:`aqrt.engine.lowering`, ``SweepPlan``)."""

    angles: np.ndarray  # (bindings, columns) float64
    row_width: int  # entries per binding
    recipes: np.ndarray  # (recipes, 5) int64: kind, offset, first factor, factor count, width
    factors: np.ndarray  # (factors, 4) int64: gate code, angle columns (or a constants row)
    constants: np.ndarray  # (rows, 4) complex128: static factors' entries


class BoundProgram:
    """A lowered circuit bound to parameter values: its ops and their entries, ready to run.

    A sweep's program may carry its bindings as angles instead (``angles``, see
    :class:`SweepAngles`): the sweep kernels make each binding's entries inside the kernel, and
    ``binding_buffers`` is made from them (by ``materialize``) only when something reads it.
    """

    def __init__(
        self,
        num_qubits: int,
        ops: OpArrays,
        static_buffer: np.ndarray,
        binding_buffers: np.ndarray | None = None,
        cache: dict[str, Any] | None = None,
        *,
        angles: SweepAngles | None = None,
        materialize: Callable[[], np.ndarray] | None = None,
    ) -> None:
        if binding_buffers is None and (angles is None or materialize is None):
            raise ValueError("a bound program needs its binding buffers, or angles and a way to make them")
        self.num_qubits = num_qubits
        self.ops = ops
        self.static_buffer = static_buffer
        self.cache: dict[str, Any] = {} if cache is None else cache  # derived from the ops alone, e.g. the schedule
        self.angles = angles
        self._binding_buffers = binding_buffers
        self._materialize = materialize

    @property
    def binding_buffers(self) -> np.ndarray:
        """(bindings, entries): the entries of each binding (entries may be 0)."""
        if self._binding_buffers is None:
            assert self._materialize is not None
            self._binding_buffers = self._materialize()
        return self._binding_buffers

    @property
    def materialized(self) -> bool:
        """Whether ``binding_buffers`` is made (always, for a program not bound from angles)."""
        return self._binding_buffers is not None

    @property
    def num_ops(self) -> int:
        return self.ops.num_ops

    @property
    def dtype(self) -> np.dtype:
        """The precision of the state this program runs on (complex128 or complex64)."""
        return self.static_buffer.dtype

    @property
    def num_bindings(self) -> int:
        if self._binding_buffers is None and self.angles is not None:
            return int(self.angles.angles.shape[0])
        return int(self.binding_buffers.shape[0])
