"""What Estimator and Sampler share: choosing the session or backend, and submitting jobs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._concurrency import spawn_detached
from .._runner import execute_job
from ..backends.base import Backend
from ..errors import BackendMismatchError, InvalidInputError
from ..job import Job, JobRequest, Program, new_job_id
from ..options import Options
from ..session import Session, current_session

Mode = Session | Backend | str | None


class BasePrimitive:
    """Resolves where jobs go (session, or a backend in job mode) and submits them."""

    _program: Program

    def __init__(
        self,
        mode: Mode = None,
        *,
        session: Session | None = None,
        options: Options | Mapping[str, Any] | None = None,
    ) -> None:
        if session is not None and mode is not None:
            raise InvalidInputError("pass either mode= or session=, not both")
        self._options = Options.coerce(options)
        self._session, self._backend = _resolve_mode(session if session is not None else mode)

    @property
    def options(self) -> Options:
        return self._options

    @options.setter
    def options(self, value: Options | Mapping[str, Any]) -> None:
        self._options = Options.coerce(value)

    @property
    def session(self) -> Session | None:
        """The session jobs go to, or None in job mode."""
        return self._session

    @property
    def backend(self) -> Backend:
        return self._backend

    async def submit(self, pubs: Any, **kwargs: Any) -> Job:
        """``run(pubs, **kwargs)``, first waiting for room if the session bounds its unfinished
        jobs (``max_pending``); with ``on_full="error"`` a full session raises instead.

        Raises:
            SessionFullError: the session is full and its ``on_full`` is ``"error"``.
        """
        session = self._session
        if session is None or session._max_pending is None:
            return self.run(pubs, **kwargs)  # type: ignore[attr-defined, no-any-return]
        await session.reserve()
        try:
            return self.run(pubs, **kwargs)  # type: ignore[attr-defined, no-any-return]
        except BaseException:
            session._unreserve()
            raise

    def _submit(self, pubs: Sequence[Any]) -> Job:
        session = self._session
        options = self._options
        if session is not None:
            session._check_accepting()
            session._check_job_limits(options.max_execution_time)
        for index, pub in enumerate(pubs):
            self._backend.validate_pub(self._program, pub, index)
        request = JobRequest(
            job_id=new_job_id(),
            program=self._program,
            pubs=tuple(pubs),
            options=options,
            session_id=session.session_id if session is not None else None,
        )
        job = Job(request, backend_name=self._backend.name)
        if session is not None:
            session._submit(job, checked=True)
        else:
            backend = self._backend

            async def run_job_mode() -> None:
                await execute_job(job, backend, {})

            spawn_detached(run_job_mode, name=f"aqrt job {job.job_id}")
        return job


def _resolve_mode(mode: Mode) -> tuple[Session | None, Backend]:
    if isinstance(mode, Session):
        return mode, mode.backend
    implicit = current_session()
    if mode is None:
        if implicit is not None:
            return implicit, implicit.backend
        from ..backends.local import LocalService

        return None, LocalService().backend()
    if isinstance(mode, str):
        if implicit is not None:
            if mode == implicit.backend.name:  # also spares a remote service a lookup
                return implicit, implicit.backend
            # A remote service that has not fetched the backend answers None: names compare only.
            service = implicit.service
            backend = service.known_backend(mode) if service is not None else None
            if backend is None or backend.name != implicit.backend.name:
                raise BackendMismatchError(
                    f"this primitive asks for backend {mode!r} inside session {implicit.session_id} on "
                    f"{implicit.backend.name!r}; a session has one backend"
                )
            return implicit, implicit.backend
        from ..backends.local import LocalService

        return None, LocalService().backend(mode)
    if isinstance(mode, Backend):
        if implicit is not None:
            if mode.name != implicit.backend.name:
                raise BackendMismatchError(
                    f"this primitive is bound to backend {mode.name!r} inside session {implicit.session_id} "
                    f"on {implicit.backend.name!r}; a session has one backend"
                )
            return implicit, implicit.backend
        return None, mode
    raise InvalidInputError(f"mode must be a Session, Batch, backend or backend name, got {type(mode).__name__}")
