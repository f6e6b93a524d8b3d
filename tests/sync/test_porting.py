"""Porting from qiskit-ibm-runtime: the sync-misuse errors name the fix, the V1 call shape says
what to write, and qiskit-ibm-runtime's names work."""

from __future__ import annotations

import pytest
import sniffio
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

import aqrt
import aqrt.sync
from aqrt.job import JobId


def _bell() -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    return circuit


@pytest.mark.parametrize("kind", ["Session", "Batch"])
def test_a_plain_with_on_an_async_session_names_both_fixes(kind: str) -> None:
    session_class = getattr(aqrt, kind)
    with pytest.raises(TypeError) as raised, session_class():
        pass
    assert 'use "async with", or aqrt.sync.' + kind + " in synchronous code" in str(raised.value)


@pytest.mark.parametrize(
    ("kind", "pub"),
    [("Estimator", (_bell(), "ZZ")), ("Sampler", _bell().measure_all(inplace=False))],
)
def test_run_with_no_event_loop_names_aqrt_sync(kind: str, pub: object) -> None:
    primitive = getattr(aqrt, kind)()
    with pytest.raises(RuntimeError) as raised:
        primitive.run([pub])
    assert not isinstance(raised.value, sniffio.AsyncLibraryNotFoundError)
    assert f"aqrt.sync.{kind}" in str(raised.value)
    assert "await" in str(raised.value)


@pytest.mark.parametrize("namespace", [aqrt, aqrt.sync], ids=["aqrt", "aqrt.sync"])
@pytest.mark.parametrize("kind", ["Estimator", "Sampler"])
def test_v1_call_shapes_are_refused_with_the_v2_form(namespace: object, kind: str) -> None:
    primitive = getattr(namespace, kind)()
    circuit = _bell().measure_all(inplace=False) if kind == "Sampler" else _bell()
    v1_positional = (circuit, [0.5]) if kind == "Sampler" else (circuit, SparsePauliOp("ZZ"))
    v2_form = "estimator.run([(circuit, observable"
    if kind == "Sampler":
        v2_form = "sampler.run([(circuit, parameter_values)]"
    with pytest.raises(TypeError) as raised:
        primitive.run(*v1_positional)
    assert f"{kind}.run() takes one list of PUBs" in str(raised.value)
    assert v2_form in str(raised.value)
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) 'parameter_values'") as raised:
        primitive.run([circuit], parameter_values=[[]])
    assert v2_form in str(raised.value)


def test_estimator_refuses_shots_and_names_precision() -> None:
    with pytest.raises(TypeError, match=r"'shots': it takes a list of PUBs and precision="):
        aqrt.sync.Estimator().run([(_bell(), "ZZ")], shots=100)


def test_qiskit_ibm_runtime_names_are_aliases() -> None:
    assert aqrt.EstimatorV2 is aqrt.Estimator
    assert aqrt.SamplerV2 is aqrt.Sampler
    assert aqrt.sync.EstimatorV2 is aqrt.sync.Estimator
    assert aqrt.sync.SamplerV2 is aqrt.sync.Sampler


def test_job_id_is_a_str_and_callable() -> None:
    job_id = JobId("job-abc")
    assert job_id == "job-abc" and hash(job_id) == hash("job-abc") and f"{job_id}" == "job-abc"
    assert job_id() == "job-abc" and type(job_id()) is str
    assert {job_id: 1}["job-abc"] == 1


@pytest.mark.asyncio
async def test_the_async_job_id_works_as_property_and_as_method() -> None:
    job = aqrt.Estimator().run([(_bell(), "ZZ")])
    assert isinstance(job.job_id, str) and job.job_id.startswith("job-")
    assert job.job_id() == job.job_id
    assert (await job)[0].data.evs == pytest.approx(1.0)


def test_an_async_session_given_to_a_sync_primitive_is_refused() -> None:
    with pytest.raises(aqrt.InvalidInputError, match=r"take aqrt\.sync\.Session"):
        aqrt.sync.Estimator(mode=aqrt.Session())
