"""aqrt's RuntimeService against ``aqrt serve`` on 127.0.0.1: each side checks the other.

The server runs its real clock (tokens, job times), so these tests run in real time; the jobs are
small, and polling paces at 0.5 s (job mode) / 0.1 s (sessions).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Self

import numpy as np
import pytest
from qiskit.circuit import Parameter, QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from aqrt import (
    Batch,
    CircuitTooLargeError,
    Estimator,
    JobStatus,
    LocalService,
    Options,
    Sampler,
    Session,
    SessionCacheError,
)
from aqrt.backends.ibm import RuntimeService

from .server_support import CRN, bell, make_config, measured_bell, running_server, slow_circuit


@asynccontextmanager
async def served(tmp_path: Path, **config: object) -> AsyncIterator[tuple[RuntimeService, object]]:
    async with running_server(make_config(tmp_path, **config)) as client:
        service = RuntimeService(
            channel="ibm_cloud", token="alice-key", instance=CRN, url=client.base + "/api/v1", iam_url=client.base
        )
        async with service:
            yield service, client


def rotation_pubs() -> list[object]:
    theta = Parameter("theta")
    circuit = QuantumCircuit(2)
    circuit.ry(theta, 0)
    circuit.cx(0, 1)
    return [(circuit, SparsePauliOp(["ZZ", "XX", "IZ"]), [[0.1], [0.7], [2.0]]), (bell(), "XX")]


async def local_result(program: str, pubs: list[object], options: Options) -> object:
    backend = LocalService().backend()
    primitive = (
        Estimator(mode=backend, options=options) if program == "estimator" else Sampler(mode=backend, options=options)
    )
    return await primitive.run(pubs)


@pytest.mark.asyncio
async def test_job_mode_results_equal_the_local_engines(tmp_path: Path) -> None:
    options = Options(seed=5, default_shots=400)
    expected_evs = await local_result("estimator", rotation_pubs(), options)
    expected_counts = await local_result("sampler", [measured_bell()], options)
    async with served(tmp_path, backend_qubits=4) as (service, _):
        backend = await service.backend("aqrt_statevector")
        assert backend.num_qubits == 4
        evs = await Estimator(mode=backend, options=options).run(rotation_pubs())
        for got, want in zip(evs, expected_evs, strict=True):
            np.testing.assert_allclose(got.data.evs, want.data.evs, atol=1e-12)
        counts = await Sampler(mode=backend, options=options).run([measured_bell()])
        assert counts[0].data.meas.get_counts() == expected_counts[0].data.meas.get_counts()
        assert [b.name for b in await service.backends()] == ["aqrt_statevector"]
        assert (await service.least_busy()).name == "aqrt_statevector"


@pytest.mark.asyncio
async def test_session_and_batch_end_to_end(tmp_path: Path) -> None:
    pubs = [(bell(), SparsePauliOp(["ZZ", "ZI"]))]
    expected = (await local_result("estimator", pubs, Options()))[0].data.evs
    async with served(tmp_path) as (service, client):
        token = await client.token()
        async with Session(service=service, backend="aqrt_statevector", max_time="10m") as session:
            results = await asyncio.gather(*(Estimator().run(pubs) for _ in range(3)))
            remote = (await session.details())["remote_id"]
            status, details = await client.call("GET", f"/sessions/{remote}", token)
            assert status == 200 and details["mode"] == "dedicated" and details["accepting_jobs"] is True
        for result in results:
            np.testing.assert_allclose(result[0].data.evs, expected, atol=1e-12)
        _, details = await client.call("GET", f"/sessions/{remote}", token)
        assert details["accepting_jobs"] is False
        jobs = await service.jobs(session_id=remote, limit=10)
        assert len(jobs) == 3 and {j.session_id for j in jobs} == {remote}
        assert [await j.status() for j in jobs] == [JobStatus.DONE] * 3

        async with Batch(service=service, backend="aqrt_statevector") as batch:
            sampled = await asyncio.gather(*(Sampler().run([measured_bell()]) for _ in range(4)))
            batch_remote = (await batch.details())["remote_id"]
        assert all(sum(r[0].data.meas.get_counts().values()) == 1024 for r in sampled)
        _, details = await client.call("GET", f"/sessions/{batch_remote}", token)
        assert details["mode"] == "batch"


@pytest.mark.asyncio
async def test_cancel_reaches_the_server_and_the_first_job_rule_holds(tmp_path: Path) -> None:
    slow = [(slow_circuit(), "Z" * 22)]  # seconds of engine time
    async with served(tmp_path, backend_qubits=22) as (service, client):
        token = await client.token()
        backend = await service.backend("aqrt_statevector")
        job = Estimator(mode=backend).run(slow)
        async with asyncio.timeout(60):
            while backend.remote_job_ids.get(job.job_id) is None and not job.done():
                await asyncio.sleep(0.01)
        assert not job.done()
        job.cancel()
        await job.wait()
        assert job.status() is JobStatus.CANCELLED
        remote_job = await client.wait_final(token, backend.remote_job_ids[job.job_id])
        assert remote_job["state"]["status"] == "Cancelled"

        async with Session(service=service, backend=backend) as session:
            first = Estimator().run(slow)
            await asyncio.sleep(0.5)
            first.cancel()
            await first.wait()
            assert first.status() is JobStatus.CANCELLED
            with pytest.raises(SessionCacheError):
                Estimator().run([(bell(), "ZZ")])
            await session.cancel()


@pytest.mark.asyncio
async def test_a_job_queued_behind_another_in_a_dedicated_session_reports_queued_then_done(tmp_path: Path) -> None:
    slow = [(slow_circuit(18, 400), "Z" * 18)]  # about a second of engine time (0.14 s was missed by the 0.1 s poll)
    async with (
        served(tmp_path, backend_qubits=18) as (service, _),
        Session(service=service, backend="aqrt_statevector") as session,
    ):
        await Estimator().run([(bell(), "ZZ")])  # the first job (the session's cache) done
        ahead = Estimator().run(slow)
        behind = Estimator().run([(bell(), "ZZ")])
        seen: list[tuple[JobStatus, JobStatus]] = []
        async with asyncio.timeout(60):
            while not behind.done():
                seen.append((ahead.status(), behind.status()))
                await asyncio.sleep(0.02)
        assert (JobStatus.RUNNING, JobStatus.QUEUED) in seen  # the server ran one, queued the other
        assert behind.status() is JobStatus.DONE and ahead.status() is JobStatus.DONE
        assert seen[0][1] is JobStatus.QUEUED
        assert all(b is JobStatus.QUEUED for a, b in seen if a is JobStatus.QUEUED)  # FIFO on the server
        ahead_metrics, behind_metrics = ahead.metrics(), behind.metrics()
        assert ahead_metrics.running_loop_time is not None and behind_metrics.running_loop_time is not None
        assert behind_metrics.running_loop_time > ahead_metrics.running_loop_time
        assert session.statistics()["done"] == 3


@pytest.mark.asyncio
async def test_wide_circuits_are_refused_at_run_and_retrieval_works(tmp_path: Path) -> None:
    async with served(tmp_path, backend_qubits=3) as (service, _):
        backend = await service.backend("aqrt_statevector")
        with pytest.raises(CircuitTooLargeError):
            Estimator(mode=backend).run([(QuantumCircuit(4), "ZZZZ")])
        job = Estimator(mode=backend).run([(bell(), "ZZ")])
        result = await job
        remote = await service.job(backend.remote_job_ids[job.job_id])
        again = await remote.result()
        np.testing.assert_allclose(again[0].data.evs, result[0].data.evs)


@pytest.mark.asyncio
async def test_the_server_answers_the_idempotency_lookup_the_client_relies_on(tmp_path: Path) -> None:
    from aqrt.backends.ibm.rest import IDEMPOTENCY_TAG_PREFIX

    async with served(tmp_path) as (service, _):
        backend = await service.backend("aqrt_statevector")
        job = Estimator(mode=backend).run([(bell(), "ZZ")])
        await job
        api = service._api_checked()
        tag = IDEMPOTENCY_TAG_PREFIX + job.job_id.replace("-", "")
        found = await api.find_job_by_tag(tag)
        assert found is not None and found["id"] == backend.remote_job_ids[job.job_id]
        assert await api.find_job_by_tag(IDEMPOTENCY_TAG_PREFIX + "never-used") is None


class DroppingProxy:
    """A TCP proxy to the server that forwards a ``POST /api/v1/jobs`` but drops the connection
    instead of relaying its answer (the job is committed, the client never hears of it)."""

    def __init__(self, upstream_port: int, drops: int) -> None:
        self.upstream_port = upstream_port
        self.drops = drops
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        drop = False

        async def to_server() -> None:
            nonlocal drop
            while data := await reader.read(1 << 16):
                if self.drops > 0 and data.startswith(b"POST /api/v1/jobs HTTP"):
                    self.drops -= 1
                    drop = True
                up_writer.write(data)
                await up_writer.drain()

        async def to_client() -> None:
            while data := await up_reader.read(1 << 16):
                if drop:
                    writer.transport.abort()
                    return
                writer.write(data)
                await writer.drain()

        pipes = [asyncio.ensure_future(to_server()), asyncio.ensure_future(to_client())]
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pipe in pipes:
                pipe.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)
            up_writer.close()
            writer.close()
            self._tasks.discard(task)


@pytest.mark.asyncio
async def test_answers_lost_after_the_server_committed_make_no_duplicate_jobs(tmp_path: Path) -> None:
    pubs = [(bell(), SparsePauliOp("ZZ"))]
    async with running_server(make_config(tmp_path)) as client:
        port = int(client.base.rsplit(":", 1)[1])
        async with DroppingProxy(port, drops=2) as proxy:
            base = f"http://127.0.0.1:{proxy.port}"
            service = RuntimeService(
                channel="ibm_cloud", token="alice-key", instance=CRN, url=base + "/api/v1", iam_url=base
            )
            async with service:
                backend = await service.backend("aqrt_statevector")
                results = await asyncio.gather(*(Estimator(mode=backend).run(pubs) for _ in range(3)))
                assert [float(r[0].data.evs) for r in results] == pytest.approx([1.0, 1.0, 1.0], abs=1e-12)
                assert proxy.drops == 0
                listed = await service.jobs(limit=50)
                assert len(listed) == 3


@pytest.mark.asyncio
async def test_a_post_committed_after_the_client_gave_up_and_looked_makes_no_second_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gap the tag lookup alone leaves: the server commits the first POST only after the
    client's attempt timed out and its lookup found nothing; the client's re-post must get that
    job back (the server dedupes by the idempotency key) rather than make a second one."""
    from aqrt.server.runtime import RuntimeServer
    from aqrt.server.store import Store

    submit, decode_params = RuntimeServer.submit, RuntimeServer._decode_params
    insert_job, list_jobs = Store.insert_job, Store.list_jobs
    looked_up = asyncio.Event()
    headers: list[str | None] = []
    decoded: list[int] = []
    inserted: list[str] = []
    lookups: list[int] = []

    async def seen_submit(self: RuntimeServer, *args: object, idempotency_header: str | None = None) -> object:
        headers.append(idempotency_header)
        return await submit(self, *args, idempotency_header=idempotency_header)

    async def slow_decode_params(self: RuntimeServer, *args: object) -> object:
        decoded.append(len(decoded))
        if len(decoded) == 1:  # the first POST: the server is still at work when the client looks
            await looked_up.wait()
        return await decode_params(self, *args)

    async def counted_insert_job(self: Store, job: dict, params_json: str, idempotency: object = None) -> object:
        answer = await insert_job(self, job, params_json, idempotency)
        if answer is None:
            inserted.append(job["id"])
        return answer

    async def watched_list_jobs(self: Store, user: str, filters: dict, **kwargs: object) -> object:
        count, rows = await list_jobs(self, user, filters, **kwargs)
        if any(tag.startswith("aqrt-idem-") for tag in filters.get("tags") or ()):
            lookups.append(count)
            looked_up.set()
        return count, rows

    monkeypatch.setattr(RuntimeServer, "submit", seen_submit)
    monkeypatch.setattr(RuntimeServer, "_decode_params", slow_decode_params)
    monkeypatch.setattr(Store, "insert_job", counted_insert_job)
    monkeypatch.setattr(Store, "list_jobs", watched_list_jobs)
    async with running_server(make_config(tmp_path)) as client:
        service = RuntimeService(
            channel="ibm_cloud",
            token="alice-key",
            instance=CRN,
            url=client.base + "/api/v1",
            iam_url=client.base,
            request_timeout=2.0,
        )
        async with service:
            backend = await service.backend("aqrt_statevector")
            job = Estimator(mode=backend).run([(bell(), SparsePauliOp("ZZ"))])
            result = await job
            assert float(result[0].data.evs) == pytest.approx(1.0, abs=1e-12)
            assert lookups[0] == 0  # the client looked before the server committed
            assert len(service._transport.waits) >= 1  # and posted again
            assert len(decoded) == 1  # the re-post found the committed job by its key
            key = job.job_id.replace("-", "")
            assert len(headers) >= 2 and set(headers) == {key}  # the client sends Idempotency-Key
            assert len(inserted) == 1 and backend.remote_job_ids[job.job_id] == inserted[0]
            listed = await service.jobs(limit=50)
            assert [j.job_id for j in listed] == inserted


