"""The HTTP transport: one aiohttp session, timeouts, retries, and the one status -> error map.

Every call has a per-attempt timeout and an overall deadline, both on the event loop clock (so
retries and backoff run in virtual time under a test clock). What is retried:

- 5xx responses and connection failures: capped exponential backoff with jitter;
- 429: after ``Retry-After`` seconds when the server gives it, else as above;
- 401 once, after the token is refreshed.

A request that *may have reached the server* (a timeout, a reset after sending, a cut-short
body, a 5xx) is repeated blindly only if it is idempotent. A non-idempotent one is repeated
only after its ``recover`` hook (for job submission: look the job up by its idempotency tag)
found nothing; otherwise the failure is raised.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime as dt
import email.utils
import json
import math
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, Protocol

import aiohttp

from ...errors import (
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
    RequestTimeoutError,
    RuntimeConnectionError,
    RuntimeRequestError,
    ServerError,
)

__all__ = ["Expect", "RetryPolicy", "Transport", "error_for_status"]

Expect = Literal["json", "text", "none"]
_BODY_EXCERPT = 500
# Gateway errors: the request did not reach (or was not processed by) the application.
_NOT_PROCESSED_5XX = frozenset({502, 503, 504})


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How failed calls are retried.

    Attempt ``n`` (0-based) waits ``min(max_delay, base_delay * 2**n)``, reduced by up to
    ``jitter`` of itself at random ("equal jitter": spread retries of many clients apart while
    keeping a floor). ``Retry-After`` overrides the backoff for 429 and 503, up to
    ``max_retry_after``.
    """

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 20.0
    jitter: float = 0.5
    max_retry_after: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_delay < 0 or self.max_delay < 0 or not 0 <= self.jitter <= 1:
            raise ValueError(f"invalid retry policy {self!r}")

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """The wait before retry number ``attempt + 1``."""
        capped = min(self.max_delay, self.base_delay * 2.0**attempt)
        return capped * (1.0 - self.jitter * rng.random())


class TokenSource(Protocol):
    """Authentication as the transport sees it (``auth.IAMAuth``)."""

    async def headers(self, transport: Transport) -> dict[str, str]: ...

    def invalidate(self, headers: Mapping[str, str]) -> None: ...


def error_for_status(
    status: int, *, method: str, url: str, body: str | None, retry_after: float | None = None
) -> RuntimeRequestError:
    """The typed error for an HTTP error status: the single place statuses are mapped."""
    if status in (401, 403):
        kind: type[RuntimeRequestError] = AuthenticationError
    elif status == 404:
        kind = NotFoundError
    elif status == 409:
        kind = ConflictError
    elif status == 429:
        kind = RateLimitedError
    elif status >= 500:
        kind = ServerError
    elif status == 408:
        kind = RequestTimeoutError
    else:
        kind = InvalidRequestError
    excerpt = (body or "")[:_BODY_EXCERPT]
    error = kind(
        f"{method} {url} -> HTTP {status}" + (f": {excerpt}" if excerpt else ""),
        status=status,
        method=method,
        url=url,
        body=excerpt or None,
    )
    if isinstance(error, RateLimitedError):
        error.retry_after = retry_after
    return error


@dataclasses.dataclass
class _Failure:
    error: RuntimeRequestError
    maybe_processed: bool  # the server may have acted on the request
    wait: float | None = None  # server-advised delay (Retry-After)


