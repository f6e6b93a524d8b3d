"""How long a client may take, and how many may be connected: ``aqrt serve`` against slow and
greedy clients.

Three settings of :class:`~aqrt.server.config.ServerConfig` hold here:

- ``header_timeout``: a connection must deliver a request's line and headers within it, counted
  from the connection's start and, on a kept-alive connection, from the previous response; past
  it the connection is closed (no response: there is no request to answer). This is aiohttp's
  own ``keepalive_timeout`` of the request handler (:func:`request_handler_args`, given to
  :class:`aiohttp.web.Application` as ``handler_args``): aiohttp starts that timer when the
  connection is made and again after each response, does not restart it on data, and closes the
  connection when it fires while the handler still waits for a complete request head, which is
  exactly a header deadline. A connection whose request is being handled is left alone. As it
  lives in the app, it holds however the app is served (``aqrt serve``, :func:`serve_in_thread
  <aqrt.server.serve_in_thread>`, or :func:`~aqrt.server.create_app` with an ``AppRunner``).
- ``body_timeout``: a handler reads the body with :func:`read_body`, which answers 408 (an
  IBM-style JSON error, ``Connection: close``) past it. aiohttp then reads and drops what is left
  of that body for at most ``min(body_timeout, 10 s)`` (its "lingering" time) and closes.
- ``max_connections``: counted where connections are accepted, by :class:`LimitedSite` (an
  aiohttp site over a listening socket, used by ``aqrt serve`` and ``serve_in_thread``). It
  accepts one connection at a time and closes one beyond the limit at once, before the next
  accept, so a flood of connections cannot use up the process's file descriptors (when they
  run out, accepting fails for every client, and asyncio's own accept loop logs every failed
  accept, with a traceback, many times a second). At start the limit is held below the
  ``RLIMIT_NOFILE`` soft limit less the descriptors open then and :data:`FD_RESERVE` more; the
  soft limit is raised towards the hard one first when that is needed. A log line says the limit
  in force; refusals, and failed accepts should descriptors run out anyway, are logged at most
  once a minute (a failed accept is retried 0.1 s later). An app served by a plain
  :class:`aiohttp.web.TCPSite` has the timeouts but no connection limit.

Example::

    runner = web.AppRunner(create_app(config))
    await runner.setup()
    await LimitedSite(runner, listen("127.0.0.1", 8765), max_connections=config.max_connections).start()
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Final

from aiohttp import web

from ..wire.runtime_api import CODE_BAD_REQUEST
from .config import ServerConfig
from .errors import ApiError
from .keys import SERVER_KEY

__all__ = [
    "FD_RESERVE",
    "ConnectionLimiter",
    "LimitedSite",
    "connection_limit",
    "listen",
    "read_body",
    "request_handler_args",
]

logger = logging.getLogger("aqrt.server")

#: File descriptors kept free of client connections beyond those open when serving starts: for
#: the database's journal files, logging, a refused connection, and files the engine opens.
FD_RESERVE: Final = 64
_AIOHTTP_LINGERING = 10.0  # aiohttp's default: how long an unread body is drained after a response
_REFUSAL_NOTICE_SECONDS = 60.0


def request_handler_args(config: ServerConfig) -> dict[str, float]:
    """The keyword arguments of aiohttp's request handler (``Application(handler_args=...)``)
    that put ``config``'s header and body deadlines on every connection."""
    return {
        "keepalive_timeout": config.header_timeout,
        "lingering_time": min(config.body_timeout, _AIOHTTP_LINGERING),
    }


async def read_body(request: web.Request, *, max_bytes: int | None = None) -> bytes:
    """The request's body, read within the app's ``body_timeout`` (counted from this call, made
    as the handler starts).

    With ``max_bytes``, a body longer than that is refused as it arrives (413), before it is
    held; otherwise the app's ``max_body_bytes`` bounds it (aiohttp's ``client_max_size``: 413)
    and the bytes are kept, so :meth:`aiohttp.web.Request.read` and ``json()`` return them again.

    Raises:
        ApiError: 408 when the body is not in within ``body_timeout``; 413 beyond ``max_bytes``.
    """
    timeout = request.app[SERVER_KEY].config.body_timeout
    try:
        async with asyncio.timeout(timeout):
            if max_bytes is None:
                return await request.read()
            return await _read_at_most(request, max_bytes)
    except TimeoutError:
        # IBM's API has no code of its own for this: a bad request's
        raise ApiError(408, f"the request body did not arrive within {timeout:g} s", code=CODE_BAD_REQUEST) from None


