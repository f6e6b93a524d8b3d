"""IBM Quantum Runtime over HTTP (aiohttp): ``RuntimeService`` and its ``IBMBackend``.

Layers, each knowing only the one below: ``accounts`` (credentials) -> ``auth`` (IAM JWT) ->
``transport`` (one aiohttp session, timeouts, retries, status -> error) -> ``rest`` (one method
per endpoint) -> ``poller`` (one task for every pending job) -> ``service`` / ``backend`` (aqrt's
Backend protocol and session hooks). Importing this package imports aiohttp; ``import aqrt``
does not (``aqrt.RuntimeService`` loads it on first access).
"""

from .accounts import Account, resolve_account
from .auth import API_VERSION, IAMAuth
from .backend import IBMBackend
from .poller import JobPoller
from .rest import RuntimeAPI
from .service import RemoteJob, RuntimeService
from .transport import RetryPolicy, Transport, error_for_status

__all__ = [
    "API_VERSION",
    "Account",
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
