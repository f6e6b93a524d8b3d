"""``Connection``: an open :class:`~aqrt.backends.ibm.RuntimeService` as its backends and jobs
use it.

The service makes one when it opens (credentials resolved, HTTP session made) and hands it to
every :class:`~aqrt.backends.ibm.IBMBackend` and :class:`~aqrt.backends.ibm.RemoteJob` it
creates: they reach the server through it, never through the service, so the service module
depends on them and not the other way round.
"""

from __future__ import annotations

import dataclasses

from .poller import JobPoller
from .rest import RuntimeAPI

__all__ = ["Connection"]


@dataclasses.dataclass(frozen=True)
class Connection:
    """What talking to one Runtime instance takes.

    Attributes:
        api: the endpoints.
        poller: the one poller that watches every pending job of the service.
        instance: the instance CRN (sent with ``POST /sessions``), or None.
    """

    api: RuntimeAPI
    poller: JobPoller
    instance: str | None
