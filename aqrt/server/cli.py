"""``aqrt serve`` (also ``python -m aqrt serve``): run the Runtime REST API server.

API keys: ``--api-key KEY[=USER]`` (repeatable), ``--api-keys-file PATH`` (one ``KEY[=USER]``
a line, ``#`` comments) and the ``AQRT_SERVE_API_KEYS`` variable (``KEY[=USER]`` separated
by commas); all are merged. A key without ``=USER`` gets a user name derived from the key.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from pathlib import Path

from .._extras import missing_extras
from .config import API_KEYS_ENV, DEFAULT_BACKENDS, ServerConfig, parse_api_key, parse_api_keys_text, parse_user_weight
from .store import default_db_path

__all__ = ["config_from_args", "configure", "main"]

# The limits on what a request may hold or declare (ServerConfig fields), each an --option.
_LIMITS = (
    ("max_body_bytes", "largest request body, bytes"),
    ("max_decompressed_bytes", "bytes a job's compressed circuits and arrays may inflate to"),
    ("max_pubs", "most PUBs in one job"),
    ("max_qubits", "widest circuit (and block or definition in it) a job may hold"),
    ("max_clbits", "most clbits of a circuit (and of a block or definition in it)"),
    ("max_circuit_ops", "most operations in one circuit (and in a block or definition in it)"),
    ("max_parameters", "most ParameterVector elements a job's circuits declare"),
    ("max_shots", "most shots of one sampler PUB (the served backend advertises max_shots 100000)"),
    ("max_bindings", "most bindings a job runs, after broadcasting"),
    ("max_parameter_values", "most parameter values a job binds (bindings x parameters)"),
    ("max_observable_terms", "most Pauli terms a job evaluates (terms x bindings)"),
    ("max_result_bits", "most bits a job samples (bindings x shots x clbits)"),
    ("max_cost", "largest cost (max execution time) a job may set, seconds"),
    ("max_tags", "most tags on one job"),
    ("max_tag_length", "most characters in one tag"),
)

# How the server runs (ServerConfig fields): name, type, metavar, help.
_OPERATION: tuple[tuple[str, type, str, str], ...] = (
    ("max_crash_reruns", int, "N", "re-runs of a job the server died while running, before it fails with 1010"),
    (
        "max_failed_exchanges",
        int,
        "N",
        "failed API-key exchanges per address or key within --failure-window before 429s",
    ),
    ("failure_window", float, "SECONDS", "the window failed key exchanges are counted in"),
    ("header_timeout", float, "SECONDS", "time a client has to send a request's headers"),
    ("body_timeout", float, "SECONDS", "time a client has to send a request's body (408 past it)"),
    ("max_connections", int, "N", "open client connections; more are closed at once"),
    ("max_pending_jobs", int, "N", "unfinished jobs per user (429 beyond)"),
    ("max_stored_bytes", int, "BYTES", "bytes of params and results the store keeps per user (429 beyond)"),
    ("job_retention", float, "SECONDS", "how long a finished job is kept (0: until deleted)"),
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add ``aqrt serve``'s arguments to ``parser``."""
    defaults = ServerConfig.__dataclass_fields__
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765; 0 = any free port)")
    parser.add_argument("--db", type=Path, default=None, help=f"SQLite database (default {default_db_path()})")
    parser.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY[=USER]",
        help=f"an accepted API key and its user (repeatable; also ${API_KEYS_ENV}, comma separated)",
    )
    parser.add_argument(
        "--api-keys-file", type=Path, default=None, metavar="PATH", help="a file of API keys, one KEY[=USER] a line"
    )
    parser.add_argument(
        "--backend",
        action="append",
        default=[],
        metavar="NAME",
        help="a backend to serve (repeatable): aqrt_statevector or a fake device such as fake_sherbrooke "
        "(devices run with their noise; needs aqrt[devices,noise]); default aqrt_statevector",
    )
    parser.add_argument(
        "--backend-qubits",
        type=int,
        default=defaults["backend_qubits"].default,
        help="width of the served backend (transpiled circuits are padded to it; default %(default)s)",
    )
    for name, text in _LIMITS:
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=int,
            default=defaults[name].default,
            metavar="N",
            help=f"{text} (default %(default)s)",
        )
    parser.add_argument(
        "--token-ttl",
        type=int,
        default=defaults["token_ttl"].default,
        help="seconds an access token lives (default %(default)s)",
    )
    parser.add_argument(
        "--interactive-ttl",
        type=int,
        default=defaults["interactive_ttl"].default,
        help="a dedicated session's interactive timeout, seconds (default %(default)s)",
    )
    parser.add_argument(
        "--max-ttl",
        type=int,
        default=defaults["max_ttl"].default,
        help="the largest (and default) session max_ttl, seconds (default %(default)s)",
    )
    parser.add_argument(
        "--batch-concurrency",
        type=int,
        default=defaults["batch_concurrency"].default,
        help="how many jobs of one batch run at once (default %(default)s)",
    )
    for name, kind, metavar, text in _OPERATION:
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=kind,
            default=defaults[name].default,
            metavar=metavar,
            help=f"{text} (default %(default)s)",
        )
    parser.add_argument(
        "--user-weight",
        action="append",
        default=[],
        metavar="USER=N",
        help="turns USER's jobs take per round for the engine (repeatable; default 1 each)",
    )
    parser.add_argument("--engine", choices=("numba", "reference"), default="numba", help="the local engine")
    cluster = parser.add_mutually_exclusive_group()
    cluster.add_argument(
        "--dask",
        metavar="ADDRESS",
        default=None,
        help="run jobs on the workers of this Dask scheduler (tcp://HOST:PORT; needs aqrt[dask])",
    )
    cluster.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="start a Dask cluster of N worker processes on this machine for the jobs (needs aqrt[dask])",
    )
    parser.add_argument(
        "--engine-slots",
        type=int,
        default=None,
        metavar="N",
        help="jobs that run at once (default 1, or the cluster's workers)",
    )
    parser.add_argument(
        "--max-running-per-user",
        type=int,
        default=None,
        metavar="N",
        help="engine slots one user's jobs may hold at once (default: all)",
    )


