"""Fixtures shared by the server tests."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aqrt.server import serve_in_thread

from .server_support import CRN, make_config


@pytest.fixture
def connect(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """``connect(**config)`` starts ``aqrt serve`` (its own loop in a thread, asyncio debug mode)
    and returns the official client's ``QiskitRuntimeService`` pointed at it.

    ``IAM_URL`` points the client's IAM token manager at the server's ``/identity/token``;
    ``QISKIT_FUNCTIONS_EXPERIMENTAL`` makes ``Account.list_instances`` return the given CRN instead
    of asking IBM Cloud's Global Search; ``url_resolver`` sends every Runtime call to the server.
    """
    from qiskit_ibm_runtime import QiskitRuntimeService

    with contextlib.ExitStack() as stack:

        def open_service(**changes: object) -> QiskitRuntimeService:
            url = stack.enter_context(serve_in_thread(make_config(tmp_path, **changes), debug=True))
            monkeypatch.setenv("IAM_URL", url)
            monkeypatch.setenv("QISKIT_FUNCTIONS_EXPERIMENTAL", "1")
            return QiskitRuntimeService(
                channel="ibm_quantum_platform",
                token="alice-key",
                instance=CRN,
                url_resolver=lambda *args, **kwargs: f"{url}/api/v1",
            )

        yield open_service
