"""IBM Quantum credentials: from arguments, ``QISKIT_IBM_*`` variables, or the saved-accounts file.

The file is qiskit-ibm-runtime's ``~/.qiskit/qiskit-ibm.json``: a JSON object of named accounts,
each ``{"channel", "token", "instance", "url", ...}``; ``is_default_account`` marks the default,
and the names ``default-ibm-quantum-platform`` / ``default-ibm-cloud`` are the per-channel
defaults. :func:`resolve_account` reads the file, so it must run off the event loop (the
service calls it in a worker thread).

``url`` follows qiskit-ibm-runtime: a cloud URL without a path (``https://cloud.ibm.com``, the
default) becomes the regional Runtime API (``https://<region>.quantum.cloud.ibm.com/api/v1``, no
prefix for ``us-east``), and the IAM endpoint is ``https://iam.<host>``. A URL with a path is
taken as the API base as is (a test server, ``aqrt serve``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from ...errors import AccountNotFoundError, InvalidInputError

__all__ = ["DEFAULT_ACCOUNTS_FILE", "Account", "Channel", "resolve_account"]

Channel = Literal["ibm_quantum_platform", "ibm_cloud"]
CHANNELS: tuple[str, ...] = ("ibm_quantum_platform", "ibm_cloud")
DEFAULT_CHANNEL: Channel = "ibm_quantum_platform"
DEFAULT_CLOUD_URL = "https://cloud.ibm.com"
DEFAULT_ACCOUNTS_FILE = Path("~/.qiskit/qiskit-ibm.json")
_DEFAULT_NAMES = {"ibm_quantum_platform": "default-ibm-quantum-platform", "ibm_cloud": "default-ibm-cloud"}
_CRN = re.compile(r"^crn:[^:]*:([^:]*):[^:]*:[^:]*:([^:]*):.*$")


@dataclasses.dataclass(frozen=True)
class Account:
    """Resolved credentials and endpoints.

    Attributes:
        channel: ``"ibm_quantum_platform"`` or ``"ibm_cloud"``.
        token: the IBM Cloud API key (exchanged for a JWT at ``iam_url``).
        instance: the service instance CRN, sent as ``Service-CRN``.
        api_url: the Runtime API base, e.g. ``https://quantum.cloud.ibm.com/api/v1``.
        iam_url: the IAM base; tokens come from ``{iam_url}/identity/token``.
    """

    channel: Channel
    token: str
    instance: str
    api_url: str
    iam_url: str

    def __repr__(self) -> str:  # never print the key
        return f"Account(channel={self.channel!r}, instance={self.instance!r}, api_url={self.api_url!r})"


def region_from_crn(crn: str) -> str | None:
    """The location field of an IBM Cloud CRN (``us-east``, ``eu-de``, ...), None if not a CRN."""
    match = _CRN.match(crn)
    return match.group(2) if match else None


def api_url_for(url: str, instance: str) -> str:
    """The Runtime API base for a cloud or API ``url`` and an instance CRN (see module doc)."""
    parsed = urlparse(url)
    if not parsed.scheme or not parsed.hostname:
        raise InvalidInputError(f"url={url!r} is not an absolute http(s) URL")
    if parsed.path not in ("", "/"):
        return url.rstrip("/")
    region = region_from_crn(instance)
    prefix = "" if region in (None, "", "us-east") else f"{region}."
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{prefix}quantum.{parsed.hostname}{port}/api/v1"


def iam_url_for(url: str) -> str:
    """The IAM base for a cloud ``url``: ``https://iam.<host>``; for an API URL, IBM's IAM."""
    parsed = urlparse(url)
    if parsed.path not in ("", "/") or not parsed.hostname:
        return "https://iam.cloud.ibm.com"
    return f"{parsed.scheme}://iam.{parsed.hostname}"


