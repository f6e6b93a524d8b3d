"""Access tokens: HS256 JWTs issued for API keys and checked on every ``/api/v1`` request.

Tokens carry ``sub`` (the user), ``iat`` and ``exp``, signed with a secret kept in the database
so they stay valid across restarts. PyJWT rather than hand-rolled HMAC: it is small, already a
dependency of qiskit-ibm-runtime, and gets the header/claims encoding and the constant-time
signature check right. Expiry is checked here against the configured clock (so tests can move
time), not by PyJWT's own ``time.time()``. The HTTP side is :mod:`aqrt.server.auth`.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping

import jwt

from .errors import ApiError

__all__ = ["Authenticator"]

_ALGORITHM = "HS256"
_VERIFIED_CACHE = 4096


class Authenticator:
    """Issues and checks access tokens for a fixed set of API keys."""

    def __init__(self, api_keys: Mapping[str, str], secret: bytes, *, ttl: int, clock: Callable[[], float]) -> None:
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
        except jwt.PyJWTError as exc:
            raise ApiError(401, f"invalid access token: {exc}") from None
        exp = claims["exp"]
        if not isinstance(exp, int | float) or exp <= self._clock():
            raise ApiError(401, "the access token has expired; request a new one from /identity/token")
        user = claims["sub"]
        if not isinstance(user, str) or user not in self._users:
            raise ApiError(401, "the access token names no known user")
        return user, exp
