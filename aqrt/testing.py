"""Test tools for code built on aqrt: a fake backend whose jobs take virtual time.

:class:`FakeBackend` implements the :class:`~aqrt.backends.Backend` contract with no engine: each
job sleeps on the event loop clock and returns one value per PUB. Under a virtual clock
(``looptime``, trio's ``autojump_clock``) a test can then assert exact instants of a session's
life: when jobs start and end, when the session expires.

Example:
    >>> from aqrt.testing import FakeBackend
    >>> backend = FakeBackend(duration=2.0)
    >>> backend.capabilities.max_session_time
    28800
"""

from __future__ import annotations

from typing import Any

import anyio
import numpy as np
from qiskit.primitives.containers import DataBin, PrimitiveResult, PubResult

from .backends.base import BackendCapabilities, ExecutionContext, Service
from .job import JobRequest, Program

__all__ = ["FakeBackend"]


class FakeBackend:
    """Each job sleeps ``duration`` seconds of loop time, then returns one ev per PUB.

    Args:
        name: the backend's name.
        duration: seconds of loop time each job takes.
        durations: a job's position in submission order -> its own duration.
        max_session_time: the backend's system maximum of a session's ``max_time``.
        fail_with: an exception every job raises after its duration.
        capabilities: the whole record, instead of ``max_session_time``.

    Attributes:
        log: (event, job_id, loop time) for each job's ``start``, ``end`` or ``stop``
            (cancelled or failed), so tests can assert exact instants.
        caches: the ``context.cache`` each job was given, in start order.
        running, max_running: jobs running now, and the most that ever ran at once.
    """

    def __init__(
        self,
        name: str = "fake_backend",
        *,
        duration: float = 1.0,
        durations: dict[int, float] | None = None,
        max_session_time: int = 8 * 3600,
        fail_with: BaseException | None = None,
        capabilities: BackendCapabilities | None = None,
    ) -> None:
        self._name = name
        self.duration = duration
        self.durations = durations or {}
        self._capabilities = capabilities or BackendCapabilities(max_session_time=max_session_time)
        self.fail_with = fail_with
        self.log: list[tuple[str, str, float]] = []
        self.caches: list[dict[Any, Any]] = []
        self._count = 0
        self.running = 0
        self.max_running = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def num_qubits(self) -> int:
        return 30

    @property
    def capabilities(self) -> BackendCapabilities:
        return self._capabilities

    @property
    def service(self) -> Service | None:
        return None

    def validate_pub(self, program: Program, pub: Any, index: int) -> None:
        pass

    async def execute(self, request: JobRequest, context: ExecutionContext) -> PrimitiveResult:
        position = self._count
        self._count += 1
        self.caches.append(context.cache)
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        self.log.append(("start", request.job_id, anyio.current_time()))
        try:
            await anyio.sleep(self.durations.get(position, self.duration))
            if self.fail_with is not None:
                raise self.fail_with
            context.cache.setdefault("filled_by", request.job_id)
        except BaseException:
            self.log.append(("stop", request.job_id, anyio.current_time()))
            raise
        finally:
            self.running -= 1
        self.log.append(("end", request.job_id, anyio.current_time()))
        results = [PubResult(DataBin(evs=np.float64(i), shape=())) for i in range(len(request.pubs))]
        return PrimitiveResult(results, metadata={"version": 2})

    def starts(self) -> list[float]:
        """Loop times at which jobs started, in order."""
        return [t for event, _, t in self.log if event == "start"]