class Transport:
    """One ``aiohttp.ClientSession`` for every call of a service (created on first use).

    Args:
        retry: the :class:`RetryPolicy`.
        request_timeout: seconds for one attempt (connect, send, full body).
        deadline: seconds for a whole call, retries and waits included.
        rng: the jitter source (seed it for reproducible waits).
    """

    def __init__(
        self,
        *,
        retry: RetryPolicy | None = None,
        request_timeout: float = 60.0,
        deadline: float = 600.0,
        rng: random.Random | None = None,
        connection_limit: int = 100,
        user_agent: str = "aqrt",
    ) -> None:
        self.retry = retry or RetryPolicy()
        self.request_timeout = request_timeout
        self.deadline = deadline
        self._rng = rng or random.Random()
        self._connection_limit = connection_limit
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self.waits: collections.deque[float] = collections.deque(maxlen=1000)  # recent retry waits (s)

    def _client(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("the RuntimeService is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connection_limit),
                headers={"User-Agent": self._user_agent},
                # Timeouts are ours (asyncio.timeout per attempt); aiohttp's would double them.
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

    async def close(self) -> None:
        """Close the aiohttp session; later calls fail."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def request(
        self,
        method: str,
        url: str,
        *,
        auth: TokenSource | None = None,
        json_body: Any = None,
        data: Mapping[str, str] | None = None,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
        expect: Expect = "json",
        idempotent: bool | None = None,
        recover: Callable[[], Awaitable[Any]] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Send one logical call, retrying per the module's rules; returns the parsed body.

        Args:
            idempotent: may be repeated blindly; default True for every method but POST.
            recover: for a non-idempotent call, run before repeating it after a failure that
                may have been processed; a non-None result is returned as the call's result.

        Raises:
            RuntimeRequestError: the mapped error of the last attempt (``status`` kept).
        """
        loop = asyncio.get_running_loop()
        if idempotent is None:
            idempotent = method.upper() != "POST"
        per_attempt = timeout if timeout is not None else self.request_timeout
        deadline = loop.time() + self.deadline
        body = json.dumps(json_body) if json_body is not None else None
        attempt = 0
        refreshed = False
        while True:
            request_headers = dict(headers or {})
            if body is not None:
                request_headers["Content-Type"] = "application/json"
            if expect == "json":
                request_headers.setdefault("Accept", "application/json")
            if auth is not None:
                request_headers.update(await auth.headers(self))
            remaining = deadline - loop.time()
            outcome = await self._attempt(
                method, url, request_headers, body, data, params, expect, min(per_attempt, max(remaining, 0.0))
            )
            if not isinstance(outcome, _Failure):
                return outcome
            status = outcome.error.status
            if status == 401 and auth is not None and not refreshed:
                auth.invalidate(request_headers)  # one refresh, then the same call again
                refreshed = True
                continue
            if not _retryable(outcome):
                raise outcome.error
            if outcome.maybe_processed and not idempotent:
                if recover is None:
                    raise outcome.error
                found = await recover()
                if found is not None:
                    return found
            attempt += 1
            if attempt >= self.retry.max_attempts:
                raise outcome.error
            if outcome.wait is not None:
                wait = min(outcome.wait, self.retry.max_retry_after)
            else:
                wait = self.retry.backoff(attempt - 1, self._rng)
            if loop.time() + wait >= deadline:
                raise outcome.error
            self.waits.append(wait)
            await asyncio.sleep(wait)

    async def _attempt(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: str | None,
        data: Mapping[str, str] | None,
        params: Any,
        expect: Expect,
        timeout: float,
    ) -> Any:
        session = self._client()
        status: int | None = None
        try:
            async with asyncio.timeout(timeout):
                async with session.request(
                    method, url, data=body if body is not None else data, params=params, headers=headers
                ) as response:
                    status = response.status
                    raw = await response.read()
                    retry_after = _retry_after(response.headers.get("Retry-After"))
        except TimeoutError:
            error: RuntimeRequestError = RequestTimeoutError(
                f"{method} {url}: no complete response within {timeout:g} s", method=method, url=url, status=status
            )
            return _Failure(error, maybe_processed=True)
        except aiohttp.ClientConnectorError as exc:  # nothing was sent
            return _Failure(
                RuntimeConnectionError(f"{method} {url}: cannot connect: {exc}", method=method, url=url),
                maybe_processed=False,
            )
        except (aiohttp.ClientPayloadError, aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
            what = "the response body was cut short" if status is not None else "the connection was lost"
            return _Failure(
                RuntimeConnectionError(
                    f"{method} {url}: {what}: {type(exc).__name__}: {exc}", method=method, url=url, status=status
                ),
                maybe_processed=True,
            )
        except aiohttp.ClientError as exc:
            return _Failure(
                RuntimeConnectionError(f"{method} {url}: {type(exc).__name__}: {exc}", method=method, url=url),
                maybe_processed=True,
            )
        text = raw.decode("utf-8", errors="replace")
        if status >= 400:
            error = error_for_status(status, method=method, url=url, body=text, retry_after=retry_after)
            processed = status >= 500 and status not in _NOT_PROCESSED_5XX
            wait = retry_after if status in (429, 503) else None
            return _Failure(error, maybe_processed=processed, wait=wait)
        if expect == "none" or (expect == "json" and not raw.strip()):
            return None if expect != "json" else {}
        if expect == "text":
            return text
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:  # a body cut short without a Content-Length
            return _Failure(
                RuntimeConnectionError(
                    f"{method} {url}: HTTP {status} with a malformed JSON body ({exc})",
                    method=method,
                    url=url,
                    status=status,
                    body=text[:_BODY_EXCERPT],
                ),
                maybe_processed=True,
            )


def _retryable(failure: _Failure) -> bool:
    status = failure.error.status
    if isinstance(failure.error, (RequestTimeoutError, RuntimeConnectionError)):
        return True
    return status is not None and (status == 429 or status >= 500)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - dt.datetime.now(dt.UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