def test_the_readme_runtime_service_example_runs_as_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import re

    from aqrt.server import serve_in_thread

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("\n## RuntimeService") :]
    example = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    assert 'SERVER = "http://127.0.0.1:8765"' in example
    with serve_in_thread(make_config(tmp_path, api_keys={"my-key": "alice"})) as url:
        exec(compile(example.replace("http://127.0.0.1:8765", url), "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert abs(float(re.search(r"^<ZZ> = (\S+)$", printed, re.MULTILINE).group(1)) - 1.0) < 1e-12, printed


@pytest.mark.asyncio
async def test_the_ibm_backend_is_a_qiskit_backend_with_the_served_target(tmp_path: Path) -> None:
    from qiskit.providers import BackendV2

    from aqrt import BackendError

    async with served(tmp_path, backend_qubits=4) as (service, _):
        backend = await service.backend("aqrt_statevector")
    assert isinstance(backend, BackendV2) and backend.name == "aqrt_statevector"
    target = backend.target
    assert target.num_qubits == 4
    assert {"cx", "ecr", "rz", "sx", "x", "measure", "reset", "if_else"} <= set(target.operation_names)
    assert len(target.build_coupling_map().get_edges()) == 4 * 3  # full connectivity, as served
    with pytest.raises(BackendError, match="not supported"):
        backend.run(bell())


def test_a_target_from_a_device_configuration_equals_the_devices() -> None:
    """Built from the configuration document alone (what the Runtime API serves)."""
    from qiskit_ibm_runtime.fake_provider import FakeFez, FakeSherbrooke

    from aqrt.backends.ibm.target import target_from_configuration

    for device in (FakeSherbrooke(), FakeFez()):
        target = target_from_configuration(device.configuration().to_dict())
        assert target.num_qubits == device.num_qubits
        assert set(target.operation_names) == set(device.target.operation_names)
        for name in target.operation_names:
            if device.target[name] is not None and target[name] is not None:
                assert set(target[name]) == set(device.target[name]), name
