"""End-to-end jobs/s through ``aqrt serve``: HTTP, auth, SQLite, the engine, and a client.

Each row is a client: it submits ``--jobs`` trivial EstimatorV2 jobs (a 2-qubit Bell circuit in
the served basis, observable ``ZZ``, exact value 1) to a fresh server, keeping all of them in
flight, then fetches every result and checks it. The timed span is first submit -> last result.
The official client submits one job at a time (it is synchronous) and makes three requests per
submission (backend status, instance usage, ``POST /jobs``) and two per result.

Rows are functions with the signature of :data:`ClientRow`; add one to :data:`ROWS` to measure
another client against the same server (:data:`ROW_BACKENDS` names a device a row runs on). The
Sampler rows run 100 shots of a measured Bell pair per job with the official client, one job at a
time: the executor-based Sampler (program ``executor``: a QuantumProgram, post-processed by the
client) and the legacy SamplerV2, on aqrt_statevector and on fake_manila with its noise.

aqrt's own ``RuntimeService`` client submits all jobs at once and polls them through its one
shared poller at IBM's pacing (0.5 s between polls of a job in job mode, 0.1 s in a session or
batch), so its figure includes that pacing.

Usage::

    python benchmarks/http_jobs.py [--jobs 100] [--repeat 3] [--rows TEXT]

Standalone: the repository root goes on ``sys.path`` so the working tree's ``aqrt`` is used.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qiskit import QuantumCircuit
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.quantum_info import SparsePauliOp

from aqrt._concurrency import CancelFlag
from aqrt.backends.base import ExecutionContext
from aqrt.backends.local import LocalService
from aqrt.job import JobRequest
from aqrt.options import Options
from aqrt.server import ServerConfig, serve_in_thread

API_KEY = "bench-key"
MEDIUM_QUBITS = 16
CRN = "crn:v1:bluemix:public:quantum-computing:us-east:a/aqrt:bench::"


@dataclasses.dataclass(frozen=True)
class ServerInfo:
    """What a client row needs to reach the server."""

    url: str  # http://127.0.0.1:PORT (IAM), the Runtime API under url + "/api/v1"
    api_key: str
    instance: str
    backend: str


#: A row: run ``jobs`` jobs against the server, check the results, return the seconds taken.
ClientRow = Callable[[ServerInfo, int], float]


def bell_isa() -> tuple[QuantumCircuit, SparsePauliOp]:
    """A Bell pair written in the served basis (rz, sx, cx), so no transpiling is timed."""
    circuit = QuantumCircuit(2)
    circuit.rz(1.5707963267948966, 0)
    circuit.sx(0)
    circuit.rz(1.5707963267948966, 0)
    circuit.cx(0, 1)
    return circuit, SparsePauliOp("ZZ")


def _official_client(opt_out_of_usage_data: bool) -> ClientRow:
    def row(server: ServerInfo, jobs: int) -> float:
        """qiskit-ibm-runtime's ``QiskitRuntimeService`` + ``EstimatorV2`` in job mode."""
        os.environ["IAM_URL"] = server.url
        os.environ["QISKIT_FUNCTIONS_EXPERIMENTAL"] = "1"
        # The client walks the call stack (inspect.stack) on every request to report its
        # caller unless this is "True"; that walk is most of its per-request cost.
        os.environ["USAGE_DATA_OPT_OUT"] = "True" if opt_out_of_usage_data else "False"
        from qiskit_ibm_runtime import EstimatorV2, QiskitRuntimeService

        service = QiskitRuntimeService(
            channel="ibm_quantum_platform",
            token=server.api_key,
            instance=server.instance,
            url_resolver=lambda *args, **kwargs: f"{server.url}/api/v1",
        )
        backend = service.backend(server.backend)
        estimator = EstimatorV2(mode=backend)
        pub = bell_isa()
        estimator.run([pub]).result()  # warm: token, backend target, engine compile
        started = time.perf_counter()
        submitted = [estimator.run([pub]) for _ in range(jobs)]
        results = [job.result() for job in submitted]
        elapsed = time.perf_counter() - started
        for result in results:
            assert abs(float(result[0].data.evs) - 1.0) < 1e-12, result[0].data.evs
        return elapsed

    return row


def raw_http_row(server: ServerInfo, jobs: int) -> float:
    """The same jobs as bare HTTP requests from aiohttp, all submitted concurrently: what the
    server sustains when the client costs next to nothing."""
    circuit, observable = bell_isa()
    return _raw_http(server, jobs, circuit, observable, expected=1.0)


def medium_circuit(num_qubits: int = MEDIUM_QUBITS, layers: int = 12) -> QuantumCircuit:
    """rx layers and a cx ladder on ``num_qubits`` qubits, in the served basis: tens of
    milliseconds of engine work per job, enough for a cluster to pay off its round trip."""
    circuit = QuantumCircuit(num_qubits)
    for layer in range(layers):
        for qubit in range(num_qubits):
            circuit.rz(0.1 * (qubit + layer + 1), qubit)
            circuit.sx(qubit)
        for qubit in range(num_qubits - 1):
            circuit.cx(qubit, qubit + 1)
    return circuit


