"""What a server runs with: database, API keys, limits, clocks.

API keys come from (merged in this order, later wins): the ``AQRT_SERVE_API_KEYS`` variable
(``KEY[=USER]`` items separated by commas), a keys file given by ``--api-keys-file`` (one
``KEY[=USER]`` a line, ``#`` comments), and ``--api-key KEY[=USER]`` options. A key without a
user gets one derived from the key (:func:`parse_api_key`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

__all__ = ["API_KEYS_ENV", "ServerConfig", "parse_api_key", "parse_api_keys_text"]

API_KEYS_ENV = "AQRT_SERVE_API_KEYS"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ServerConfig:
    """Settings of one ``aqrt serve`` app.

    Attributes:
        db_path: the SQLite file (``":memory:"`` for a throwaway store).
        api_keys: API key -> user name.
        backend_name: the one backend served.
        backend_qubits: its advertised width: circuits transpiled for it are padded to this many
            qubits, so keep it small (every qubit doubles a statevector job's cost).
        token_ttl: seconds an access token lives.
        clock: wall clock for tokens (injectable so tests can expire tokens).
        max_body_bytes: the largest request body (413 above it).
        max_qubits / max_circuit_ops / max_pubs: bounds on what a job may ask for (400 above).
        max_decompressed_bytes: bound on inflated payload blobs (QPY, arrays).
        interactive_ttl: a dedicated session's interactive timeout, seconds.
        max_ttl: the system maximum (and default) of a session's ``max_ttl``, seconds.
        batch_concurrency: how many jobs of one batch run at once.
        engine: the local engine (``"numba"`` or ``"reference"``).
    """

    db_path: Path | str
    api_keys: Mapping[str, str]
    backend_name: str = "aqrt_statevector"
    backend_qubits: int = 16
    token_ttl: int = 3600
    clock: Callable[[], float] = time.time
    max_body_bytes: int = 16 << 20
    max_qubits: int = 24
    max_circuit_ops: int = 100_000
    max_pubs: int = 1000
    max_decompressed_bytes: int = 64 << 20
    interactive_ttl: int = 300
    max_ttl: int = 8 * 3600
    batch_concurrency: int = 4
    engine: str = "numba"

    def __post_init__(self) -> None:
        if not self.api_keys:
            raise ValueError(
                "at least one API key is needed (--api-key KEY[=USER], $AQRT_SERVE_API_KEYS or a keys file)"
            )
        if self.batch_concurrency < 1:
            raise ValueError(f"batch_concurrency must be >= 1, got {self.batch_concurrency}")
        if self.backend_qubits < 1 or self.backend_qubits > self.max_qubits:
            raise ValueError(f"backend_qubits must be in 1..max_qubits ({self.max_qubits}), got {self.backend_qubits}")


def parse_api_key(text: str) -> tuple[str, str]:
    """``"KEY=USER"`` -> ``(KEY, USER)``; a bare ``"KEY"`` gets a user name derived from it."""
    key, sep, user = text.strip().partition("=")
    key, user = key.strip(), user.strip()
    if not key or (sep and not user):
        raise ValueError(f"an API key must be KEY or KEY=USER, got {text!r}")
    if not user:
        user = "user-" + hashlib.sha256(key.encode()).hexdigest()[:12]
    return key, user


def parse_api_keys_text(text: str, *, separators: Iterable[str] = ("\n",)) -> dict[str, str]:
    """Keys from a file's text (one a line, ``#`` comments) or the variable (comma separated)."""
    for separator in separators:
        text = text.replace(separator, "\n")
    keys = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, user = parse_api_key(line)
            keys[key] = user
    return keys
