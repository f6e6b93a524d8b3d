"""A fault-injecting test server speaking enough of the IBM Runtime REST API (127.0.0.1 only).

It serves IAM tokens (short-lived, revocable), backends, jobs whose results are computed by aqrt's
local engine (the reference engine: exact, small circuits), and sessions with IBM's rules
(accepting_jobs, cancel, the first-job-cancelled rule). Faults are scripted per route::

    server.inject("POST", "/api/v1/jobs", Fault.reset_after())      # commit, then drop the line
    server.inject("GET", r"/api/v1/jobs/[^/]+", Fault.status(503), times=3)

Every request is recorded (method, path, loop time, JSON body) so tests assert what the client
actually sent, and when.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import re
from typing import Any, Self

from aiohttp import web
from qiskit.primitives.containers import PrimitiveResult

from aqrt._concurrency import CancelFlag
from aqrt.backends.base import ExecutionContext
from aqrt.backends.local import LocalBackend
from aqrt.job import JobRequest
from aqrt.options import Options
from aqrt.wire import encode, pubs_from_wire

API = "/api/v1"
CRN = "crn:v1:bluemix:public:quantum-computing:us-east:a/abc123:inst-1::"
API_KEY = "test-api-key"
BODY = web.RequestKey("body", object)


@dataclasses.dataclass
class Fault:
    """One scripted misbehaviour (use the constructors)."""

    kind: str
    status: int = 0
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    body: str = ""
    seconds: float = 0.0

    @classmethod
    def http(cls, status: int, *, retry_after: str | None = None, body: str = "") -> Fault:
        """Answer ``status`` without running the handler (nothing committed)."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return cls("status", status=status, headers=headers, body=body or f'{{"errors": [{{"code": {status}}}]}}')

    @classmethod
    def http_after(cls, status: int) -> Fault:
        """Run the handler (commit), then answer ``status`` anyway."""
        return cls("status_after", status=status, body=f'{{"errors": [{{"code": {status}}}]}}')

    @classmethod
    def reset_before(cls) -> Fault:
        """Drop the connection before the handler runs (nothing committed)."""
        return cls("reset_before")

    @classmethod
    def reset_after(cls) -> Fault:
        """Run the handler (commit), then drop the connection instead of answering."""
        return cls("reset_after")

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Run the handler (commit), then wait ``seconds`` before answering."""
        return cls("slow", seconds=seconds)

    @classmethod
    def truncated(cls) -> Fault:
        """Run the handler (commit), then send half the body under the full Content-Length."""
        return cls("truncated")

    @classmethod
    def unauthorized(cls) -> Fault:
        """Refuse the request's token as expired (401) and forget it server-side."""
        return cls("unauthorized")


@dataclasses.dataclass
class Recorded:
    method: str
    path: str
    time: float
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str]


@dataclasses.dataclass
class ServerJob:
    id: str
    program: str
    backend: str
    session_id: str | None
    tags: list[str]
    cost: int | None
    created: float
    status: str = "Queued"
    reason: str | None = None
    reason_code: int | None = None
    result_text: str | None = None
    task: asyncio.Task[None] | None = None
    params: dict[str, Any] = dataclasses.field(default_factory=dict)

    def reply(self) -> dict[str, Any]:
        state: dict[str, Any] = {"status": self.status}
        if self.reason:
            state["reason"] = self.reason
        if self.reason_code is not None:
            state["reason_code"] = self.reason_code
        return {
            "id": self.id,
            "backend": self.backend,
            "program": {"id": self.program},
            "state": state,
            "status": self.status,
            "session_id": self.session_id,
            "tags": list(self.tags),
            "cost": self.cost,
        }

    @property
    def final(self) -> bool:
        return self.status in ("Completed", "Failed", "Cancelled")


@dataclasses.dataclass
class ServerSession:
    id: str
    mode: str
    backend: str | None
    instance: str | None
    max_ttl: int | None
    accepting_jobs: bool = True
    state: str = "open"
    jobs: list[str] = dataclasses.field(default_factory=list)


