"""``python -m aqrt serve``: its arguments, API keys from the variable and a file, and the
real command serving on 127.0.0.1 until interrupted."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from aqrt.server.cli import config_from_args, configure
from aqrt.server.config import parse_api_key

from .server_support import GRANT


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure(parser)
    return parser.parse_args(argv)


def test_api_keys_merge_variable_file_and_options(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text("# team keys\nk-file = carol\nk-shared=from-file  # overridden below\n")
    config = config_from_args(
        _args(
            "--db",
            str(tmp_path / "db"),
            "--api-keys-file",
            str(keys_file),
            "--api-key",
            "k-shared=dave",
            "--api-key",
            "k-bare",
            "--backend-qubits",
            "3",
            "--batch-concurrency",
            "2",
            "--max-qubits",
            "10",
        ),
        environ={"AQRT_SERVE_API_KEYS": "k-env=erin, k-shared=from-env"},
    )
    assert config.api_keys == {
        "k-env": "erin",
        "k-file": "carol",
        "k-shared": "dave",
        "k-bare": parse_api_key("k-bare")[1],
    }
    assert config.api_keys["k-bare"].startswith("user-")
    assert (
        config.db_path == tmp_path / "db"
        and config.backend_qubits == 3
        and config.batch_concurrency == 2
        and config.max_qubits == 10
    )


def test_no_key_or_a_bad_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one API key"):
        config_from_args(_args("--db", str(tmp_path / "db")), environ={})
    with pytest.raises(ValueError, match="KEY=USER"):
        parse_api_key("key=")
    with pytest.raises(ValueError, match="backend_qubits"):
        config_from_args(_args("--api-key", "k", "--backend-qubits", "30", "--max-qubits", "20"), environ={})


def test_operation_settings_and_user_weights_come_from_options(tmp_path: Path) -> None:
    config = config_from_args(
        _args(
            "--api-key",
            "k",
            "--db",
            str(tmp_path / "db"),
            "--user-weight",
            "alice=3",
            "--user-weight",
            "team=b=2",
            "--header-timeout",
            "2.5",
            "--max-pending-jobs",
            "7",
            "--job-retention",
            "0",
        ),
        environ={},
    )
    assert config.user_weights == {"alice": 3, "team=b": 2}
    assert config.header_timeout == 2.5 and config.max_pending_jobs == 7 and config.job_retention == 0
    for bad in ("alice", "alice=0", "=2", "alice=x"):
        with pytest.raises(ValueError, match="USER=N"):
            config_from_args(_args("--api-key", "k", "--user-weight", bad), environ={})
    with pytest.raises(ValueError, match="header_timeout"):
        config_from_args(_args("--api-key", "k", "--header-timeout", "0"), environ={})
    with pytest.raises(ValueError, match="job_retention"):
        config_from_args(_args("--api-key", "k", "--job-retention", "-1"), environ={})


def test_the_command_serves_until_interrupted(tmp_path: Path) -> None:
    """With ``--port 0`` the command prints the port it bound, and serves on it."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aqrt",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--db",
            str(tmp_path / "server.sqlite3"),
            "--api-key",
            "cli-key=alice",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        first = process.stdout.readline()  # bounded by pytest-timeout if the command hangs
        found = re.search(r"http://127\.0\.0\.1:(\d+)/api/v1 \(IAM_URL=http://127\.0\.0\.1:(\d+)\)", first)
        assert found is not None, first + process.stdout.read()
        port = int(found.group(1))
        assert port != 0 and int(found.group(2)) == port, first
        form = urllib.parse.urlencode({"grant_type": GRANT, "apikey": "cli-key"}).encode()
        deadline = time.monotonic() + 60  # a plain (loop-less) test: real time
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/identity/token", data=form, timeout=5
                ) as response:
                    token = json.load(response)["access_token"]
                break
            except (urllib.error.URLError, ConnectionError):
                assert process.poll() is None, process.stdout.read()
                assert time.monotonic() < deadline, "aqrt serve did not start"
                time.sleep(0.1)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/backends", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.load(response)["devices"][0]["name"] == "aqrt_statevector"
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
        assert process.returncode == 0, output
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert (tmp_path / "server.sqlite3").exists()


def test_the_cli_finds_serve_without_loading_aiohttp() -> None:
    code = (
        "import sys, aqrt.cli; names = aqrt.cli._available(); "
        "print('serve' in names, 'aiohttp' in sys.modules, 'aqrt.server.runtime' in sys.modules)"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert completed.stdout.split() == ["True", "False", "False"]


def test_an_unknown_backend_is_refused_before_serving(tmp_path: Path) -> None:
    for name, expected in (("fake_sherbroke", "did you mean 'fake_sherbrooke'"), ("ibm_kyiv", "unknown backend")):
        done = subprocess.run(
            [sys.executable, "-m", "aqrt", "serve", "--api-key", "k", "--port", "0", "--backend", name],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "XDG_DATA_HOME": str(tmp_path)},
        )
        assert done.returncode == 2 and expected in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_cluster_settings_come_from_options_and_need_the_dask_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import aqrt._extras
    from aqrt.server.cli import main

    args = _args("--api-key", "k", "--db", str(tmp_path / "db"), "--workers", "3", "--max-running-per-user", "2")
    config = config_from_args(args, environ={})
    assert (config.workers, config.dask_scheduler, config.max_running_per_user) == (3, None, 2)
    assert config.uses_cluster and config.engine_slots is None
    remote = _args("--api-key", "k", "--dask", "tcp://127.0.0.1:8786", "--engine-slots", "4")
    config = config_from_args(remote, environ={})
    assert (config.dask_scheduler, config.engine_slots, config.workers) == ("tcp://127.0.0.1:8786", 4, 0)
    with pytest.raises(SystemExit):  # one or the other
        _args("--api-key", "k", "--dask", "tcp://127.0.0.1:8786", "--workers", "2")
    capsys.readouterr()
    monkeypatch.setattr(aqrt._extras, "_importable", lambda module: module != "distributed")
    assert main(args) == 2  # before any socket or cluster
    error = capsys.readouterr().err
    assert "aqrt serve --dask/--workers needs distributed" in error and "pip install -e '.[dask]'" in error