def medium_jobs_row(server: ServerInfo, jobs: int) -> float:
    """Bare HTTP requests, all at once, of :func:`medium_circuit` jobs (each checked against the
    value computed in this process): where a cluster behind the server runs jobs side by side."""
    circuit = medium_circuit()
    observable = SparsePauliOp("Z" * MEDIUM_QUBITS)
    request = JobRequest("reference", "estimator", [EstimatorPub.coerce((circuit, observable))], Options(), None)
    backend = LocalService().backend()
    expected = float(backend.runner.run(request, _context())[0].data.evs)
    return _raw_http(server, jobs, circuit, observable, expected=expected)


def _context() -> ExecutionContext:
    return ExecutionContext(cache={}, cancel_requested=CancelFlag())


def _raw_http(
    server: ServerInfo, jobs: int, circuit: QuantumCircuit, observable: SparsePauliOp, *, expected: float
) -> float:
    import asyncio

    import aiohttp

    from aqrt.wire import decode, pubs_to_wire
    from aqrt.wire.runtime_api import COMPLETED, IAM_GRANT_TYPE, INSTANCE_HEADER

    body = {
        "program_id": "estimator",
        "backend": server.backend,
        "params": {
            "pubs": pubs_to_wire("estimator", [(circuit, observable)]),
            "options": {},
            "version": 2,
            "support_qiskit": True,
        },
    }

    async def run() -> float:
        async with aiohttp.ClientSession() as http:
            form = {"grant_type": IAM_GRANT_TYPE, "apikey": server.api_key}
            async with http.post(f"{server.url}/identity/token", data=form) as response:
                token = (await response.json())["access_token"]
            headers = {"Authorization": f"Bearer {token}", INSTANCE_HEADER: server.instance}
            api = f"{server.url}/api/v1"

            async def one() -> float:
                async with http.post(f"{api}/jobs", json=body, headers=headers) as response:
                    answer = await response.json()
                    if response.status != 200:
                        raise RuntimeError(f"POST /jobs answered {response.status}: {answer}")
                    job_id = answer["id"]
                while True:
                    async with http.get(f"{api}/jobs/{job_id}", headers=headers) as response:
                        if (await response.json())["state"]["status"] == COMPLETED:
                            break
                    await asyncio.sleep(0.01)
                async with http.get(f"{api}/jobs/{job_id}/results", headers=headers) as response:
                    return float(decode(await response.text())[0].data.evs)

            await one()  # warm
            started = time.perf_counter()
            values = await asyncio.gather(*(one() for _ in range(jobs)))
            elapsed = time.perf_counter() - started
            assert all(abs(value - expected) < 1e-10 for value in values), values
            return elapsed

    return asyncio.run(run())


def _aqrt_client(in_batch: bool) -> ClientRow:
    def row(server: ServerInfo, jobs: int) -> float:
        """aqrt's ``RuntimeService`` + ``Estimator``, every job in flight at once."""
        import asyncio

        from aqrt import Batch, Estimator
        from aqrt.backends.ibm import RuntimeService

        async def run() -> float:
            service = RuntimeService(
                channel="ibm_cloud",
                token=server.api_key,
                instance=server.instance,
                url=f"{server.url}/api/v1",
                iam_url=server.url,
            )
            async with service:
                backend = await service.backend(server.backend)
                pub = bell_isa()
                await Estimator(mode=backend).run([pub])  # warm: token, engine compile
                started = time.perf_counter()
                if in_batch:
                    async with Batch(service=service, backend=backend):
                        estimator = Estimator()
                        results = await asyncio.gather(*(estimator.run([pub]) for _ in range(jobs)))
                else:
                    estimator = Estimator(mode=backend)
                    results = await asyncio.gather(*(estimator.run([pub]) for _ in range(jobs)))
                elapsed = time.perf_counter() - started
            for result in results:
                assert abs(float(result[0].data.evs) - 1.0) < 1e-12, result[0].data.evs
            return elapsed

        return asyncio.run(run())

    return row


def bell_measured() -> QuantumCircuit:
    """:func:`bell_isa`'s circuit with every qubit measured (ISA for aqrt_statevector and for
    fake_manila, whose cx acts on qubits 0 and 1)."""
    circuit, _ = bell_isa()
    circuit.measure_all()
    return circuit


def _official_service(server: ServerInfo) -> object:
    os.environ["IAM_URL"] = server.url
    os.environ["QISKIT_FUNCTIONS_EXPERIMENTAL"] = "1"
    os.environ["USAGE_DATA_OPT_OUT"] = "True"
    from qiskit_ibm_runtime import QiskitRuntimeService

    return QiskitRuntimeService(
        channel="ibm_quantum_platform",
        token=server.api_key,
        instance=server.instance,
        url_resolver=lambda *args, **kwargs: f"{server.url}/api/v1",
    )


