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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..wire.limits import PayloadLimits

__all__ = [
    "API_KEYS_ENV",
    "DEFAULT_BACKENDS",
    "ServerConfig",
    "parse_api_key",
    "parse_api_keys_text",
    "parse_user_weight",
]

API_KEYS_ENV = "AQRT_SERVE_API_KEYS"
#: What a server serves unless told: aqrt's exact engine.
DEFAULT_BACKENDS: tuple[str, ...] = ("aqrt_statevector",)

# The limits that must be positive ints; _SQLITE_MAX_INT is the largest INTEGER the store keeps.
_POSITIVE_LIMITS = (
    "max_body_bytes",
    "max_qubits",
    "max_clbits",
    "max_circuit_ops",
    "max_pubs",
    "max_parameters",
    "max_shots",
    "max_bindings",
    "max_parameter_values",
    "max_observable_terms",
    "max_result_bits",
    "max_decompressed_bytes",
    "max_cost",
    "max_tags",
    "max_tag_length",
    "max_connections",
    "max_pending_jobs",
    "max_stored_bytes",
)
# Settings in seconds that must be positive and finite.
_POSITIVE_SECONDS = ("failure_window", "header_timeout", "body_timeout")
_SQLITE_MAX_INT = 2**63 - 1


@dataclasses.dataclass(frozen=True, kw_only=True)
class ServerConfig:
    """Settings of one ``aqrt serve`` app.

    Attributes:
        db_path: the SQLite file (``":memory:"`` for a throwaway store).
        api_keys: API key -> user name.
        backends: the backends served, by name: ``aqrt_statevector`` and any fake device of
            ``qiskit_ibm_runtime.fake_provider`` (``fake_sherbrooke``, ...); the first is the
            default (:attr:`backend_name`). See :mod:`aqrt.server.catalog`.
        backend_qubits: aqrt_statevector's advertised width: circuits transpiled for it are
            padded to this many qubits (only the qubits a circuit uses are simulated); a circuit
            wider than it fails with code 1517, as on IBM.
        token_ttl: seconds an access token lives.
        clock: wall clock for tokens (injectable so tests can expire tokens).
        max_body_bytes: the largest request body (413 above it).
        max_pubs, max_qubits, max_clbits, max_circuit_ops, max_parameters, max_shots: bounds on
            what a job may declare, checked before anything is decoded or allocated (400 above;
            :class:`aqrt.wire.limits.PayloadLimits` says what each counts), as are
            ``max_bindings``, ``max_parameter_values``, ``max_observable_terms`` and
            ``max_result_bits``. ``max_shots`` is what the served backend's configuration
            advertises; ``max_qubits`` also bounds the engine.
        max_decompressed_bytes: bound on inflated payload blobs (QPY, arrays), per job.
        max_cost: the largest ``cost`` (a job's max execution time, seconds) a job may set.
        max_tags, max_tag_length: tags per job and characters per tag (also per listing filter).
        max_crash_reruns: how many times a job that was running when the server died is re-run;
            found running after that many re-runs it fails (the poison-job rule, code 1010).
        max_failed_exchanges, failure_window: failed API-key exchanges one address (or one key)
            may have within ``failure_window`` seconds before it gets 429s.
        header_timeout: seconds a client has to send a request's line and headers (from the
            connection's start, or from the previous response on a kept-alive connection);
            past it the connection is closed.
        body_timeout: seconds a client has to send a request's body once its headers came
            (408 past it).
        max_connections: open client connections; a connection beyond them is closed at once
            (kept below the process's file-descriptor limit).
        max_pending_jobs: jobs one user may have not yet finished (queued or running); a
            submission beyond them is refused with 429.
        max_stored_bytes: bytes one user's jobs may keep in the store (params and results);
            a submission beyond them is refused with 429 until jobs are deleted or expire.
        job_retention: seconds a finished job (its params, result and row) is kept after it
            finished; 0 keeps jobs until their user deletes them.
        user_weights: user -> how many turns that user's jobs take in each round for the
            engine (default 1 each).
        interactive_ttl: a dedicated session's interactive timeout, seconds.
        max_ttl: the system maximum (and default) of a session's ``max_ttl``, seconds.
        batch_concurrency: how many jobs of one batch run at once.
        engine: the local engine (``"numba"`` or ``"reference"``).
        dask_scheduler: a Dask scheduler's address: jobs run whole on its workers
            (:class:`aqrt.distributed.ClusterJobs`; needs ``aqrt[dask]``), off the server's
            process; the tiny ones still run on the server.
        workers: start a Dask cluster of this many worker processes on this machine with the
            server (0: none; not with ``dask_scheduler``); it stops with the server.
        engine_slots: how many jobs run at once (waiting jobs take the slots in fair turns);
            default 1 on the server's own engine, the cluster's workers (as the server starts)
            with a cluster.
        max_running_per_user: how many of the slots one user's jobs may hold at once (default:
            all of them; users still take turns for each free slot).
    """

    db_path: Path | str
    api_keys: Mapping[str, str]
    backends: tuple[str, ...] = DEFAULT_BACKENDS
    backend_qubits: int = 16
    token_ttl: int = 3600
    clock: Callable[[], float] = time.time
    max_body_bytes: int = 16 << 20
    max_qubits: int = 24
    max_clbits: int = 1024
    max_circuit_ops: int = 100_000
    max_pubs: int = 1000
    max_parameters: int = 100_000
    max_shots: int = 100_000  # advertised as the configuration's max_shots
    max_bindings: int = 100_000
    max_parameter_values: int = 8 << 20  # the float64 values max_decompressed_bytes can carry
    max_observable_terms: int = 1_000_000
    max_result_bits: int = 1 << 28  # 32 MiB of sampled bits
    max_decompressed_bytes: int = 64 << 20
    max_cost: int = 8 * 3600
    max_tags: int = 32
    max_tag_length: int = 512
    max_crash_reruns: int = 2
    max_failed_exchanges: int = 10
    failure_window: float = 60.0
    header_timeout: float = 30.0
    body_timeout: float = 60.0
    max_connections: int = 1000
    max_pending_jobs: int = 1000
    max_stored_bytes: int = 1 << 30
    job_retention: float = 30 * 86400.0
    user_weights: Mapping[str, int] = dataclasses.field(default_factory=dict)
    interactive_ttl: int = 300
    max_ttl: int = 8 * 3600
    batch_concurrency: int = 4
    engine: str = "numba"
    dask_scheduler: str | None = None
    workers: int = 0
    engine_slots: int | None = None
    max_running_per_user: int | None = None

    def __post_init__(self) -> None:
        if not self.api_keys:
            raise ValueError(
                "at least one API key is needed (--api-key KEY[=USER], $AQRT_SERVE_API_KEYS or a keys file)"
            )
        if not self.backends or isinstance(self.backends, str):
            raise ValueError(f"backends must be a non-empty tuple of names, got {self.backends!r}")
        if self.batch_concurrency < 1:
            raise ValueError(f"batch_concurrency must be >= 1, got {self.batch_concurrency}")
        if self.backend_qubits < 1 or self.backend_qubits > self.max_qubits:
            raise ValueError(f"backend_qubits must be in 1..max_qubits ({self.max_qubits}), got {self.backend_qubits}")
        for name in _POSITIVE_LIMITS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if isinstance(self.max_crash_reruns, bool) or not isinstance(self.max_crash_reruns, int):
            raise ValueError(f"max_crash_reruns must be an int >= 0, got {self.max_crash_reruns!r}")
        if self.max_crash_reruns < 0:
            raise ValueError(f"max_crash_reruns must be an int >= 0, got {self.max_crash_reruns!r}")
        if isinstance(self.max_failed_exchanges, bool) or not isinstance(self.max_failed_exchanges, int):
            raise ValueError(f"max_failed_exchanges must be a positive int, got {self.max_failed_exchanges!r}")
        if self.max_failed_exchanges < 1:
            raise ValueError(f"max_failed_exchanges must be a positive int, got {self.max_failed_exchanges!r}")
        for name in _POSITIVE_SECONDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        retention = self.job_retention
        if isinstance(retention, bool) or not isinstance(retention, int | float) or not 0 <= retention < float("inf"):
            raise ValueError(f"job_retention must be a number of seconds >= 0 (0: keep), got {retention!r}")
        for user, weight in self.user_weights.items():
            if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
                raise ValueError(f"the weight of user {user!r} must be a positive int, got {weight!r}")
        for name in ("engine_slots", "max_running_per_user"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive int (or None: the default), got {value!r}")
        if self.engine_slots is not None and self.engine_slots > 1 and not self.uses_cluster:
            raise ValueError(
                "engine_slots > 1 needs a cluster (--dask or --workers): the server's own engine runs one job at a time"
            )
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 0:
            raise ValueError(f"workers must be an int >= 0, got {self.workers!r}")
        if self.workers and self.dask_scheduler is not None:
            raise ValueError("give a Dask scheduler to use (--dask) or local workers to start (--workers), not both")
        if (self.workers or self.dask_scheduler is not None) and self.engine != "numba":
            raise ValueError("a cluster runs the numba engine; the reference engine runs on the server only")
        if self.max_cost > _SQLITE_MAX_INT:
            raise ValueError(f"max_cost must be at most {_SQLITE_MAX_INT}, got {self.max_cost}")

    @property
    def uses_cluster(self) -> bool:
        """Whether jobs run on a Dask cluster (a scheduler given, or local workers started)."""
        return self.dask_scheduler is not None or self.workers > 0

    @property
    def backend_name(self) -> str:
        """The default backend: the first of :attr:`backends`."""
        return self.backends[0]

    def payload_limits(self, *, widest_backend: int = 0) -> PayloadLimits:
        """The limits a job's ``params`` are admitted under (:mod:`aqrt.wire.limits`). A
        circuit may declare as many qubits as the widest served backend has (a device's ISA
        circuits are as wide as the device), even beyond ``max_qubits``, which bounds the
        qubits the engine simulates."""
        from ..wire.limits import PayloadLimits  # here: `aqrt serve --help` loads no Qiskit

        return PayloadLimits(
            max_decompressed_bytes=self.max_decompressed_bytes,
            max_pubs=self.max_pubs,
            max_qubits=max(self.max_qubits, widest_backend),
            max_clbits=self.max_clbits,
            max_circuit_ops=self.max_circuit_ops,
            max_parameters=self.max_parameters,
            max_shots=self.max_shots,
            max_bindings=self.max_bindings,
            max_parameter_values=self.max_parameter_values,
            max_observable_terms=self.max_observable_terms,
            max_result_bits=self.max_result_bits,
        )


def parse_api_key(text: str) -> tuple[str, str]:
    """``"KEY=USER"`` -> ``(KEY, USER)``; a bare ``"KEY"`` gets a user name derived from it."""
    key, sep, user = text.strip().partition("=")
    key, user = key.strip(), user.strip()
    if not key or (sep and not user):
        raise ValueError(f"an API key must be KEY or KEY=USER, got {text!r}")
    if not user:
        user = "user-" + hashlib.sha256(key.encode()).hexdigest()[:12]
    return key, user


def parse_user_weight(text: str) -> tuple[str, int]:
    """``"USER=N"`` -> ``(USER, N)`` (``--user-weight``)."""
    user, sep, weight = text.strip().rpartition("=")
    user = user.strip()
    try:
        value = int(weight)
    except ValueError:
        value = 0
    if not sep or not user or value < 1:
        raise ValueError(f"a user weight must be USER=N with N a positive int, got {text!r}")
    return user, value


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
