"""``BackendStatus``: what ``backend.status()`` answers.

Qiskit 2 removed ``qiskit.providers.models.BackendStatus``; this record keeps its field names
(and qiskit-ibm-runtime's, whose fake devices answer the same five fields), so code that reads
``backend.status().operational`` or ``.pending_jobs`` works unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["BackendStatus"]


@dataclasses.dataclass(frozen=True)
class BackendStatus:
    """A backend's status.

    Attributes:
        backend_name: the backend's name.
        backend_version: its version string.
        operational: whether it accepts and runs jobs.
        pending_jobs: jobs waiting at the backend. A local backend keeps no queue (jobs wait
            in their session), so it always answers 0.
        status_msg: ``"active"`` when operational, as IBM's devices say.
    """

    backend_name: str
    backend_version: str
    operational: bool
    pending_jobs: int
    status_msg: str

    def __post_init__(self) -> None:
        if self.pending_jobs < 0:
            raise ValueError(f"pending_jobs must be >= 0, got {self.pending_jobs}")

    def to_dict(self) -> dict[str, Any]:
        """The five fields as a dict (the Runtime API's backend status document)."""
        return dataclasses.asdict(self)