def _official_sampler(executor: bool, shots: int = 100) -> ClientRow:
    def row(server: ServerInfo, jobs: int) -> float:
        """qiskit-ibm-runtime's Sampler in job mode, ``shots`` shots of a Bell pair per job: the
        executor-based one (program ``executor``: a QuantumProgram, bits post-processed by the
        client) or the legacy SamplerV2 (program ``sampler``); usage data opted out."""
        service: Any = _official_service(server)
        backend = service.backend(server.backend)
        if executor:
            from qiskit_ibm_runtime.executor_sampler import Sampler
        else:
            from qiskit_ibm_runtime import SamplerV2 as Sampler
        sampler = Sampler(mode=backend)
        circuit = bell_measured()
        sampler.run([circuit], shots=shots).result()  # warm: token, backend target, engine, noise model
        started = time.perf_counter()
        submitted = [sampler.run([circuit], shots=shots) for _ in range(jobs)]
        results = [job.result() for job in submitted]
        elapsed = time.perf_counter() - started
        for result in results:
            counts = result[0].data.meas.get_counts()
            assert sum(counts.values()) == shots, counts
            correlated = counts.get("00", 0) + counts.get("11", 0)
            # exact on aqrt_statevector; the device's noise breaks a few percent on fake_manila
            assert correlated == shots if server.backend == "aqrt_statevector" else correlated > 0.8 * shots, counts
        return elapsed

    return row


ROWS: dict[str, ClientRow] = {
    "qiskit-ibm-runtime (official client)": _official_client(opt_out_of_usage_data=False),
    "qiskit-ibm-runtime, USAGE_DATA_OPT_OUT": _official_client(opt_out_of_usage_data=True),
    "bare aiohttp requests (server bound)": raw_http_row,
    "aqrt RuntimeService client (job mode)": _aqrt_client(in_batch=False),
    "aqrt RuntimeService client (in a Batch)": _aqrt_client(in_batch=True),
    "official executor Sampler (executor)": _official_sampler(executor=True),
    "official SamplerV2 (sampler)": _official_sampler(executor=False),
    "official SamplerV2, fake_manila (noisy)": _official_sampler(executor=False),
    "official executor Sampler, fake_manila": _official_sampler(executor=True),
    "bare aiohttp, 16-qubit jobs (server engine)": medium_jobs_row,
    "bare aiohttp, 16-qubit jobs, --workers 2": medium_jobs_row,
    "official SamplerV2, fake_manila, --workers 2": _official_sampler(executor=False),
    "official executor Sampler, fake_manila, --workers 2": _official_sampler(executor=True),
}

#: The backend a row's jobs run on, when not aqrt_statevector (2 qubits); it is served beside it.
ROW_BACKENDS: dict[str, str] = {
    "official SamplerV2, fake_manila (noisy)": "fake_manila",
    "official executor Sampler, fake_manila": "fake_manila",
    "official SamplerV2, fake_manila, --workers 2": "fake_manila",
    "official executor Sampler, fake_manila, --workers 2": "fake_manila",
}

#: Server settings a row runs with beside the defaults: ``--workers 2`` starts a local Dask
#: cluster of two worker processes with the server (``aqrt[dask]``), which runs every job that is
#: not tiny (noisy ones, executor programs, the medium jobs); trivial noiseless jobs stay inline.
ROW_SETTINGS: dict[str, dict[str, Any]] = {
    "bare aiohttp, 16-qubit jobs (server engine)": {"backend_qubits": MEDIUM_QUBITS},
    "bare aiohttp, 16-qubit jobs, --workers 2": {"backend_qubits": MEDIUM_QUBITS, "workers": 2},
    "official SamplerV2, fake_manila, --workers 2": {"workers": 2},
    "official executor Sampler, fake_manila, --workers 2": {"workers": 2},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rows", default="", help="only the rows whose name contains this text")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    import logging

    logging.getLogger("qiskit_ibm_runtime").setLevel(logging.ERROR)
    print(
        f"{args.jobs} trivial jobs per row through aqrt serve (127.0.0.1): EstimatorV2 <ZZ> of a Bell pair, "
        f"or Sampler, 100 shots of it; best and median of {args.repeat}"
    )
    print(f"{'client':<40} {'best s':>8} {'median s':>9} {'jobs/s':>8} {'ms/job':>8}")
    for name, row in ROWS.items():
        if args.rows not in name:
            continue
        device = ROW_BACKENDS.get(name)
        with tempfile.TemporaryDirectory() as tmp:
            settings: dict[str, Any] = {"backend_qubits": 2, **ROW_SETTINGS.get(name, {})}
            config = ServerConfig(
                db_path=Path(tmp) / "bench.sqlite3",
                api_keys={API_KEY: "bench"},
                backends=("aqrt_statevector",) if device is None else ("aqrt_statevector", device),
                **settings,
            )
            with serve_in_thread(config) as url:
                backend = device if device is not None else config.backend_name
                info = ServerInfo(url=url, api_key=API_KEY, instance=CRN, backend=backend)
                times = [row(info, args.jobs) for _ in range(args.repeat)]
        best, median = min(times), statistics.median(times)
        print(f"{name:<40} {best:>8.3f} {median:>9.3f} {args.jobs / best:>8.1f} {1000 * best / args.jobs:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
