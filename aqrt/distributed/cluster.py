"""A Dask cluster on this machine, in its own process tree, for tests, benchmarks and the CLI.

``with LocalProcessCluster(n_workers=2) as address:`` starts a child process that runs a
``distributed.LocalCluster`` (scheduler and nanny-supervised worker processes, 127.0.0.1,
no dashboard) and yields its scheduler address; leaving the block shuts the cluster down and
makes sure no process of it is left. Keeping the cluster out of this process keeps its event
loop and threads away from the caller's (and a killed worker is restarted by its nanny).

Run as a script (``python -c "from aqrt.distributed.cluster import main; main()" --workers 2``) it
prints the address as a JSON line and runs until its stdin closes.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import types
from typing import Any

__all__ = ["LocalProcessCluster"]


class LocalProcessCluster:
    """A ``LocalCluster`` in a child process; see the module docstring.

    Args:
        n_workers: worker processes.
        threads_per_worker: threads per worker (numba kernels in one worker are serialised anyway).
        startup_timeout: seconds to wait for the scheduler address.
    """

    def __init__(self, n_workers: int = 2, *, threads_per_worker: int = 1, startup_timeout: float = 120.0) -> None:
        self.n_workers = n_workers
        self.threads_per_worker = threads_per_worker
        self.startup_timeout = startup_timeout
        self.address: str | None = None
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> str:
        command = [
            sys.executable,
            "-c",
            "from aqrt.distributed.cluster import main; main()",
            "--workers",
            str(self.n_workers),
            "--threads",
            str(self.threads_per_worker),
        ]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            self._stop()
            raise RuntimeError("the local Dask cluster did not start (see its stderr above)")
        self.address = json.loads(line)["address"]
        return self.address

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: types.TracebackType | None
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.stdin is not None:
                process.stdin.close()
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        finally:
            try:  # whatever is left of its process group (workers, nannies)
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            process.wait()
            _wait_for_group_to_die(process.pid)
            if process.stdout is not None:
                process.stdout.close()


def _wait_for_group_to_die(group: int, timeout: float = 10.0) -> None:
    """Return once no live process is left in ``group`` (SIGKILL is delivered asynchronously,
    so a killed worker can still be seen running for a moment)."""
    deadline = time.monotonic() + timeout
    while _live_members(group) and time.monotonic() < deadline:
        time.sleep(0.02)


def _live_members(group: int) -> bool:
    proc = pathlib.Path("/proc")
    if not proc.is_dir():  # not Linux: ask the kernel whether the group has any member
        try:
            os.killpg(group, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # the process went away while we looked
            continue
        state, process_group = fields[0], int(fields[2])
        if process_group == group and state not in ("Z", "X"):
            return True
    return False


def _serve(n_workers: int, threads: int) -> None:
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=n_workers,
        threads_per_worker=threads,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        # The scheduler serves HTTP even without a dashboard, on port 8787 unless told: take any
        # free port, so clusters side by side do not warn about a port in use.
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        silence_logs=40,
    ) as cluster:
        print(json.dumps({"address": cluster.scheduler_address}), flush=True)
        sys.stdin.read()  # until the parent closes our stdin (or dies)


def main(argv: list[str] | None = None) -> Any:
    parser = argparse.ArgumentParser(description="run a local Dask cluster until stdin closes")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    _serve(args.workers, args.threads)


if __name__ == "__main__":
    main()
