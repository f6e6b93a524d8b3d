"""The op-kernel table: which kernel applies an op of each kind, serially and amplitude-parallel.

:data:`OP_KERNELS` lists every gate-application kernel exactly once, as a row (op kind, variant,
op width it is specialised for, kernel, calling convention). Everything that needs to go from an
op to a kernel reads this table:

- :func:`apply_op` (and :func:`select`), the non-jitted dispatcher: the engine runs an op too
  wide for a cache block through it with the parallel rows (:mod:`aqrt.engine.simulate`);
- :mod:`aqrt.engine._warmup`, which compiles every row for a state precision (the serial rows
  with the ``ops`` tier, the parallel ones with the ``wide`` tier, see :mod:`aqrt.engine.kernels`);
- ``tests/engine/test_compare_kernels.py``, which runs every row against the other rows of its
  kind and against a slow numpy oracle.

The one place that cannot read it is the jitted interpreter :func:`~.interpreter.run_program`
(and its small twin :func:`~.interpreter.run_basic_program`, the rows of the common ops):
numba dispatches statically inside jitted code (first-class function values would cost an
indirect call per op and block inlining), so its if/elif is the serial rows written out once
more. The compare tests check, for every kind and width, that a one-op program through
``run_program`` (and ``run_basic_program``) gives what :func:`select` (serial) gives, so they
cannot drift.

A row's ``call`` adapts the uniform op description (state, qubits, entries, aux) to the kernel's
own arguments: ``qubits`` is the op's contiguous int64 qubit array, ``entries`` its
``entry_count(kind, width)`` buffer entries (see :mod:`aqrt.engine.ops`), ``aux`` its aux row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from ..ops import CTRL, CX, DENSE, DIAG, KIND_NAMES, PERM, SEL, OpArrays, entry_count
from .apply import apply_1q, apply_2q, apply_controlled, apply_cx, apply_dense, apply_diag, apply_perm, apply_select
from .apply_par import (
    apply_1q_par,
    apply_controlled_par,
    apply_dense_par,
    apply_diag_par,
    apply_perm_par,
    apply_select_par,
)

__all__ = ["OP_KERNELS", "OpKernel", "apply_op", "select"]

Call = Callable[[Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray], None]


def _one_qubit(kernel: Any, state: np.ndarray, qubits: np.ndarray, entries: np.ndarray, aux: np.ndarray) -> None:
    kernel(state, int(qubits[0]), entries.reshape(2, 2))


def _two_qubit(kernel: Any, state: np.ndarray, qubits: np.ndarray, entries: np.ndarray, aux: np.ndarray) -> None:
    kernel(state, int(qubits[0]), int(qubits[1]), entries.reshape(4, 4))


def _matrix(kernel: Any, state: np.ndarray, qubits: np.ndarray, entries: np.ndarray, aux: np.ndarray) -> None:
    d = 1 << qubits.shape[0]
    kernel(state, qubits, entries.reshape(d, d))


def _diagonal(kernel: Any, state: np.ndarray, qubits: np.ndarray, entries: np.ndarray, aux: np.ndarray) -> None:
    kernel(state, qubits, entries)


def _controlled(kernel: Any, state: np.ndarray, qubits: np.ndarray, entries: np.ndarray, aux: np.ndarray) -> None:
    kernel(state, int(qubits[0]), int(aux[0]), int(aux[1]), entries.reshape(2, 2))


def _select(kernel: Any, state: np.ndarray, qubits: np.ndarray, entries: np.ndarray, aux: np.ndarray) -> None:
    kernel(state, int(qubits[0]), int(qubits[1]), entries[:4].reshape(2, 2), entries[4:].reshape(2, 2))


def _cx(kernel: Any, state: np.ndarray, qubits: np.ndarray, entries: np.ndarray, aux: np.ndarray) -> None:
    kernel(state, int(qubits[0]), int(qubits[1]))


def _cx_as_controlled(kernel: Any, state: np.ndarray, qubits: np.ndarray, entries: np.ndarray, aux: np.ndarray) -> None:
    control_bit = 1 << int(qubits[0])
    kernel(state, int(qubits[1]), control_bit, control_bit, np.array([[0, 1], [1, 0]], dtype=state.dtype))


@dataclasses.dataclass(frozen=True)
class OpKernel:
    """One row of the table: ``kernel`` applies ops of ``kind`` (of ``width`` qubits only, or of
    any width the kind allows when ``width`` is None), amplitude-parallel when ``parallel``."""

    kind: int
    parallel: bool
    width: int | None
    kernel: Any  # a numba Dispatcher; its arguments differ per kernel, ``call`` knows them
    call: Call

    @property
    def name(self) -> str:
        return f"{KIND_NAMES[self.kind]}:{self.kernel.__name__}"

    def apply(self, state: np.ndarray, qubits: np.ndarray, entries: np.ndarray, aux: np.ndarray) -> None:
        """Apply the op (qubits, entries, aux) to ``state`` in place with this row's kernel."""
        self.call(self.kernel, state, qubits, entries, aux)


OP_KERNELS: tuple[OpKernel, ...] = (
    OpKernel(DENSE, False, 1, apply_1q, _one_qubit),
    OpKernel(DENSE, False, 2, apply_2q, _two_qubit),
    OpKernel(DENSE, False, None, apply_dense, _matrix),
    OpKernel(DIAG, False, None, apply_diag, _diagonal),
    OpKernel(PERM, False, None, apply_perm, _matrix),
    OpKernel(CTRL, False, None, apply_controlled, _controlled),
    OpKernel(CX, False, 2, apply_cx, _cx),
    OpKernel(SEL, False, 2, apply_select, _select),
    OpKernel(DENSE, True, 1, apply_1q_par, _one_qubit),
    OpKernel(DENSE, True, None, apply_dense_par, _matrix),
    OpKernel(DIAG, True, None, apply_diag_par, _diagonal),
    OpKernel(PERM, True, None, apply_perm_par, _matrix),
    OpKernel(CTRL, True, None, apply_controlled_par, _controlled),
    OpKernel(CX, True, 2, apply_controlled_par, _cx_as_controlled),
    OpKernel(SEL, True, 2, apply_select_par, _select),
)

_BY_KEY = {(row.kind, row.parallel, row.width): row for row in OP_KERNELS}
if len(_BY_KEY) != len(OP_KERNELS):
    raise AssertionError("OP_KERNELS has two rows for the same kind, variant and width")


def select(kind: int, width: int, parallel: bool) -> OpKernel:
    """The row that applies an op of ``kind`` on ``width`` qubits: the one specialised for that
    width if there is one, else the kind's any-width row."""
    row = _BY_KEY.get((kind, parallel, width)) or _BY_KEY.get((kind, parallel, None))
    if row is None:
        raise ValueError(f"no {'parallel' if parallel else 'serial'} kernel for a {width}-qubit op of kind {kind}")
    return row


def apply_op(
    state: np.ndarray,
    ops: OpArrays,
    j: int,
    static_buffer: np.ndarray,
    binding_buffer: np.ndarray,
    *,
    parallel: bool,
) -> None:
    """Apply op ``j`` of ``ops`` to ``state`` in place (entries read as ``run_program`` reads them)."""
    kind = int(ops.kinds[j])
    width = int(ops.widths[j])
    qubits = np.ascontiguousarray(ops.qubits[j, :width])
    buffer = static_buffer if ops.sources[j] == 0 else binding_buffer
    start = int(ops.offsets[j])
    entries = buffer[start : start + entry_count(kind, width)]
    select(kind, width, parallel).apply(state, qubits, entries, ops.aux[j])
