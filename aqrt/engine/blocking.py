"""Cache-blocked execution of a program on a wide state.

For wide states the cost is memory traffic, so ops are scheduled into *groups*: each group acts
on the ``LOW`` lowest qubits plus at most ``max_high`` higher ones. A group is applied chunk by
chunk: a chunk is the 2**(LOW + h) amplitudes that vary over the group's qubits (2**h
contiguous runs of 2**LOW amplitudes), gathered into a cache-sized buffer, updated by every op of
the group with the serial kernels, and written back, so one group costs one pass over the state
whatever its number of ops. Ops are scheduled by dependencies, not by position: an op joins the
current group when every earlier op on its qubits has been scheduled and its high qubits fit.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .ops import CTRL, BoundProgram, OpArrays

__all__ = ["LOW_QUBITS", "MAX_HIGH_QUBITS", "Group", "schedule_groups"]

LOW_QUBITS = 8  # contiguous runs of 2**8 amplitudes (4 KiB)
MAX_HIGH_QUBITS = 8  # chunk of at most 2**16 amplitudes (1 MiB at complex128); tuned on n = 20-24


@dataclasses.dataclass
class Group:
    """Ops applied together, chunk by chunk; ``ops`` are in the chunk's local qubit numbering."""

    low: int
    high: np.ndarray  # global indices of the high qubits, local qubit low + b <- high[b]
    standalone: bool  # one op too wide for a chunk: ``ops`` are global, run with amplitude-parallel kernels
    ops: OpArrays


def _support(ops: OpArrays, j: int) -> list[int]:
    # Every qubit an op reads, controls included (a CTRL op lists its controls after the target).
    return [int(q) for q in ops.qubits[j, : ops.widths[j]]]


def schedule_groups(program: BoundProgram, low: int = LOW_QUBITS, max_high: int = MAX_HIGH_QUBITS) -> list[Group]:
    """Partition the program's ops into groups (see module docstring), keeping dependencies."""
    n = program.num_qubits
    low = min(low, n)
    max_high = max(0, min(max_high, n - low - 1)) if n > low else 0
    supports = [_support(program.ops, j) for j in range(program.num_ops)]
    per_qubit: list[list[int]] = [[] for _ in range(n)]
    for j, support in enumerate(supports):
        for q in support:
            per_qubit[q].append(j)
    position = [0] * n  # next unscheduled op index into per_qubit[q]
    scheduled = [False] * program.num_ops
    remaining = program.num_ops
    groups: list[Group] = []
    while remaining:
        high: list[int] = []
        members: list[int] = []
        progress = True
        while progress:
            progress = False
            for q in range(n):
                while position[q] < len(per_qubit[q]):
                    j = per_qubit[q][position[q]]
                    if scheduled[j] or not _ready(j, supports[j], per_qubit, position):
                        break
                    needed = [p for p in supports[j] if p >= low and p not in high]
                    if len(high) + len(needed) > max_high:
                        break
                    high.extend(needed)
                    members.append(j)
                    scheduled[j] = True
                    remaining -= 1
                    for p in supports[j]:
                        position[p] += 1
                    progress = True
        if not members:  # the next op needs more high qubits than a chunk holds: run it alone
            j = next(
                j
                for q in range(n)
                if position[q] < len(per_qubit[q])
                for j in [per_qubit[q][position[q]]]
                if _ready(j, supports[j], per_qubit, position)
            )
            scheduled[j] = True
            remaining -= 1
            for p in supports[j]:
                position[p] += 1
            groups.append(_standalone_group(program.ops, j))
            continue
        groups.append(_make_group(program.ops, low, sorted(high), sorted(members)))
    return groups


def _ready(j: int, support: list[int], per_qubit: list[list[int]], position: list[int]) -> bool:
    return all(position[q] < len(per_qubit[q]) and per_qubit[q][position[q]] == j for q in support)


def _standalone_group(ops: OpArrays, j: int) -> Group:
    index = np.array([j], dtype=np.int64)
    return Group(low=0, high=np.zeros(0, dtype=np.int64), standalone=True, ops=ops.select(index))


def _make_group(ops: OpArrays, low: int, high: list[int], members: list[int]) -> Group:
    local = {q: q for q in range(low)}
    local.update({q: low + b for b, q in enumerate(high)})
    index = np.array(members, dtype=np.int64)
    group_ops = ops.select(index)
    for row, j in enumerate(members):
        for c in range(ops.widths[j]):
            group_ops.qubits[row, c] = local[int(ops.qubits[j, c])]
    for row, j in enumerate(members):
        if ops.kinds[j] == CTRL:
            mask, value = int(ops.aux[j, 0]), int(ops.aux[j, 1])
            new_mask = new_value = 0
            for q, lq in local.items():
                if (mask >> q) & 1:
                    new_mask |= 1 << lq
                    new_value |= ((value >> q) & 1) << lq
            group_ops.aux[row] = (new_mask, new_value)
    return Group(low=low, high=np.array(high, dtype=np.int64), standalone=False, ops=group_ops)
