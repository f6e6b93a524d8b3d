"""What Estimator and Sampler share: choosing the session or backend, and submitting jobs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeAlias

from qiskit.providers import BackendV2

from ..backends.base import Backend
from ..errors import BackendMismatchError, InvalidInputError
from ..job import Job, Program
from ..options import Options, program_options_class
from ..session import Session, current_session
from ..session._scheduler import Scheduler

# A Qiskit BackendV2 that is not an aqrt Backend (FakeManilaV2()) runs as its device backend.
Mode: TypeAlias = Session | Backend | BackendV2 | str | None


class BasePrimitive:
    """Resolves where jobs go (session, or a backend in job mode) and submits them.

    Every job goes through one scheduler method, ``self._scheduler.submit(program, pubs,
    options)``: the session's scheduler, or in job mode one of the primitive's own that runs
    each job at once, with a fresh cache. ``run`` calls it directly (no hop: it is the hot path).
    """

    _program: ClassVar[Program]
    run: Callable[..., Job]  # defined by each primitive, with its own keyword (precision, shots)

    def __init__(
        self,
        mode: Mode = None,
        *,
        session: Session | None = None,
        options: Options | Mapping[str, Any] | None = None,
    ) -> None:
        if session is not None and mode is not None:
            raise InvalidInputError("pass either mode= or session=, not both")
        self._options = primitive_options(self._program, options)
        self._session, self._backend = _resolve_mode(session if session is not None else mode)
        self._scheduler = (
            self._session._scheduler if self._session is not None else Scheduler.for_job_mode(self._backend)
        )

    @property
    def options(self) -> Options:
        """This primitive's options, to change in place (``estimator.options.resilience_level =
        2``): an :class:`~aqrt.options.EstimatorOptions` / :class:`~aqrt.options.SamplerOptions`,
        or aqrt's :class:`~aqrt.Options` when one was given. A job takes a frozen snapshot of
        them at ``run()``; later changes apply to later jobs only."""
        return self._options

    @options.setter
    def options(self, value: Options | Mapping[str, Any]) -> None:
        self._options = primitive_options(self._program, value)

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

        Returns:
            The submitted :class:`~aqrt.Job`.

        Raises:
            SessionFullError: the session is full and its ``on_full`` is ``"error"``.
            Anything ``run`` raises (the room is given back then).
        """
        async with self._scheduler.reservation():
            return self.run(pubs, **kwargs)


def no_event_loop_error(kind: str) -> RuntimeError:
    """The error for ``run()`` called outside async code, naming the two ways out."""
    return RuntimeError(
        f"{kind}.run() needs a running event loop: aqrt's primitives are asynchronous. Call it inside "
        f"`async def` code (asyncio or trio) and `await` the job, or use aqrt.sync.{kind} in synchronous code "
        f"(scripts, notebooks): `from aqrt.sync import {kind}`"
    )


def v1_call_error(kind: str, keyword: str, v1_shape: str, v2_form: str, v1_kwargs: Mapping[str, Any]) -> TypeError:
    """The error for the V1 call shape (``run(circuits, observables, ...)``), showing the V2 form.

    qiskit-ibm-runtime's V2 primitives refuse that shape too, with Python's bare "takes 2
    positional arguments but 3 were given"; this one says what to write instead.
    """
    if v1_kwargs:
        names = ", ".join(repr(name) for name in v1_kwargs)
        opening = f"{kind}.run() got unexpected keyword argument(s) {names}: it takes a list of PUBs and {keyword}="
    else:
        opening = f"{kind}.run() takes one list of PUBs (Qiskit's V2 primitives)"
    return TypeError(f"{opening}; the V1 call shape `run({v1_shape})` is not supported. Write {v2_form}")


def primitive_options(program: Program, value: Options | Mapping[str, Any] | None) -> Options:
    """A primitive's own copy of ``value``: aqrt's :class:`~aqrt.Options` stays one (it holds
    both primitives' fields; what a program cannot use is reported per job, V1 style); anything
    else (a dict, ``None``, the other primitive's class) becomes the program's IBM class, whose
    unknown names raise (as IBM's do)."""
    if type(value) is Options:
        return value.copy()
    return program_options_class(program).coerce(value)


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
    if isinstance(mode, Backend | BackendV2):
        if implicit is not None:
            if mode.name != implicit.backend.name:
                raise BackendMismatchError(
                    f"this primitive is bound to backend {mode.name!r} inside session {implicit.session_id} "
                    f"on {implicit.backend.name!r}; a session has one backend"
                )
            return implicit, implicit.backend
        if isinstance(mode, Backend):
            return None, mode
        from ..backends.local import LocalService

        return None, LocalService().device(mode)
    raise InvalidInputError(f"mode must be a Session, Batch, backend or backend name, got {type(mode).__name__}")