def config_from_args(args: argparse.Namespace, environ: dict[str, str] | None = None) -> ServerConfig:
    """A :class:`ServerConfig` from parsed arguments, the keys file and the environment."""
    environ = dict(os.environ if environ is None else environ)
    keys = parse_api_keys_text(environ.get(API_KEYS_ENV, ""), separators=(",",))
    if args.api_keys_file is not None:
        keys.update(parse_api_keys_text(args.api_keys_file.read_text()))
    for text in args.api_key:
        key, user = parse_api_key(text)
        keys[key] = user
    return ServerConfig(
        db_path=args.db if args.db is not None else default_db_path(),
        api_keys=keys,
        backends=tuple(args.backend) or DEFAULT_BACKENDS,
        backend_qubits=args.backend_qubits,
        **{name: getattr(args, name) for name, _ in _LIMITS},
        token_ttl=args.token_ttl,
        interactive_ttl=args.interactive_ttl,
        max_ttl=args.max_ttl,
        batch_concurrency=args.batch_concurrency,
        **{name: getattr(args, name) for name, *_ in _OPERATION},
        user_weights=dict(parse_user_weight(text) for text in args.user_weight),
        engine=args.engine,
        dask_scheduler=args.dask,
        workers=args.workers,
        engine_slots=args.engine_slots,
        max_running_per_user=args.max_running_per_user,
    )


def main(args: argparse.Namespace) -> int:
    """Run the server until interrupted; returns the exit status."""
    try:
        config = config_from_args(args)
        from .catalog import check_backend_names  # here: `aqrt serve --help` loads no Qiskit

        check_backend_names(config.backends)
    except (OSError, ValueError) as exc:
        print(f"aqrt serve: {exc}", file=sys.stderr)
        return 2
    if config.uses_cluster:
        missing = missing_extras("aqrt serve --dask/--workers", ["distributed"])
        if missing is not None:
            print(missing, file=sys.stderr)
            return 2
    try:
        sock = _listen(args.host, args.port)
    except OSError as exc:
        print(f"aqrt serve: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    port = sock.getsockname()[1]  # the bound one, also for --port 0
    print(
        f"aqrt serve: http://{args.host}:{port}/api/v1 (IAM_URL=http://{args.host}:{port}), "
        f"database {config.db_path}, {len(config.api_keys)} API key(s)",
        flush=True,
    )
    from aiohttp import web

    try:
        asyncio.run(_serve(config, sock))
    except (web.GracefulExit, KeyboardInterrupt):  # SIGINT or SIGTERM: the server has stopped
        pass
    return 0


async def _serve(config: ServerConfig, sock: socket.socket) -> None:
    """Serve the app on ``sock`` until a signal stops it (aiohttp's ``GracefulExit``, raised out
    of the loop; the cleanup then runs as the task is cancelled). Not ``web.run_app``: that
    serves a plain socket site, and ``max_connections`` needs :class:`~.connections.LimitedSite`."""
    from aiohttp import web

    from .app import create_app
    from .connections import LimitedSite

    runner = web.AppRunner(create_app(config), handle_signals=True)
    await runner.setup()
    try:
        site = LimitedSite(runner, sock, max_connections=config.max_connections)
        await site.start()
        assert site.limiter is not None
        print(
            f"aqrt serve: at most {site.limiter.limit} open connections; request headers within "
            f"{config.header_timeout:g} s, bodies within {config.body_timeout:g} s",
            flush=True,
        )
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (bound here so the real port is known before serving)."""
    from .connections import listen

    return listen(host, port)
