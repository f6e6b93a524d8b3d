"""``aqrt serve`` against slow and greedy clients: request heads and bodies have deadlines
(``header_timeout``, ``body_timeout``), and open connections are capped (``max_connections``)
so that a flood of them neither blocks other clients nor floods the log. Over 127.0.0.1, with
raw sockets where a real client would not misbehave, and small timeouts so the tests are quick."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from aqrt.server import connections as connections_module
from aqrt.server import create_app, serve_in_thread
from aqrt.server.auth import MAX_TOKEN_FORM_BYTES
from aqrt.server.connections import ConnectionLimiter, LimitedSite, connection_limit, listen

from .server_support import GRANT, Client, make_config, running_server

TIMEOUT = 0.5  # header_timeout and body_timeout of these servers, seconds
SLACK = 3.0  # how much later than its deadline a busy test machine may close a connection


def _port(client: Client) -> int:
    return int(client.base.rsplit(":", 1)[1])


def _form(key: str = "alice-key") -> bytes:
    return f"grant_type={GRANT.replace(':', '%3A')}&apikey={key}".encode()


async def _open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _seconds_until_closed(reader: asyncio.StreamReader, start: float, bound: float) -> tuple[float, bytes]:
    """Seconds from ``start`` until the server closed the connection, and what it sent first."""
    async with asyncio.timeout(bound):
        received = await reader.read()  # to EOF
    return asyncio.get_running_loop().time() - start, received


def _response(raw: bytes) -> tuple[int, dict[str, str], Any]:
    """Status, headers (lower-case names) and JSON body of one raw HTTP response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    length = int(headers.get("content-length", len(body)))
    return int(status_line.split()[1]), headers, json.loads(body[:length]) if length else None


@contextlib.asynccontextmanager
async def _limited_server(**changes: Any) -> AsyncIterator[tuple[Client, LimitedSite]]:
    """The app served as ``aqrt serve`` serves it: an ``AppRunner`` with a :class:`LimitedSite`."""
    tmp_path: Path = changes.pop("tmp_path")
    runner = web.AppRunner(create_app(make_config(tmp_path, **changes)))
    await runner.setup()
    try:
        site = LimitedSite(runner, listen("127.0.0.1", 0), max_connections=changes["max_connections"])
        await site.start()
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as http:
            yield Client(http, f"http://127.0.0.1:{port}"), site
    finally:
        await runner.cleanup()


# -- request heads --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_client_that_never_finishes_its_request_line_is_dropped_while_others_are_served(tmp_path) -> None:
    config = make_config(tmp_path, header_timeout=TIMEOUT, body_timeout=10.0)
    async with running_server(config) as client:
        token = await client.token()
        loop = asyncio.get_running_loop()
        silent_reader, silent = await _open(_port(client))
        half_reader, half = await _open(_port(client))
        dribble_reader, dribble = await _open(_port(client))
        start = loop.time()
        half.write(b"GET /api/v1/back")

        async def dribble_bytes() -> None:  # a byte every 0.1 s: data arriving does not extend the deadline
            for byte in b"GET /api/v1/backends HTTP/1.1\r\nHost: x\r\n":
                dribble.write(bytes([byte]))
                await asyncio.sleep(0.1)

        dribbling = asyncio.create_task(dribble_bytes())
        served = 0
        while not (silent_reader.at_eof() and half_reader.at_eof()):  # meanwhile, a normal client is answered
            assert (await client.call("GET", "/backends", token))[0] == 200
            served += 1
            await asyncio.sleep(0.05)
            if loop.time() - start > TIMEOUT + SLACK:
                break
        results = [await _seconds_until_closed(r, start, SLACK) for r in (silent_reader, half_reader, dribble_reader)]
        dribbling.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await dribbling
        for writer in (silent, half, dribble):
            writer.close()
        for elapsed, received in results:
            assert TIMEOUT - 0.05 <= elapsed <= TIMEOUT + SLACK and received == b""
        assert served >= 3


