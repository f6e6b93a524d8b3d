"""Access tokens: HS256 JWTs issued for API keys and checked on every ``/api/v1`` request.

Tokens carry ``sub`` (the user), ``iat`` and ``exp``, signed with a secret kept in the database
so they stay valid across restarts. PyJWT rather than hand-rolled HMAC: it is small, already a
dependency of qiskit-ibm-runtime, and gets the header/claims encoding and the constant-time
signature check right. Expiry is checked here against the configured clock (so tests can move
time), not by PyJWT's own ``time.time()``. The HTTP side is :mod:`aqrt.server.auth`.

Failed key exchanges are throttled (:class:`ExchangeThrottle`): a client address, or an API key,
with :data:`MAX_FAILED_EXCHANGES` failures within :data:`FAILURE_WINDOW` seconds is refused
(429, with the seconds to wait) until the oldest of them leaves the window, so keys cannot be
guessed at the server's speed.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import math
import time
from collections.abc import Callable, Mapping
from typing import Final

import jwt

from .errors import ApiError

__all__ = ["FAILURE_WINDOW", "MAX_FAILED_EXCHANGES", "Authenticator", "ExchangeThrottle"]

_ALGORITHM = "HS256"
_VERIFIED_CACHE = 4096

#: Failed key exchanges a client address (or one API key) may have within :data:`FAILURE_WINDOW`
#: by default (``ServerConfig.max_failed_exchanges`` / ``--max-failed-exchanges``).
MAX_FAILED_EXCHANGES: Final = 10
#: Seconds over which failed key exchanges are counted by default (``ServerConfig.failure_window``).
FAILURE_WINDOW: Final = 60.0
# Addresses and keys remembered at most (the oldest are forgotten first), so a flood of
# addresses or keys cannot grow the server's memory without bound.
_MAX_TRACKED = 65_536


class ExchangeThrottle:
    """Counts failed key exchanges per client address and per API key tried.

    Args:
        max_failures: failures allowed within ``window`` seconds; one more is refused.
        window: seconds a failure counts.
        clock: a monotonic clock (real seconds: a wall clock moved by tests must not unlock it).
    """

    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILED_EXCHANGES,
        window: float = FAILURE_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_failures = max_failures
        self._window = window
        self._clock = clock
        self._failures: dict[str, collections.deque[float]] = {}

    def retry_after(self, address: str, api_key: str) -> int | None:
        """Whole seconds until ``address`` and ``api_key`` may try again, None if they may now."""
        now = self._clock()
        waits = [self._wait(name, now) for name in self._names(address, api_key)]
        wait = max(waits)
        return math.ceil(wait) if wait > 0 else None

    def note_failure(self, address: str, api_key: str) -> None:
        """Count one failed exchange from ``address`` with ``api_key``."""
        now = self._clock()
        for name in self._names(address, api_key):
            failures = self._failures.pop(name, None)  # re-inserted last: the dict stays oldest-first
            if failures is None:
                failures = collections.deque(maxlen=self._max_failures)
            failures.append(now)
            self._failures[name] = failures
        while len(self._failures) > _MAX_TRACKED:
            del self._failures[next(iter(self._failures))]

    def _wait(self, name: str, now: float) -> float:
        failures = self._failures.get(name)
        if failures is None or len(failures) < self._max_failures:
            return 0.0
        return failures[0] + self._window - now

    @staticmethod
    def _names(address: str, api_key: str) -> tuple[str, str]:
        # Keys are remembered by digest: the throttle keeps no key a client sent.
        return "address:" + address, "key:" + hashlib.sha256(api_key.encode()).hexdigest()


class Authenticator:
    """Issues and checks access tokens for a fixed set of API keys."""

    def __init__(
        self,
        api_keys: Mapping[str, str],
        secret: bytes,
        *,
        ttl: int,
        clock: Callable[[], float],
        throttle: ExchangeThrottle | None = None,
    ) -> None:
        self.throttle = throttle if throttle is not None else ExchangeThrottle()
        """Failed key exchanges per address and key (see :class:`ExchangeThrottle`)."""
        self._api_keys = dict(api_keys)
        self._secret = secret
        self._users = frozenset(self._api_keys.values())
        self._ttl = ttl
        self._clock = clock
        self._verified: dict[str, tuple[str, float]] = {}

    def user_for_key(self, api_key: str) -> str | None:
        """The user of ``api_key`` (compared in constant time), or None."""
        found = None
        for key, user in self._api_keys.items():
            if hmac.compare_digest(key.encode(), api_key.encode()):
                found = user
        return found

    def issue(self, user: str) -> dict[str, object]:
        """An IAM-shaped token response for ``user``."""
        now = int(self._clock())
        expires = now + self._ttl
        token = jwt.encode({"sub": user, "iat": now, "exp": expires, "iss": "aqrt"}, self._secret, algorithm=_ALGORITHM)
        return {
            "access_token": token,
            "refresh_token": "not_supported",
            "token_type": "Bearer",
            "expires_in": self._ttl,
            "expiration": expires,
            "scope": "ibm openid",
        }

    def verify(self, token: str) -> str:
        """The user a valid, unexpired token was issued to.

        A token's signature is checked once; later requests with it only check its expiry
        (a small bounded cache of verified tokens).

        Raises:
            ApiError: 401 for a forged, malformed or expired token.
        """
        known = self._verified.get(token)
        if known is not None:
            user, exp = known
            if exp <= self._clock():
                raise ApiError(401, "the access token has expired; request a new one from /identity/token")
            return user
        user, exp = self._verify_signed(token)
        if len(self._verified) >= _VERIFIED_CACHE:
            self._verified.pop(next(iter(self._verified)))
        self._verified[token] = (user, exp)
        return user

    def _verify_signed(self, token: str) -> tuple[str, float]:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                options={"verify_exp": False, "verify_iat": False, "require": ["sub", "exp", "iat"]},
            )
        except jwt.PyJWTError:  # PyJWT's own words say too much about what was checked how
            raise ApiError(401, "invalid access token: malformed, or not signed by this server") from None
        exp = claims["exp"]
        if not isinstance(exp, int | float) or exp <= self._clock():
            raise ApiError(401, "the access token has expired; request a new one from /identity/token")
        user = claims["sub"]
        if not isinstance(user, str) or user not in self._users:
            raise ApiError(401, "the access token names no known user")
        return user, exp