class FaultServer:
    """The server; ``async with FaultServer() as server`` starts it on an ephemeral port.

    Args:
        token_ttl: seconds an IAM token lives (loop clock).
        queue_time / run_time: loop seconds a job spends Queued, then Running.
        backends: name -> (qubits, queue_length).
    """

    def __init__(
        self,
        *,
        token_ttl: float = 3600.0,
        queue_time: float = 0.0,
        run_time: float = 1.0,
        backends: dict[str, tuple[int, int]] | None = None,
    ) -> None:
        self.token_ttl = token_ttl
        self.queue_time = queue_time
        self.run_time = run_time
        self.backends = backends or {"fake_alpha": (5, 3), "fake_beta": (7, 1)}
        self.requests: list[Recorded] = []
        self.jobs: dict[str, ServerJob] = {}
        self.sessions: dict[str, ServerSession] = {}
        self.tokens: dict[str, float] = {}  # token -> expiry (loop time)
        self.tokens_issued = 0
        self._faults: list[tuple[str, re.Pattern[str], Fault, list[int]]] = []
        self._ids = itertools.count(1)
        self._engine = LocalBackend("aqrt_reference", engine="reference")
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- control -------------------------------------------------------------------------------

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return self.base + API

    def inject(self, method: str, path: str, fault: Fault, *, times: int = 1) -> None:
        """Apply ``fault`` to the next ``times`` requests matching ``method`` and ``path`` (regex)."""
        self._faults.append((method.upper(), re.compile(path), fault, [times]))

    def revoke_tokens(self) -> None:
        """Expire every issued token (the next API call gets 401)."""
        self.tokens.clear()

    def calls(self, method: str, path: str) -> list[Recorded]:
        """Recorded requests matching ``method`` and ``path`` (a regex, full match)."""
        pattern = re.compile(path)
        return [r for r in self.requests if r.method == method and pattern.fullmatch(r.path)]

    async def __aenter__(self) -> Self:
        app = web.Application(middlewares=[self._record, self._faulty, self._auth])
        app.add_routes(
            [
                web.post("/identity/token", self._token),
                web.get(API + "/backends", self._backends),
                web.get(API + "/backends/{name}/configuration", self._configuration),
                web.get(API + "/backends/{name}/status", self._status),
                web.get(API + "/backends/{name}/properties", self._properties),
                web.post(API + "/jobs", self._create_job),
                web.get(API + "/jobs", self._list_jobs),
                web.get(API + "/jobs/{id}", self._get_job),
                web.get(API + "/jobs/{id}/results", self._job_results),
                web.post(API + "/jobs/{id}/cancel", self._cancel_job),
                web.get(API + "/jobs/{id}/metrics", self._job_metrics),
                web.post(API + "/sessions", self._create_session),
                web.get(API + "/sessions/{id}", self._get_session),
                web.patch(API + "/sessions/{id}", self._patch_session),
                web.delete(API + "/sessions/{id}/close", self._cancel_session),
            ]
        )
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        tasks = [job.task for job in self.jobs.values() if job.task is not None and not job.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    # -- middlewares ---------------------------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            body = json.loads(raw) if request.content_type == "application/json" else dict(await request.post())
        self.requests.append(
            Recorded(
                request.method,
                request.path,
                self._now(),
                {k: request.query.getall(k) for k in request.query},
                body,
                dict(request.headers),
            )
        )
        request[BODY] = body
        return await handler(request)

    @web.middleware
    async def _faulty(self, request: web.Request, handler: Any) -> web.StreamResponse:
        fault = self._take_fault(request)
        if fault is None:
            return await handler(request)
        if fault.kind == "status":
            return web.Response(
                status=fault.status, headers=fault.headers, text=fault.body, content_type="application/json"
            )
        if fault.kind == "unauthorized":
            self.revoke_tokens()
            return await handler(request)  # the auth middleware now refuses it
        if fault.kind == "reset_before":
            _drop(request)
            return web.Response(status=500)  # never reaches the client
        response = await handler(request)
        if fault.kind == "status_after":
            return web.Response(status=fault.status, text=fault.body, content_type="application/json")
        if fault.kind == "reset_after":
            _drop(request)
            return response
        if fault.kind == "slow":
            await asyncio.sleep(fault.seconds)
            return response
        if fault.kind == "truncated":
            assert isinstance(response, web.Response) and response.body is not None
            full = bytes(response.body)  # type: ignore[arg-type]
            stream = web.StreamResponse(status=response.status)
            stream.content_type = response.content_type
            stream.content_length = len(full)
            await stream.prepare(request)
            await stream.write(full[: len(full) // 2])
            _drop(request)
            return stream
        raise AssertionError(fault.kind)

    def _take_fault(self, request: web.Request) -> Fault | None:
        for method, pattern, fault, left in self._faults:
            if left[0] > 0 and method == request.method and pattern.fullmatch(request.path):
                left[0] -= 1
                return fault
        return None

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith(API):
            header = request.headers.get("Authorization", "")
            token = header.removeprefix("Bearer ")
            expiry = self.tokens.get(token)
            if not header.startswith("Bearer ") or expiry is None or self._now() >= expiry:
                return _error(401, "token expired or invalid")
            if request.headers.get("Service-CRN") != CRN:
                return _error(403, "no access to this instance")
            if not request.headers.get("IBM-API-Version"):
                return _error(400, "IBM-API-Version header missing")
        return await handler(request)

    # -- IAM -----------------------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        form = request[BODY] or {}
        if form.get("grant_type") != "urn:ibm:params:oauth:grant-type:apikey":
            return _error(400, "unsupported grant_type")
        if form.get("apikey") != API_KEY:
            return _error(400, "Provided API key could not be found.")
        self.tokens_issued += 1
        token = f"jwt-{self.tokens_issued}"
        self.tokens[token] = self._now() + self.token_ttl
        return web.json_response(
            {
                "access_token": token,
                "refresh_token": "not_supported",
                "token_type": "Bearer",
                "expires_in": self.token_ttl,
            }
        )

    # -- backends ------------------------------------------------------------------------------

    async def _backends(self, request: web.Request) -> web.Response:
        devices = [
            {"name": name, "status": {"name": "online"}, "queue_length": queue, "qubits": qubits}
            for name, (qubits, queue) in self.backends.items()
        ]
        return web.json_response({"devices": devices})

    def _backend_or_404(self, request: web.Request) -> tuple[str, int]:
        name = request.match_info["name"]
        if name not in self.backends:
            raise web.HTTPNotFound(text=json.dumps({"errors": [{"message": f"no backend {name}"}]}))
        return name, self.backends[name][0]

    async def _configuration(self, request: web.Request) -> web.Response:
        name, qubits = self._backend_or_404(request)
        return web.json_response(
            {"backend_name": name, "n_qubits": qubits, "basis_gates": ["cx", "rz", "sx", "x"], "simulator": True}
        )

    async def _status(self, request: web.Request) -> web.Response:
        name, _ = self._backend_or_404(request)
        return web.json_response({"state": True, "status": "active", "length_queue": self.backends[name][1]})

    async def _properties(self, request: web.Request) -> web.Response:
        name, _ = self._backend_or_404(request)
        return web.json_response({"backend_name": name, "qubits": []})

    # -- jobs ----------------------------------------------------------------------------------

    async def _create_job(self, request: web.Request) -> web.Response:
        body = request[BODY]
        program = body.get("program_id")
        if program not in ("estimator", "sampler"):
            return _error(400, f"unknown program_id {program!r}")
        backend = body.get("backend")
        if backend not in self.backends:
            return _error(400, f"unknown backend {backend!r}")
        session_id = body.get("session_id")
        session = self.sessions.get(session_id) if session_id else None
        if session_id and session is None:
            return _error(404, f"no session {session_id}")
        if session is not None and not session.accepting_jobs:
            return _error(409, f"session {session_id} is not accepting jobs")
        params = body.get("params") or {}
        try:  # QPY loading reads Qiskit's user config file: off the loop
            pubs = await asyncio.get_running_loop().run_in_executor(None, pubs_from_wire, program, params.get("pubs"))
        except Exception as exc:
            return _error(400, f"bad pubs: {exc}")
        job = ServerJob(
            id=f"srv-job-{next(self._ids)}",
            program=program,
            backend=backend,
            session_id=session_id,
            tags=list(body.get("tags") or []),
            cost=body.get("cost"),
            created=self._now(),
            params=params,
        )
        self.jobs[job.id] = job
        if session is not None:
            session.jobs.append(job.id)
        job.task = asyncio.get_running_loop().create_task(self._run_job(job, pubs, session))
        return web.json_response({"id": job.id, "backend": backend})

    async def _run_job(self, job: ServerJob, pubs: list[Any], session: ServerSession | None) -> None:
        try:
            await asyncio.sleep(self.queue_time)
            if session is not None and session.jobs and session.jobs[0] != job.id:
                first = self.jobs[session.jobs[0]]
                if first.status == "Cancelled":
                    job.status, job.reason = "Failed", "the first job of the session was cancelled"
                    return
            job.status = "Running"
            try:
                async with asyncio.timeout(job.cost):  # max execution time counts from here
                    await asyncio.sleep(self.run_time)
            except TimeoutError:
                job.status, job.reason, job.reason_code = "Cancelled", "ran longer than its cost", 1305
                return
            options = job.params.get("options") or {}
            seed = options.get("seed_estimator", (options.get("simulator") or {}).get("seed_simulator"))
            request = JobRequest(
                job_id=job.id,
                program=job.program,  # type: ignore[arg-type]
                pubs=tuple(pubs),
                options=Options(seed=seed, default_shots=options.get("default_shots", 1024)),
                session_id=job.session_id,
            )
            result: PrimitiveResult = await self._engine.execute(
                request, ExecutionContext(cache={}, cancel_requested=CancelFlag())
            )
            job.result_text = encode(result)
            job.status = "Completed"
        except asyncio.CancelledError:
            if not job.final:
                job.status = "Cancelled"
            raise
        except Exception as exc:  # the job fails, the server goes on
            job.status, job.reason = "Failed", f"{type(exc).__name__}: {exc}"

    def _job_or_404(self, request: web.Request) -> ServerJob:
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            raise web.HTTPNotFound(text=json.dumps({"errors": [{"message": "job not found"}]}))
        return job

    async def _get_job(self, request: web.Request) -> web.Response:
        return web.json_response(self._job_or_404(request).reply())

    async def _list_jobs(self, request: web.Request) -> web.Response:
        tags = request.query.getall("tags", [])
        session_id = request.query.get("session_id")
        pending = request.query.get("pending")
        limit = int(request.query.get("limit", "200"))
        jobs = [
            j
            for j in reversed(self.jobs.values())
            if all(t in j.tags for t in tags)
            and (session_id is None or j.session_id == session_id)
            and (pending is None or (pending == "true") == (not j.final))
        ]
        return web.json_response({"jobs": [j.reply() for j in jobs[:limit]], "count": len(jobs)})

    async def _job_results(self, request: web.Request) -> web.Response:
        job = self._job_or_404(request)
        if job.result_text is None:
            return _error(409, f"job {job.id} is {job.status}; no results")
        return web.Response(text=job.result_text, content_type="application/json")

    async def _cancel_job(self, request: web.Request) -> web.Response:
        job = self._job_or_404(request)
        if job.final:
            return _error(409, f"job {job.id} is already {job.status}")
        self._cancel(job)
        return web.Response(status=204)

    def _cancel(self, job: ServerJob) -> None:
        job.status = "Cancelled"
        if job.task is not None:
            job.task.cancel()

    async def _job_metrics(self, request: web.Request) -> web.Response:
        job = self._job_or_404(request)
        return web.json_response({"timestamps": {"created": job.created}, "usage": {"quantum_seconds": 0}})

    # -- sessions ------------------------------------------------------------------------------

    async def _create_session(self, request: web.Request) -> web.Response:
        body = request[BODY] or {}
        mode = body.get("mode")
        if mode not in ("dedicated", "batch"):
            return _error(400, f"mode must be dedicated or batch, got {mode!r}")
        session = ServerSession(
            id=f"srv-session-{next(self._ids)}",
            mode=mode,
            backend=body.get("backend"),
            instance=body.get("instance"),
            max_ttl=body.get("max_ttl"),
        )
        self.sessions[session.id] = session
        return web.json_response({"id": session.id, "mode": mode, "backend_name": session.backend})

    def _session_or_404(self, request: web.Request) -> ServerSession:
        session = self.sessions.get(request.match_info["id"])
        if session is None:
            raise web.HTTPNotFound(text=json.dumps({"errors": [{"message": "session not found"}]}))
        return session

    async def _get_session(self, request: web.Request) -> web.Response:
        session = self._session_or_404(request)
        return web.json_response(
            {
                "id": session.id,
                "mode": session.mode,
                "backend_name": session.backend,
                "state": session.state,
                "accepting_jobs": session.accepting_jobs,
                "max_ttl": session.max_ttl,
            }
        )

    async def _patch_session(self, request: web.Request) -> web.Response:
        session = self._session_or_404(request)
        if (request[BODY] or {}).get("accepting_jobs") is False:
            session.accepting_jobs = False
        return web.Response(status=204)

    async def _cancel_session(self, request: web.Request) -> web.Response:
        session = self._session_or_404(request)
        session.accepting_jobs = False
        session.state = "closed"
        for job_id in session.jobs:
            job = self.jobs[job_id]
            if not job.final:
                self._cancel(job)
        return web.Response(status=204)


def _drop(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"errors": [{"message": message, "code": status}]}, status=status)