@pytest.mark.asyncio
async def test_a_kept_alive_connection_is_closed_when_idle_for_the_header_timeout(tmp_path) -> None:
    async with running_server(make_config(tmp_path, header_timeout=TIMEOUT)) as client:
        reader, writer = await _open(_port(client))
        loop = asyncio.get_running_loop()
        for _ in range(3):  # each response restarts the deadline: 3 x 0.3 s outlasts one 0.5 s deadline
            await asyncio.sleep(0.3)
            writer.write(b"GET /api/v1/backends HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), SLACK)
            length = int(re.search(rb"Content-Length: (\d+)", head, re.IGNORECASE).group(1))
            assert head.startswith(b"HTTP/1.1 401") and b"connection: close" not in head.lower()
            await reader.readexactly(length)
        idle_since = loop.time()
        elapsed, received = await _seconds_until_closed(reader, idle_since, TIMEOUT + SLACK)
        writer.close()
        assert TIMEOUT - 0.05 <= elapsed <= TIMEOUT + SLACK and received == b""


@pytest.mark.asyncio
async def test_the_header_deadline_does_not_cut_a_request_whose_body_is_still_allowed(tmp_path) -> None:
    """Headers in time, body after the header deadline but within the body deadline: served."""
    async with running_server(make_config(tmp_path, header_timeout=TIMEOUT, body_timeout=10.0)) as client:
        reader, writer = await _open(_port(client))
        form = _form()
        writer.write(
            b"POST /identity/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(form)
        )
        await asyncio.sleep(2 * TIMEOUT)
        writer.write(form)
        async with asyncio.timeout(SLACK):
            raw = await reader.read()
        writer.close()
        status, _, body = _response(raw)
        assert status == 200 and body["token_type"] == "Bearer"


# -- request bodies -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/jobs", "/identity/token", "/api/v1/sessions"])
@pytest.mark.asyncio
async def test_a_body_that_stops_halfway_is_answered_408_and_the_connection_closed(tmp_path, path) -> None:
    async with running_server(make_config(tmp_path, body_timeout=TIMEOUT, header_timeout=10.0)) as client:
        token = await client.token()
        reader, writer = await _open(_port(client))
        loop = asyncio.get_running_loop()
        content_type = b"application/x-www-form-urlencoded" if path == "/identity/token" else b"application/json"
        writer.write(
            b"POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\n"
            b"Content-Length: 1000\r\n\r\n" % (path.encode(), token.encode(), content_type)
        )
        writer.write(b"grant_type=" if path == "/identity/token" else b'{"program_id": "estimator", ')
        start = loop.time()
        answered = asyncio.create_task(client.call("GET", "/backends", token))  # served meanwhile
        elapsed, raw = await _seconds_until_closed(reader, start, TIMEOUT + 10 + SLACK)
        writer.close()
        assert (await answered)[0] == 200
        status, headers, body = _response(raw)
        assert status == 408 and headers["connection"].lower() == "close", raw
        assert body["status_code"] == 408 and body["errors"][0]["code"] == 1200  # a bad request; IBM has no code
        assert f"within {TIMEOUT:g} s" in body["errors"][0]["message"]
        assert TIMEOUT - 0.05 <= elapsed <= 2 * TIMEOUT + SLACK  # 408 at 0.5 s; the rest drained <= 0.5 s


@pytest.mark.asyncio
async def test_the_token_form_is_bounded_and_must_be_a_url_encoded_form(tmp_path) -> None:
    async with running_server(make_config(tmp_path)) as client:
        url = f"{client.base}/identity/token"
        padded = {"grant_type": GRANT, "apikey": "alice-key", "pad": "x" * MAX_TOKEN_FORM_BYTES}
        async with client.http.post(url, data=padded) as response:
            assert response.status == 413 and "at most 8192 bytes" in (await response.json())["errors"][0]["message"]

        async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: refused as it arrives
            yield _form() + b"&pad="
            for _ in range(10):
                yield b"y" * 1000

        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        async with client.http.post(url, data=chunked(), headers=headers) as response:
            assert response.status == 413
        async with client.http.post(url, json={"grant_type": GRANT, "apikey": "alice-key"}) as response:
            assert response.status == 400 and "x-www-form-urlencoded" in await response.text()
        # the form as IAM clients send it, a repeated field taking its first value
        async with client.http.post(url, data=_form() + b"&apikey=bob-key", headers=headers) as response:
            assert response.status == 200
            token = (await response.json())["access_token"]
        assert (await client.call("GET", "/backends", token))[0] == 200


# -- connection limit -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_connections_beyond_the_limit_are_closed_at_once_and_the_server_keeps_answering(tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO)  # (asyncio's DEBUG records, one per connection, are the test loop's debug mode)
    async with _limited_server(tmp_path=tmp_path, max_connections=20, header_timeout=30.0) as (client, site):
        token = await client.token()
        await client.http.close()  # its kept-alive connection would hold one of the 20
        assert site.limiter is not None and site.limiter.limit == 20
        await asyncio.sleep(0.1)
        assert site.limiter.open == 0
        records_before = len(caplog.records)
        port = _port(client)
        opened = [await _open(port) for _ in range(50)]
        async with asyncio.timeout(SLACK):
            while sum(reader.at_eof() for reader, _ in opened) < 30:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        assert [i for i, (reader, _) in enumerate(opened) if reader.at_eof()] == list(range(20, 50))  # 20 stay
        assert site.limiter.open == 20 and site.limiter.refused == 30

        refused_reader, refused_writer = await _open(port)  # one more, while full: closed at once
        assert await asyncio.wait_for(refused_reader.read(), SLACK) == b""
        refused_writer.close()

        for _, writer in opened[:5]:  # some close; a normal client is answered
            writer.close()
        async with aiohttp.ClientSession() as http:
            other = Client(http, client.base)
            async with asyncio.timeout(SLACK):
                while True:
                    try:
                        status, _ = await other.call("GET", "/backends", token)
                        break
                    except aiohttp.ClientConnectionError:  # the 5 not yet counted closed
                        await asyncio.sleep(0.05)
            assert status == 200
        for _, writer in opened:
            writer.close()
        new_records = [r for r in caplog.records[records_before:] if not r.getMessage().startswith("Executing <")]
        assert len(new_records) <= 10, [r.getMessage() for r in new_records]  # not one per refused connection
        warnings = [r.getMessage() for r in new_records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and "closed 1 new one(s)" in warnings[0], warnings
    assert not [r for r in caplog.records if "out of system resource" in r.getMessage()]


@pytest.mark.asyncio
async def test_when_descriptors_run_out_anyway_accepting_fails_quietly_and_resumes(tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.INFO)
    loop = asyncio.get_running_loop()
    real_accept = loop.sock_accept
    failures = []

    async def accept(sock: socket.socket) -> tuple[socket.socket, Any]:
        if len(failures) < 10:  # the next 10 accepts find no descriptor (asyncio's loop logged each)
            failures.append(loop.time())
            await asyncio.sleep(0)
            raise OSError(errno.EMFILE, "Too many open files")
        return await real_accept(sock)

    monkeypatch.setattr(loop, "sock_accept", accept)
    records_before = len(caplog.records)
    async with _limited_server(tmp_path=tmp_path, max_connections=20) as (client, _):
        token = await client.token()
        assert (await client.call("GET", "/backends", token))[0] == 200
        assert len(failures) == 10
        assert failures[-1] - failures[0] >= 9 * 0.1 - 0.01  # it waits between tries instead of spinning
        new_records = caplog.records[records_before:]
        warnings = [r.getMessage() for r in new_records if r.levelno >= logging.WARNING and r.name == "aqrt.server"]
        assert (
            len(warnings) == 1 and "Too many open files (1 time(s))" in warnings[0]
        )  # the other 9: in the next, a minute on, warnings


def test_the_limit_stays_below_the_open_file_limit_which_is_raised_towards_the_hard_one(monkeypatch, caplog) -> None:
    import resource

    caplog.set_level(logging.INFO, logger="aqrt.server")
    assert connections_module._open_descriptors() >= 3  # this process's own count, read from the system
    monkeypatch.setattr(connections_module, "_open_descriptors", lambda: 36)  # + FD_RESERVE (64): 100 kept
    limits = {"soft": 256, "hard": 100_000}
    monkeypatch.setattr(resource, "getrlimit", lambda which: (limits["soft"], limits["hard"]))

    def setrlimit(which: int, values: tuple[int, int]) -> None:
        limits["soft"], limits["hard"] = values

    monkeypatch.setattr(resource, "setrlimit", setrlimit)
    assert connection_limit(1000) == 1000 and limits["soft"] == 1100
    assert "at most 1000 open connections" in caplog.records[-1].getMessage()

    limits.update(soft=256, hard=512)  # the hard limit caps it
    assert connection_limit(1000) == 412 and limits["soft"] == 512
    assert caplog.records[-1].levelno == logging.WARNING and "ulimit -n" in caplog.records[-1].getMessage()

    def refuse(which: int, values: tuple[int, int]) -> None:
        raise ValueError("not allowed")

    limits.update(soft=150, hard=4096)
    monkeypatch.setattr(resource, "setrlimit", refuse)
    assert connection_limit(1000) == 50
    assert connection_limit(10) == 10  # within the limit: nothing to raise
    assert connection_limit(1000, reserve=200) == 1  # always one
    with pytest.raises(ValueError, match="at least 1"):
        ConnectionLimiter(None, 0)  # type: ignore[arg-type]


def test_serve_in_thread_drops_slow_clients_and_caps_connections(tmp_path) -> None:
    config = make_config(tmp_path, header_timeout=TIMEOUT, max_connections=3)
    with serve_in_thread(config) as url:
        port = int(url.rsplit(":", 1)[1])
        held = [socket.create_connection(("127.0.0.1", port), timeout=SLACK) for _ in range(3)]
        held[0].sendall(b"GET /api/v1/back")
        start = time.monotonic()  # a plain (loop-less) test: real time
        extra = socket.create_connection(("127.0.0.1", port), timeout=SLACK)
        assert extra.recv(1) == b""  # beyond the limit: closed at once
        assert held[0].recv(1) == b""  # the slowloris, at its deadline
        assert TIMEOUT - 0.05 <= time.monotonic() - start <= TIMEOUT + SLACK
        for sock in (*held, extra):
            sock.close()


# -- aqrt serve -----------------------------------------------------------------------------------


def test_the_command_drops_a_slowloris(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aqrt",
            "serve",
            "--port",
            "0",
            "--db",
            str(tmp_path / "server.sqlite3"),
            "--api-key",
            "cli-key=alice",
            "--header-timeout",
            str(TIMEOUT),
            "--max-connections",
            "50",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        first = process.stdout.readline()  # bounded by pytest-timeout if the command hangs
        found = re.search(r"http://127\.0\.0\.1:(\d+)/api/v1", first)
        assert found is not None, first + process.stdout.read()
        serving = process.stdout.readline()  # printed once it accepts connections
        assert "at most 50 open connections; request headers within 0.5 s" in serving, serving
        with socket.create_connection(("127.0.0.1", int(found.group(1))), timeout=SLACK) as slow:
            slow.sendall(b"POST /identity/tok")
            start = time.monotonic()
            assert slow.recv(1) == b""
            assert TIMEOUT - 0.05 <= time.monotonic() - start <= TIMEOUT + SLACK
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
        assert process.returncode == 0, output
        assert "Traceback" not in output, output
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
