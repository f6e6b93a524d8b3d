"""IBM Quantum Runtime over HTTP (aiohttp): ``RuntimeService`` and its ``IBMBackend``.

Layers, each knowing only those below it: ``accounts`` (credentials), ``transport`` (one
aiohttp session, timeouts, retries, status -> error) <- ``auth`` (IAM JWT) <- ``rest`` (one
method per endpoint) <- ``poller`` (one task for every pending job) <- ``connection`` (the open
API and poller, handed down) <- ``results`` (a final job's result or error) <- ``backend``
(aqrt's Backend protocol and session hooks) <- ``service`` (``RuntimeService``, ``RemoteJob``).
The API's vocabulary (states, codes, params, bodies) is :mod:`aqrt.wire.runtime_api`, shared
with ``aqrt serve``. Importing this package imports aiohttp; ``import aqrt`` does not
(``aqrt.RuntimeService`` loads it on first access).
"""

from .accounts import Account, resolve_account
from .auth import API_VERSION, IAMAuth
from .backend import IBMBackend
from .connection import Connection
from .poller import JobPoller
from .rest import RuntimeAPI
from .service import RemoteJob, RuntimeService
from .transport import RetryPolicy, Transport, error_for_status

__all__ = [
    "API_VERSION",
    "Account",
    "Connection",
    "IAMAuth",
    "IBMBackend",
    "JobPoller",
    "RemoteJob",
    "RetryPolicy",
    "RuntimeAPI",
    "RuntimeService",
    "Transport",
    "error_for_status",
    "resolve_account",
]
