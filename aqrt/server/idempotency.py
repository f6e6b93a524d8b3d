"""Idempotent ``POST /jobs``: one job per (user, idempotency key), however often it is posted.

The key comes from the ``Idempotency-Key`` header or from a tag ``aqrt-idem-<key>`` (the tag
aqrt's client adds to every submission). A repeat with the same request (same digest of
program, backend, session and params) gets the first job back; a repeat with a different
request is a 409. In this process, submissions with the same key run one at a time
(:class:`KeyLocks`); the store's primary key on (user, key) makes the rule hold in SQLite too.
:class:`IdempotentSubmissions` applies the rule around a submission.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ..wire.runtime_api import IDEMPOTENCY_HEADER, IDEMPOTENCY_TAG_PREFIX, job_created_body
from .errors import ApiError
from .store import Store

__all__ = [
    "HEADER",
    "MAX_KEY_LENGTH",
    "IdempotentSubmissions",
    "KeyLocks",
    "idempotency_key",
    "payload_digest",
    "repeated",
]

HEADER = IDEMPOTENCY_HEADER
MAX_KEY_LENGTH = 255


def idempotency_key(tags: list[str], header: str | None) -> str | None:
    """The submission's key (header or ``aqrt-idem-`` tag), None when it has none; 400 when the
    header and tags name different keys, or a key is empty or longer than ``MAX_KEY_LENGTH``."""
    keys = {tag[len(IDEMPOTENCY_TAG_PREFIX) :] for tag in tags if tag.startswith(IDEMPOTENCY_TAG_PREFIX)}
    if header is not None:
        keys.add(header.strip())
    if not keys:
        return None
    if len(keys) > 1:
        shown = ", ".join(repr(key) for key in sorted(keys))
        raise ApiError(400, f"the {HEADER} header and {IDEMPOTENCY_TAG_PREFIX}* tags name different keys: {shown}")
    (key,) = keys
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ApiError(400, f"an idempotency key must have 1..{MAX_KEY_LENGTH} characters, got {len(key)}")
    return key


def payload_digest(program: str, backend: str, session_id: str | None, params: Any) -> str:
    """SHA-256 of what makes two submissions the same job (tags and cost aside); run it off the
    loop, the params may be megabytes."""
    canonical = json.dumps(
        {"program_id": program, "backend": backend, "session_id": session_id, "params": params},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class KeyLocks:
    """One :class:`asyncio.Lock` per (user, key) while anyone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, user: str, key: str) -> AsyncIterator[None]:
        """Run the body alone among holders of the same (user, key)."""
        lock, users = self._locks.setdefault((user, key), (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[(user, key)]

    def __len__(self) -> int:
        return len(self._locks)


def repeated(earlier: dict[str, Any], key: str, digest: str) -> dict[str, Any]:
    """The answer to a repeated submission: the earlier job (``earlier`` as
    :meth:`Store.idempotent_job` gives it), or 409 if the request differs."""
    if earlier["digest"] != digest:
        raise ApiError(
            409,
            f"idempotency key {key!r} was already used for job {earlier['job_id']} with a different request "
            "(program, backend, session or params differ); use a new key for a new job",
        )
    return job_created_body(earlier["job_id"], earlier["backend"], earlier["session_id"])


class IdempotentSubmissions:
    """One job per (user, key): :meth:`submit_once` submits only if the key is new."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._locks = KeyLocks()

    async def submit_once(
        self,
        user: str,
        key: str,
        digest: str,
        submit: Callable[[tuple[str, str]], Awaitable[dict[str, Any]]],
    ) -> dict[str, Any]:
        """``submit((key, digest))`` unless ``user`` already used ``key``; then the earlier job's
        answer (:func:`repeated`). Submissions with the same key run one at a time."""
        async with self._locks.hold(user, key):
            earlier = await self._store.idempotent_job(user, key)
            if earlier is None:
                return await submit((key, digest))
        return repeated(earlier, key, digest)