async def _read_at_most(request: web.Request, max_bytes: int) -> bytes:
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise ApiError(413, f"the request body is too large: this request takes at most {max_bytes} bytes")
    body = bytearray()
    while chunk := await request.content.readany():
        body += chunk
        if len(body) > max_bytes:
            raise ApiError(413, f"the request body is too large: this request takes at most {max_bytes} bytes")
    return bytes(body)


def listen(host: str, port: int, *, backlog: int = 128) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0: a free port), bound now so that the port is
    known before serving."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    return socket.create_server((host, port), family=family, backlog=backlog)


def connection_limit(max_connections: int, *, reserve: int = FD_RESERVE) -> int:
    """The open connections this process can take: ``max_connections``, unless the
    ``RLIMIT_NOFILE`` soft limit, less the descriptors open now and ``reserve`` more, is lower
    even after raising the soft limit towards the hard one (which this does, for the whole
    process). Logs the outcome."""
    try:
        import resource
    except ImportError:  # no such limit to read (Windows)
        return max_connections
    kept = _open_descriptors() + reserve
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + kept
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if raised > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
                soft = raised
            except (OSError, ValueError) as exc:
                logger.warning("aqrt serve: cannot raise the open-file limit from %d to %d: %s", soft, raised, exc)
    limit = max_connections if soft == resource.RLIM_INFINITY else max(1, min(max_connections, soft - kept))
    if limit < max_connections:
        logger.warning(
            "aqrt serve: at most %d open connections (max_connections %d, but the open-file limit is %d "
            "and %d descriptors are kept for the database, the engine and what is open; raise it with ulimit -n)",
            limit,
            max_connections,
            soft,
            kept,
        )
    else:
        shown = "unlimited" if soft == resource.RLIM_INFINITY else str(soft)
        logger.info("aqrt serve: at most %d open connections (open-file limit %s)", limit, shown)
    return limit


