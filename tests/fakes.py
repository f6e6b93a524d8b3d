"""A FakeBackend whose jobs take virtual time, for session and job tests."""

from __future__ import annotations

from typing import Any

import anyio
import numpy as np
from qiskit.primitives.containers import DataBin, PrimitiveResult, PubResult

from aqrt.backends.base import ExecutionContext
from aqrt.job import JobRequest, Program


class FakeBackend:
    """Each job sleeps ``duration`` seconds of loop time per PUB, then returns one ev per PUB.

    ``durations`` maps a job's position in submission order to its own duration. ``log`` records
    (event, job_id, loop time) for start/end/cancel, so tests can assert exact instants.
    """

    def __init__(
        self,
        name: str = "fake_backend",
        *,
        duration: float = 1.0,
        durations: dict[int, float] | None = None,
        max_session_time: int = 8 * 3600,
        fail_with: BaseException | None = None,
    ) -> None:
        self._name = name
        self.duration = duration
        self.durations = durations or {}
        self._max_session_time = max_session_time
        self.fail_with = fail_with
        self.log: list[tuple[str, str, float]] = []
        self.caches: list[dict[Any, Any]] = []
        self._count = 0
        self.running = 0
        self.max_running = 0
        self.service = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def num_qubits(self) -> int:
        return 30

    @property
    def max_session_time(self) -> int:
        return self._max_session_time

    @property
    def interactive_timeout_configurable(self) -> bool:
        return True

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
        return [t for event, _, t in self.log if event == "start"]