def resolve_account(
    *,
    channel: str | None = None,
    token: str | None = None,
    instance: str | None = None,
    url: str | None = None,
    iam_url: str | None = None,
    name: str | None = None,
    filename: str | os.PathLike[str] | None = None,
    environ: dict[str, str] | None = None,
) -> Account:
    """Credentials in qiskit-ibm-runtime's order: arguments (``token=``), a saved account called
    ``name``, the ``QISKIT_IBM_TOKEN``/``_INSTANCE``/``_URL`` variables, then the saved default.

    ``channel`` defaults to ``QISKIT_IBM_CHANNEL``, then the saved account's, then
    ``ibm_quantum_platform``; ``iam_url`` defaults to ``IAM_URL``, then the URL's IAM host.
    Blocking: reads the accounts file.

    Raises:
        AccountNotFoundError: no token anywhere, or no account called ``name``.
        InvalidInputError: an unknown channel, no instance, a malformed file or URL.
    """
    env = os.environ if environ is None else environ
    wanted_channel = channel or env.get("QISKIT_IBM_CHANNEL") or None
    if wanted_channel is not None and wanted_channel not in CHANNELS:
        raise InvalidInputError(f"channel must be one of {list(CHANNELS)}, got {wanted_channel!r}")
    saved: dict[str, Any] = {}
    if token is None:
        if name is not None:
            saved = _read_accounts(filename).get(name) or {}
            if not saved:
                raise AccountNotFoundError(f"no saved IBM account named {name!r} in {_path(filename)}")
        elif env.get("QISKIT_IBM_TOKEN"):
            saved = {
                "token": env["QISKIT_IBM_TOKEN"],
                "instance": env.get("QISKIT_IBM_INSTANCE"),
                "url": env.get("QISKIT_IBM_URL"),
            }
        else:
            saved = _default_saved(_read_accounts(filename), wanted_channel)
            if not saved:
                raise AccountNotFoundError(
                    "no IBM Quantum account: pass token= and instance=, set QISKIT_IBM_TOKEN and "
                    f"QISKIT_IBM_INSTANCE, or save an account in {_path(filename)}"
                )
    resolved_channel = wanted_channel or saved.get("channel") or DEFAULT_CHANNEL
    if resolved_channel not in CHANNELS:
        raise InvalidInputError(f"channel must be one of {list(CHANNELS)}, got {resolved_channel!r}")
    resolved_token = token or saved.get("token")
    resolved_instance = instance or saved.get("instance") or env.get("QISKIT_IBM_INSTANCE")
    if not resolved_token:
        raise AccountNotFoundError("the IBM account has no token (API key)")
    if not resolved_instance:
        raise InvalidInputError("an IBM Quantum instance CRN is required: pass instance= or set QISKIT_IBM_INSTANCE")
    resolved_url = url or saved.get("url") or env.get("QISKIT_IBM_URL") or DEFAULT_CLOUD_URL
    return Account(
        channel=resolved_channel,  # type: ignore[arg-type]
        token=str(resolved_token),
        instance=str(resolved_instance),
        api_url=api_url_for(resolved_url, str(resolved_instance)),
        iam_url=(iam_url or env.get("IAM_URL") or iam_url_for(resolved_url)).rstrip("/"),
    )


def _path(filename: str | os.PathLike[str] | None) -> Path:
    return Path(filename if filename is not None else DEFAULT_ACCOUNTS_FILE).expanduser()


def _read_accounts(filename: str | os.PathLike[str] | None) -> dict[str, dict[str, Any]]:
    path = _path(filename)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"the accounts file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise InvalidInputError(f"the accounts file {path} must map account names to objects")
    # qiskit-ibm-runtime ignores legacy "ibm_quantum" accounts; so does aqrt
    return {k: v for k, v in data.items() if v.get("channel") != "ibm_quantum"}


def _default_saved(accounts: dict[str, dict[str, Any]], channel: str | None) -> dict[str, Any]:
    if channel is not None:
        of_channel = {k: v for k, v in accounts.items() if v.get("channel") == channel}
        for account in of_channel.values():
            if account.get("is_default_account"):
                return account
        if _DEFAULT_NAMES[channel] in of_channel:
            return of_channel[_DEFAULT_NAMES[channel]]
        if of_channel:
            return next(iter(of_channel.values()))
    for account in accounts.values():
        if account.get("is_default_account"):
            return account
    for name in _DEFAULT_NAMES.values():
        if name in accounts:
            return accounts[name]
    return next(iter(accounts.values()), {})
