"""Credentials (arguments, QISKIT_IBM_* variables, the saved-accounts file), URLs, the error map,
backoff arithmetic, and the no-I/O-in-constructors rule."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

import aqrt
from aqrt import (
    AccountNotFoundError,
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
    RequestTimeoutError,
    RuntimeRequestError,
    ServerError,
)
from aqrt.backends.ibm import RetryPolicy, RuntimeService, error_for_status, resolve_account
from aqrt.backends.ibm.accounts import api_url_for, region_from_crn

from .ibm_fault_server import API_KEY, CRN, FaultServer

EU_CRN = "crn:v1:bluemix:public:quantum-computing:eu-de:a/abc:inst-2::"


def write_accounts(path: Path, accounts: dict[str, dict[str, object]]) -> Path:
    path.write_text(json.dumps(accounts))
    return path


def test_the_api_url_follows_the_instance_region() -> None:
    assert region_from_crn(CRN) == "us-east" and region_from_crn(EU_CRN) == "eu-de"
    assert api_url_for("https://cloud.ibm.com", CRN) == "https://quantum.cloud.ibm.com/api/v1"
    assert api_url_for("https://cloud.ibm.com", EU_CRN) == "https://eu-de.quantum.cloud.ibm.com/api/v1"
    assert api_url_for("http://127.0.0.1:8080/api/v1/", CRN) == "http://127.0.0.1:8080/api/v1"
    with pytest.raises(InvalidInputError):
        api_url_for("not a url", CRN)


def test_arguments_win_and_default_endpoints_are_ibms() -> None:
    account = resolve_account(token="key", instance=EU_CRN, environ={"QISKIT_IBM_TOKEN": "other"})
    assert account.token == "key" and account.channel == "ibm_quantum_platform"
    assert account.api_url == "https://eu-de.quantum.cloud.ibm.com/api/v1"
    assert account.iam_url == "https://iam.cloud.ibm.com"
    assert "key" not in repr(account)


def test_environment_variables(tmp_path: Path) -> None:
    environ = {
        "QISKIT_IBM_TOKEN": "env-key",
        "QISKIT_IBM_INSTANCE": CRN,
        "QISKIT_IBM_URL": "http://127.0.0.1:9/api/v1",
        "QISKIT_IBM_CHANNEL": "ibm_cloud",
        "IAM_URL": "http://127.0.0.1:9",
    }
    account = resolve_account(environ=environ, filename=tmp_path / "absent.json")
    assert (account.token, account.instance, account.channel) == ("env-key", CRN, "ibm_cloud")
    assert account.api_url == "http://127.0.0.1:9/api/v1" and account.iam_url == "http://127.0.0.1:9"


def test_saved_accounts_file_in_qiskit_ibm_runtime_format(tmp_path: Path) -> None:
    path = write_accounts(
        tmp_path / "qiskit-ibm.json",
        {
            "default-ibm-quantum-platform": {
                "channel": "ibm_quantum_platform",
                "token": "platform-key",
                "instance": CRN,
                "url": "https://cloud.ibm.com",
            },
            "mine": {"channel": "ibm_cloud", "token": "cloud-key", "instance": EU_CRN, "is_default_account": True},
            "legacy": {"channel": "ibm_quantum", "token": "old", "instance": "x"},
        },
    )
    assert resolve_account(filename=path, environ={}).token == "cloud-key"  # is_default_account
    assert resolve_account(filename=path, environ={}, channel="ibm_quantum_platform").token == "platform-key"
    assert resolve_account(filename=path, environ={"QISKIT_IBM_CHANNEL": "ibm_quantum_platform"}).token == (
        "platform-key"
    )
    named = resolve_account(filename=path, environ={}, name="mine")
    assert named.channel == "ibm_cloud" and named.api_url == "https://eu-de.quantum.cloud.ibm.com/api/v1"
    with pytest.raises(AccountNotFoundError, match="legacy"):
        resolve_account(filename=path, environ={}, name="legacy")
    # the variables come before the file, as in qiskit-ibm-runtime
    assert resolve_account(filename=path, environ={"QISKIT_IBM_TOKEN": "t", "QISKIT_IBM_INSTANCE": CRN}).token == "t"


def test_missing_or_broken_accounts_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(AccountNotFoundError, match="QISKIT_IBM_TOKEN"):
        resolve_account(filename=tmp_path / "absent.json", environ={})
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        resolve_account(filename=broken, environ={})
    with pytest.raises(InvalidInputError, match="instance CRN is required"):
        resolve_account(token="key", environ={})
    with pytest.raises(InvalidInputError, match="channel"):
        resolve_account(token="key", instance=CRN, channel="ibm_quantum", environ={})
    with pytest.raises(InvalidInputError, match="channel"):
        RuntimeService(channel="nope")


def test_every_status_maps_once_to_a_typed_error() -> None:
    cases = {
        400: InvalidRequestError,
        401: AuthenticationError,
        403: AuthenticationError,
        404: NotFoundError,
        408: RequestTimeoutError,
        409: ConflictError,
        413: InvalidRequestError,
        422: InvalidRequestError,
        429: RateLimitedError,
        500: ServerError,
        502: ServerError,
        503: ServerError,
        504: ServerError,
    }
    for status, kind in cases.items():
        error = error_for_status(status, method="GET", url="u", body='{"why": "because"}')
        assert type(error) is kind and error.status == status and "because" in str(error)
        assert isinstance(error, RuntimeRequestError) and isinstance(error, aqrt.AqrtError)
    assert isinstance(error_for_status(404, method="GET", url="u", body=None), LookupError)
    assert isinstance(error_for_status(400, method="GET", url="u", body=None), ValueError)
    assert isinstance(error_for_status(408, method="GET", url="u", body=None), TimeoutError)


def test_backoff_is_capped_exponential_with_bounded_jitter() -> None:
    exact = RetryPolicy(base_delay=0.5, max_delay=4.0, jitter=0.0)
    assert [exact.backoff(n, random.Random()) for n in range(6)] == [0.5, 1, 2, 4, 4, 4]
    jittered = RetryPolicy(base_delay=1.0, max_delay=8.0, jitter=0.5)
    rng, reference = random.Random(3), random.Random(3)
    waits = [jittered.backoff(n, rng) for n in range(8)]
    assert waits == [min(8.0, 2.0**n) * (1 - 0.5 * reference.random()) for n in range(8)]
    assert all(min(8.0, 2.0**n) / 2 <= w <= min(8.0, 2.0**n) for n, w in enumerate(waits))
    assert len(set(waits[4:])) == 4  # capped, yet spread apart


def test_importing_aqrt_does_not_import_aiohttp_but_runtime_service_is_exported() -> None:
    code = (
        "import sys, aqrt; assert 'aiohttp' not in sys.modules; assert 'RuntimeService' in aqrt.__all__; "
        "s = aqrt.RuntimeService; assert 'aiohttp' in sys.modules; print(s.__name__)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "RuntimeService"


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_constructors_do_no_io_and_the_file_is_read_off_the_loop(
    looptime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("QISKIT_IBM_TOKEN", "QISKIT_IBM_INSTANCE", "QISKIT_IBM_URL", "QISKIT_IBM_CHANNEL", "IAM_URL"):
        monkeypatch.delenv(name, raising=False)
    async with FaultServer() as server:
        account = {"channel": "ibm_cloud", "token": API_KEY, "instance": CRN, "url": server.api_url}
        saved = {"default-ibm-cloud": account}
        path = await asyncio.to_thread(write_accounts, tmp_path / "qiskit-ibm.json", saved)
        # blockbuster fails this test if the constructor (or anything else) reads the file on the loop
        service = RuntimeService(filename=path, iam_url=server.base)
        aqrt.Session(service=service, backend="fake_alpha")
        assert server.requests == [] and service.account is None
        async with service:
            assert service.channel == "ibm_cloud" and service.account is not None
            assert [b.name for b in await service.backends()] == ["fake_alpha", "fake_beta"]
        with pytest.raises(RuntimeError, match="closed"):
            await service.backends()
        missing = RuntimeService(filename=tmp_path / "absent.json")  # no error until used
        with pytest.raises(AccountNotFoundError):
            await missing.backends()
        await missing.close()


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_runtime_service_from_environment_variables_alone(
    looptime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no saved accounts file to fall back on
    async with FaultServer() as server:
        monkeypatch.setenv("QISKIT_IBM_TOKEN", API_KEY)
        monkeypatch.setenv("QISKIT_IBM_INSTANCE", CRN)
        monkeypatch.setenv("QISKIT_IBM_URL", server.api_url)
        monkeypatch.setenv("QISKIT_IBM_CHANNEL", "ibm_cloud")
        monkeypatch.setenv("IAM_URL", server.base)
        async with RuntimeService() as service:
            assert (await service.least_busy()).name == "fake_beta"
            assert service.channel == "ibm_cloud" and service.instance == CRN
        assert server.tokens_issued == 1