def _open_descriptors() -> int:
    """How many file descriptors this process has open (0 where the system does not say)."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(folder))
        except OSError:
            continue
    return 0


class ConnectionLimiter:
    """A protocol factory that counts the connections made by ``factory`` (aiohttp's
    ``runner.server``) while they are open, and says when ``limit`` are (:attr:`full`)."""

    def __init__(self, factory: web.Server, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a connection limit must be at least 1, got {limit}")
        self.limit = limit
        self.open = 0
        """Connections open now."""
        self.refused = 0
        """Connections closed at once because ``limit`` were open."""
        self._factory = factory
        self._refusals = _RareLog()

    @property
    def full(self) -> bool:
        """Whether ``limit`` connections are open."""
        return self.open >= self.limit

    def __call__(self) -> asyncio.Protocol:
        protocol = _Counted(self, self._factory())
        self.open += 1
        return protocol

    def note_refusal(self) -> None:
        """Count one connection closed because the limit was reached (logged at most once a minute)."""
        self.refused += 1
        self._refusals.log("aqrt serve: %d connections open (max_connections); closed %d new one(s) at once", self.open)

    def _closed(self) -> None:
        self.open -= 1


class _RareLog:
    """A warning given at most once per :data:`_REFUSAL_NOTICE_SECONDS`, with how many times its
    event happened since the last one (the count is the message's last argument)."""

    def __init__(self) -> None:
        self._logged_at: float | None = None
        self._unlogged = 0

    def log(self, message: str, *args: object) -> None:
        self._unlogged += 1
        now = asyncio.get_running_loop().time()
        if self._logged_at is None or now - self._logged_at >= _REFUSAL_NOTICE_SECONDS:
            logger.warning(message, *args, self._unlogged)
            self._logged_at = now
            self._unlogged = 0


class _Counted(asyncio.Protocol):
    """aiohttp's protocol for one connection, counted open until the connection is lost."""

    def __init__(self, limiter: ConnectionLimiter, inner: asyncio.Protocol) -> None:
        self._limiter: ConnectionLimiter | None = limiter
        self._inner = inner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._limiter is not None:  # counted down once, whatever calls this
            self._limiter._closed()
            self._limiter = None
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


_ACCEPT_RETRY_SECONDS = 0.1


class _AcceptLoop(asyncio.AbstractServer):
    """Accepts connections on ``sock`` one at a time and hands each to ``limiter`` (aiohttp's
    protocol, counted), or closes it at once when the limit is reached.

    Not :meth:`asyncio.loop.create_server`: it accepts up to ``backlog`` sockets in a burst and
    makes their protocols a loop turn later, so a file descriptor is taken for every one of them
    before any count could refuse it; and when descriptors run out it logs every failed accept of
    the burst, each with a traceback. Here at most one accepted socket waits, a refusal frees its
    descriptor before the next accept, and a failed accept is logged at most once a minute.
    """

    def __init__(self, sock: socket.socket, limiter: ConnectionLimiter) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._limiter = limiter
        self._loop = asyncio.get_running_loop()
        self._failures = _RareLog()
        self._serving = True
        self._accepting = self._loop.create_task(self._accept_forever())
        self._accepting.add_done_callback(self._ended)

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening socket (what aiohttp's ``runner.addresses`` reads)."""
        return (self._sock,) if self._serving else ()

    async def _accept_forever(self) -> None:
        while True:
            try:
                conn, _ = await self._loop.sock_accept(self._sock)
            except ConnectionAbortedError:
                continue
            except OSError as exc:  # out of descriptors (EMFILE) or memory, most likely: wait a little
                self._failures.log("aqrt serve: cannot accept a connection: %s (%d time(s))", exc)
                await asyncio.sleep(_ACCEPT_RETRY_SECONDS)
                continue
            if self._limiter.full:
                conn.close()
                self._limiter.note_refusal()
                continue
            try:
                await self._loop.connect_accepted_socket(self._limiter, conn)
            except OSError:  # the client left already
                conn.close()
            except Exception:
                conn.close()
                logger.exception("aqrt serve: cannot serve a new connection")

    def _ended(self, accepting: asyncio.Task[None]) -> None:
        # The socket is closed only once the loop has ended, never while asyncio still watches it
        # (also when the loop was cancelled before it first ran).
        self._serving = False
        self._sock.close()
        if not accepting.cancelled() and accepting.exception() is not None:
            logger.error("aqrt serve: stopped accepting connections", exc_info=accepting.exception())

    def close(self) -> None:
        """Stop accepting; the listening socket closes as the accept loop ends."""
        self._accepting.cancel()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving and not self._accepting.cancelling()

    async def start_serving(self) -> None:
        """Serving starts with the object."""

    async def serve_forever(self) -> None:
        raise NotImplementedError("serve through aiohttp's runner")

    async def wait_closed(self) -> None:
        """Wait until the accept loop has ended and the socket is closed."""
        await asyncio.wait([self._accepting])


class LimitedSite(web.BaseSite):
    """An aiohttp site serving ``runner``'s app on the listening socket ``sock`` with at most
    ``max_connections`` open connections (fewer if the open-file limit needs it:
    :func:`connection_limit`). Started and stopped like :class:`aiohttp.web.SockSite`; the
    socket is closed when the site stops."""

    __slots__ = ("_limiter", "_max_connections", "_sock")

    def __init__(self, runner: web.BaseRunner, sock: socket.socket, *, max_connections: int) -> None:
        super().__init__(runner)
        self._sock = sock
        self._max_connections = max_connections
        self._limiter: ConnectionLimiter | None = None

    @property
    def name(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"http://{host}:{port}"

    @property
    def limiter(self) -> ConnectionLimiter | None:
        """The connection count (None until started)."""
        return self._limiter

    async def start(self) -> None:
        """Serve on the socket; the limit is worked out (and logged) now."""
        await super().start()
        server = self._runner.server
        if server is None:
            raise RuntimeError("call runner.setup() before starting a site")
        limit = await asyncio.to_thread(connection_limit, self._max_connections)  # it reads /proc
        self._limiter = ConnectionLimiter(server, limit)
        self._server = _AcceptLoop(self._sock, self._limiter)
