"""Execution spans: when the service took which slice of each PUB's data.

IBM results carry them in ``metadata["execution"]["execution_spans"]``. qiskit-ibm-runtime
decodes them into its own classes (``SliceSpan``, ``DoubleSliceSpan``, ``TwirledSliceSpan``,
``TwirledSliceSpanV2``, ``ExecutionSpans``); aqrt keeps them as plain values with the same wire
form, so a result's metadata survives ``decode`` and ``encode`` unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["SPAN_KINDS", "ExecutionSpan", "ExecutionSpans"]

#: Wire tag of each span kind -> the length of its per-PUB slice tuple.
SPAN_KINDS: Mapping[str, int] = {
    "ExecutionSpan": 3,  # (shape, start, stop): qiskit-ibm-runtime's SliceSpan
    "DoubleSliceSpan": 5,  # (shape, arg_start, arg_stop, shot_start, shot_stop)
    "TwirledSliceSpan": 6,  # (shape, at_start, arg_start, arg_stop, shot_start, shot_stop)
    "TwirledSliceSpanV2": 7,  # the same, then pub_shots
}


@dataclass(frozen=True)
class ExecutionSpan:
    """One span of execution: its ``start`` and ``stop``, and per PUB index its data slice.

    ``kind`` is the wire tag (a key of :data:`SPAN_KINDS`); ``data_slices[pub_index]`` is the
    wire tuple of that kind, its first item the PUB's data shape as a tuple, e.g.
    ``ExecutionSpan("ExecutionSpan", t0, t1, {0: ((2, 100), 0, 200)})``.
    """

    kind: str
    start: datetime
    stop: datetime
    data_slices: Mapping[int, tuple[Any, ...]]

    @property
    def pub_idxs(self) -> list[int]:
        """The PUB indices this span has data for, in order."""
        return sorted(self.data_slices)


@dataclass(frozen=True)
class ExecutionSpans:
    """The spans of one job, in the order the service listed them."""

    spans: tuple[ExecutionSpan, ...]

    def __len__(self) -> int:
        return len(self.spans)

    def __iter__(self) -> Iterator[ExecutionSpan]:
        return iter(self.spans)

    def __getitem__(self, index: int) -> ExecutionSpan:
        return self.spans[index]
