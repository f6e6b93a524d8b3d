"""IAM authentication: an API key exchanged for a short-lived JWT, cached and refreshed.

The token is refreshed when 80% of its lifetime has passed (loop clock), or at once after the
server answered 401 to it. Concurrent callers that find it stale wait for the *same* refresh task:
one exchange at a time however many requests are in flight, and if it fails they all get its error
(IAM is not asked again once per waiter).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ...errors import AuthenticationError, InvalidRequestError
from ...wire.runtime_api import API_VERSION_HEADER, IAM_GRANT_TYPE, INSTANCE_HEADER

if TYPE_CHECKING:
    from .transport import Transport

__all__ = ["API_VERSION", "IAMAuth"]

API_VERSION = "2026-04-15"
_REFRESH_AT = 0.8  # of the token's lifetime


class IAMAuth:
    """Headers for Runtime API calls: ``Authorization: Bearer <jwt>``, ``Service-CRN``,
    ``IBM-API-Version``.

    Args:
        api_key: the IBM Cloud API key.
        iam_url: the IAM base; the token comes from ``{iam_url}/identity/token``.
        crn: the service instance CRN.
    """

    def __init__(self, api_key: str, iam_url: str, crn: str) -> None:
        self._api_key = api_key
        self._token_url = iam_url.rstrip("/") + "/identity/token"
        self._crn = crn
        self._token: str | None = None
        self._refresh_at = 0.0
        self._refreshing: asyncio.Task[None] | None = None
        self.refreshes = 0  # how many exchanges were made, for observability and tests

    async def headers(self, transport: Transport) -> dict[str, str]:
        """The headers of one API call, refreshing the token first if it is stale."""
        token = await self.token(transport)
        return {"Authorization": f"Bearer {token}", INSTANCE_HEADER: self._crn, API_VERSION_HEADER: API_VERSION}

    async def token(self, transport: Transport) -> str:
        """A valid JWT. One refresh at a time: every caller that finds the token stale waits for
        the same exchange and gets its result, or its error."""
        loop = asyncio.get_running_loop()
        while self._token is None or loop.time() >= self._refresh_at:
            if self._refreshing is None or self._refreshing.done():
                self._refreshing = loop.create_task(self._refresh(transport), name="aqrt iam refresh")
                self._refreshing.add_done_callback(_retrieve)
            await asyncio.shield(self._refreshing)  # a cancelled caller leaves it to the others
        assert self._token is not None
        return self._token

    def invalidate(self, headers: Mapping[str, str]) -> None:
        """Drop the token that ``headers`` carried (the server refused it); a newer one stays."""
        if headers.get("Authorization") == f"Bearer {self._token}":
            self._token = None

    async def _refresh(self, transport: Transport) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            reply = await transport.request(
                "POST",
                self._token_url,
                data={"grant_type": IAM_GRANT_TYPE, "apikey": self._api_key},
                headers={"Accept": "application/json"},
                idempotent=True,  # exchanging a key twice is harmless
            )
        except InvalidRequestError as exc:  # IAM answers 400 to an unknown or malformed key
            raise AuthenticationError(
                f"IAM refused the API key: {exc}", status=exc.status, method=exc.method, url=exc.url, body=exc.body
            ) from exc
        token = reply.get("access_token") if isinstance(reply, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthenticationError(f"POST {self._token_url}: no access_token in the IAM reply", url=self._token_url)
        expires_in = reply.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, (int, float)) and expires_in > 0 else 3600.0
        self._token = token
        self._refresh_at = started + _REFRESH_AT * lifetime
        self.refreshes += 1


def _retrieve(task: asyncio.Task[None]) -> None:
    # The waiters see the error; this only stops asyncio logging it as never retrieved.
    if not task.cancelled():
        task.exception()
