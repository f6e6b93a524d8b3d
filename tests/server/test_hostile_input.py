"""``aqrt serve`` against hostile input: sizes are admitted from what a payload declares, before
anything is decoded or allocated, and every malformed parameter is a 400, never a 500.

The payloads are built as an attacker builds them: QPY written by Qiskit, then a header field
(or a nested block's, or a ParameterVector's length) overwritten; PUBs whose few bytes declare
10^8 bindings; hand-written JSON. Against a server started for real on 127.0.0.1 (in this
process), each request must get its 4xx within two seconds, the process's memory must stay
within a generous bound, and another user's trivial job must still complete. The QPY walk is
also tested on its own: it must read every circuit Qiskit writes, in every accepted QPY
version, to its last byte, and refuse each forgery before ``qpy.load`` runs.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import struct
import time
import warnings
import zlib
from typing import Any

import numpy as np
import psutil
import pytest
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister, qpy, transpile
from qiskit.circuit import (
    AnnotatedOperation,
    ControlModifier,
    IfElseOp,
    InverseModifier,
    Parameter,
    ParameterVector,
    PowerModifier,
)
from qiskit.circuit.classical import expr, types
from qiskit.circuit.library import MCXGate, PauliEvolutionGate, QFTGate, RZGate, StatePreparation, UnitaryGate, XGate
from qiskit.quantum_info import Clifford, SparseObservable, SparsePauliOp, random_unitary
from qiskit.transpiler import CouplingMap

from aqrt.server import ServerConfig
from aqrt.wire import WireError, pubs_from_wire, pubs_to_wire, to_jsonable
from aqrt.wire.limits import QPY_VERSIONS, Admission, LimitExceeded, PayloadLimits, check_qpy
from aqrt.wire.runtime_api import pubs_from_params

from .server_support import bell, make_config, measured_bell, rotation, running_server

SERVER_LIMITS = ServerConfig(db_path=":memory:", api_keys={"k": "u"}).payload_limits()
QPY_HEADER_AT = 28  # where a QPY 16/17 file's one circuit starts: file header, type key, offset table
_CIRCUIT_HEADER = struct.Struct("!HcHIIQIQI")
_HEADER_FIELDS = ("name_size", "phase_type", "phase_size", "num_qubits", "num_clbits", "metadata_size")
_HEADER_FIELDS += ("num_registers", "num_instructions", "num_vars")
MARK_PHASE = 0.123456789  # a block's global phase, to find its header in the bytes


# -- forging, as an attacker would -------------------------------------------------------------------


def qpy_bytes(circuit: QuantumCircuit, version: int = 17) -> bytearray:
    buffer = io.BytesIO()
    qpy.dump(circuit, buffer, version=version)
    return bytearray(buffer.getvalue())


def forge_header(raw: bytearray, at: int, **fields: int) -> bytearray:
    values = list(_CIRCUIT_HEADER.unpack_from(raw, at))
    for name, value in fields.items():
        values[_HEADER_FIELDS.index(name)] = value
    _CIRCUIT_HEADER.pack_into(raw, at, *values)
    return raw


def block_header_at(raw: bytes) -> int:
    """Where the header of the block whose global phase is MARK_PHASE starts (no name)."""
    return raw.index(struct.pack("!d", MARK_PHASE)) - _CIRCUIT_HEADER.size


def tagged(raw: bytes) -> dict[str, str]:
    return {"__type__": "QuantumCircuit", "__value__": base64.b64encode(zlib.compress(bytes(raw))).decode()}


def circuit_with_marked_block() -> QuantumCircuit:
    body = QuantumCircuit(1, 1, global_phase=MARK_PHASE)
    body.x(0)
    circuit = QuantumCircuit(2, 1)
    circuit.h(0)
    circuit.measure(0, 0)
    circuit.append(IfElseOp((circuit.clbits[0], 1), body), [1], [0])
    return circuit


def forged_block(**fields: int) -> bytearray:
    raw = qpy_bytes(circuit_with_marked_block())
    return forge_header(raw, block_header_at(raw), **fields)


def vector_circuit() -> QuantumCircuit:
    circuit = QuantumCircuit(1)
    circuit.rx(ParameterVector("v", 2)[1], 0)
    return circuit


def forge_vector_length(raw: bytearray, length: int) -> bytearray:
    """Overwrite the length of the ParameterVector "v" of 2 in its element's record."""
    record = struct.pack("!HQ", 1, 2)  # name size 1, vector size 2
    at = raw.index(record)
    struct.pack_into("!HQ", raw, at, 1, length)
    return raw


def forge_controls(raw: bytearray, gate_name: bytes, controls: int) -> bytearray:
    at = raw.index(gate_name) - 33  # the instruction's fixed part precedes its name
    struct.pack_into("!I", raw, at + 25, controls)
    return raw


# -- the QPY walk on its own ------------------------------------------------------------------------


def corpus() -> dict[str, QuantumCircuit]:
    """Circuits that use what QPY can hold: parameters and vectors, expressions and a substitution,
    every control-flow form, custom gates and instructions, controlled and annotated gates,
    Pauli evolutions, unitaries, state preparation, Cliffords, classical variables, stretches,
    boxes, a layout, aliased registers, metadata."""
    out = {"bell": bell()}
    theta, phi, vector = Parameter("t"), Parameter("p"), ParameterVector("v", 5)
    circuit = QuantumCircuit(3, global_phase=theta * 2)
    circuit.rx(theta, 0)
    circuit.ry(2 * theta + phi, 1)
    circuit.rz(vector[3], 2)
    circuit.rx(vector[0] * theta - 1.5, 0)
    circuit.u(theta.sin(), phi.exp(), vector[1] ** 2, 1)
    circuit.rz((theta + phi).subs({phi: vector[2]}), 0)
    out["parameters"] = circuit

    qr, cr, cr2 = QuantumRegister(3, "q"), ClassicalRegister(3, "c"), ClassicalRegister(2, "d")
    circuit = QuantumCircuit(qr, cr, cr2)
    circuit.h(0)
    circuit.measure(0, 0)
    with circuit.if_test((cr[0], 1)) as else_:
        circuit.x(1)
    with else_:
        circuit.y(1)
    with circuit.if_test((cr, 3)):
        circuit.z(2)
    with circuit.if_test(expr.logic_and(expr.equal(cr, 5), cr2[0])):
        circuit.h(2)
    with circuit.while_loop((cr[1], 0)):
        circuit.h(1)
        circuit.measure(1, 1)
        with circuit.if_test((cr[2], 1)):
            circuit.break_loop()
    with circuit.for_loop(range(3)) as index:
        circuit.rx(index * 0.5, 0)
        circuit.continue_loop()
    with circuit.for_loop((1, 4, 9)):
        circuit.x(0)
    with circuit.switch(cr2) as case:
        with case(0):
            circuit.x(0)
        with case(1, 2):
            circuit.y(0)
        with case(case.DEFAULT):
            circuit.z(0)
    circuit.reset(2)
    circuit.barrier()
    circuit.delay(100, 0, unit="dt")
    out["control flow"] = circuit

    gate_body = QuantumCircuit(2, name="mygate")
    gate_body.h(0)
    gate_body.cx(0, 1)
    gate_body.rz(theta, 1)
    gate = gate_body.to_gate()
    instruction_body = QuantumCircuit(2, 1, name="myinst")
    instruction_body.h(0)
    instruction_body.measure(0, 0)
    circuit = QuantumCircuit(4, 1, metadata={"a": [1, 2], "b": "x"})
    circuit.append(gate, [0, 1])
    circuit.append(instruction_body.to_instruction(), [2, 3], [0])
    circuit.append(gate.control(1, ctrl_state=0, annotated=False), [2, 0, 1])
    circuit.append(MCXGate(3), [0, 1, 2, 3])
    circuit.append(MCXGate(2, ctrl_state=1), [0, 1, 2])
    circuit.append(AnnotatedOperation(XGate(), [InverseModifier(), ControlModifier(2), PowerModifier(2)]), [0, 1, 2])
    circuit.append(PauliEvolutionGate(SparsePauliOp(["XX", "ZI"], [1.0, 0.5]), time=theta), [0, 1])
    circuit.append(PauliEvolutionGate([SparsePauliOp("XY"), SparsePauliOp("ZZ")], time=0.3), [2, 3])
    circuit.append(UnitaryGate(random_unitary(4, seed=1)), [0, 1])
    circuit.append(QFTGate(3), [0, 1, 2])
    circuit.append(StatePreparation([0, 1, 0, 0]), [0, 1])
    circuit.initialize("01", [2, 3])
    circuit.append(RZGate(0.1).control(2, annotated=False), [0, 1, 2])
    out["custom gates"] = circuit

    circuit = QuantumCircuit(1)
    circuit.append(Clifford(QuantumCircuit(1)), [0])
    out["clifford"] = circuit
    circuit = QuantumCircuit(3)
    number = circuit.add_var("a", expr.lift(5, types.Uint(8)))
    circuit.add_var("flag", True)
    with circuit.if_test(expr.equal(number, 5)):
        circuit.x(0)
    circuit.store(number, expr.bit_and(number, 3))
    out["variables"] = circuit
    circuit = QuantumCircuit(2)
    stretch = circuit.add_stretch("s")
    circuit.delay(expr.mul(stretch, 2.0), 0)
    circuit.add_var("f", expr.lift(1.5))
    out["stretch and float"] = circuit
    circuit = QuantumCircuit(2)
    with circuit.box():
        circuit.x(0)
    out["box"] = circuit
    line = QuantumCircuit(5)
    line.h(0)
    for qubit in range(4):
        line.cx(qubit, qubit + 1)
    out["transpiled"] = transpile(
        line, coupling_map=CouplingMap.from_line(7), initial_layout=[6, 4, 2, 0, 1], seed_transpiler=1
    )
    owned = QuantumRegister(2, "a")
    circuit = QuantumCircuit(owned, QuantumRegister(bits=[owned[1], owned[0]], name="alias"))
    circuit.cx(0, 1)
    out["aliased registers"] = circuit
    circuit = QuantumCircuit(2)
    circuit.append(PauliEvolutionGate(SparseObservable("XZ"), time=0.2), [0, 1])
    out["sparse evolution"] = circuit  # QPY 17 and later only: older versions cannot hold it
    return out


def test_the_walk_reads_every_circuit_qiskit_writes_to_its_last_byte() -> None:
    walked = 0
    for name, circuit in corpus().items():
        for version in QPY_VERSIONS:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "version X is older than ..." notes
                    raw = bytes(qpy_bytes(circuit, version))
            except qpy.QpyError:
                continue  # a feature this version cannot hold (float types before 14, ...)
            if name == "sparse evolution" and version < 17:
                # Qiskit writes it, but cannot read it back: neither does the walk.
                with pytest.raises(WireError, match="malformed"):
                    check_qpy("QuantumCircuit", raw, Admission(SERVER_LIMITS))
                with pytest.raises(qpy.QpyError):
                    qpy.load(io.BytesIO(raw))
                continue
            check_qpy("QuantumCircuit", raw, Admission(SERVER_LIMITS))  # raises on any leftover byte
            (read,) = qpy.load(io.BytesIO(raw))
            assert read.num_qubits == circuit.num_qubits
            walked += 1
    assert walked >= 45  # 11 circuits x 5 versions, less those a version cannot hold


@pytest.mark.parametrize(
    ("forge", "message"),
    [
        (lambda: forge_header(qpy_bytes(bell()), QPY_HEADER_AT, num_qubits=2**32 - 1), "has 4294967295 qubits"),
        (lambda: forge_header(qpy_bytes(bell()), QPY_HEADER_AT, num_clbits=3_000_000), "has 3000000 clbits"),
        (lambda: forge_header(qpy_bytes(bell()), QPY_HEADER_AT, num_instructions=10**6), "1000000 operations"),
        (lambda: forged_block(num_qubits=10**7), "a block or definition in the circuit has 10000000 qubits"),
        (lambda: forged_block(num_clbits=10**7), "a block or definition in the circuit has 10000000 clbits"),
        (lambda: forge_vector_length(qpy_bytes(vector_circuit()), 10**12), "ParameterVector elements"),
        (lambda: forge_vector_length(qpy_bytes(vector_circuit()), 1), "malformed: element 1 of a ParameterVector"),
        (lambda: forge_controls(qpy_bytes(_mcx()), b"MCXGate", 2**31), "2147483648 controls"),
        (lambda: forge_uint_width("expression"), "a classical value of 4294967295 bits; .* \\(max_clbits\\)"),
        (lambda: forge_uint_width("variable"), "a classical value of 4294967295 bits"),
        (lambda: forge_header(qpy_bytes(bell()), QPY_HEADER_AT, metadata_size=2**40), "malformed"),
        (lambda: forge_header(qpy_bytes(bell()), QPY_HEADER_AT, num_registers=2**32 - 1), "malformed"),
        (lambda: qpy_bytes(bell()) + b"\x00", "1 bytes follow the circuit"),
        (lambda: qpy_bytes(bell(), version=18), "QPY version 18 is not read here"),
    ],
)
def test_the_walk_refuses_forgeries_before_qpy_reads_them(forge: Any, message: str, monkeypatch) -> None:
    raw = bytes(forge())

    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("qpy.load ran on a forged blob")

    monkeypatch.setattr(qpy, "load", never)
    pub = [tagged(raw), [{"Z" * 2: 1.0}], None, None]
    with pytest.raises(WireError, match=message):
        pubs_from_params("estimator", {"pubs": [pub], "version": 2}, limits=SERVER_LIMITS)


def forge_uint_width(where: str) -> bytearray:
    """A ``Uint(9)`` in a condition's cast, or a standalone ``Uint(8)`` variable, made 2**32-1 wide."""
    register = ClassicalRegister(8, "c")
    circuit = QuantumCircuit(QuantumRegister(1), register)
    if where == "variable":
        circuit.add_var("a", expr.lift(5, types.Uint(8)))
    with circuit.if_test(expr.equal(expr.cast(register, types.Uint(9)), 3)):
        circuit.x(0)
    raw = qpy_bytes(circuit)
    at = raw.index(b"u\x00\x00\x00\x08a" if where == "variable" else b"cu\x00\x00\x00\x09")
    struct.pack_into("!I", raw, at + (1 if where == "variable" else 2), 2**32 - 1)
    return raw


def _mcx() -> QuantumCircuit:
    circuit = QuantumCircuit(4)
    circuit.append(MCXGate(3), [0, 1, 2, 3])
    return circuit


def test_without_circuit_limits_nothing_is_walked() -> None:
    """A decode with no bound on circuits (a client's) reads what Qiskit reads, QPY 18 too."""
    pub = [tagged(qpy_bytes(bell(), version=18)), [{"ZZ": 1.0}], None, None]
    (read,) = pubs_from_wire("estimator", [pub])
    assert read.circuit.num_qubits == 2
    with pytest.raises(WireError, match="QPY version 18 is not read here"):
        pubs_from_wire("estimator", [pub], limits=PayloadLimits(max_qubits=30))


def test_vectors_count_once_per_circuit_and_add_up_over_the_job() -> None:
    limits = PayloadLimits(max_parameters=10)
    circuit = QuantumCircuit(1)
    vector = ParameterVector("v", 6)
    for element in vector:
        circuit.rx(element, 0)  # six records of one vector of 6: counted once
    pub = pubs_to_wire("estimator", [(circuit, "Z", [[0.0] * 6])])[0]
    pubs_from_params("estimator", {"pubs": [pub], "version": 2}, limits=limits)
    with pytest.raises(
        LimitExceeded, match=r"PUB 1: ParameterVector elements: 6, 12 with what came before.*\(max_parameters\)"
    ):
        pubs_from_params("estimator", {"pubs": [pub, pub], "version": 2}, limits=limits)


# -- the server, attacked over HTTP -----------------------------------------------------------------


def job_body(program: str, pubs: list[Any], **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "program_id": program,
        "backend": "aqrt_statevector",
        "params": {"pubs": pubs, "version": 2},
    }
    body.update(extra)
    return body


def rss() -> int:
    return psutil.Process().memory_info().rss


class Attack:
    """Sends hostile requests to a running server and holds each to a 4xx within two seconds."""

    def __init__(self, client: Any, token: str) -> None:
        self.client, self.token = client, token
        self.slowest = 0.0

    async def expect(self, status: int, needle: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        if "body" in kwargs:  # sent as a stream: aiohttp warns about large bodies of bytes
            text = await asyncio.to_thread(json.dumps, kwargs.pop("body"))
            kwargs["data"] = io.BytesIO(text.encode())
        started = time.perf_counter()
        got, body = await self.client.call(method, path, self.token, **kwargs)
        elapsed = time.perf_counter() - started
        self.slowest = max(self.slowest, elapsed)
        assert got == status, (path, got, body)
        assert set(body) == {"errors", "trace", "status_code"} and body["status_code"] == status, body
        message = body["errors"][0]["message"]
        assert needle in message, message
        assert len(message) < 1000, message  # nothing sent is echoed back in full
        assert elapsed < 2.0, (needle, elapsed)
        return body

    async def submit(self, needle: str, body: Any, status: int = 400) -> None:
        await self.expect(status, needle, "POST", "/jobs", body=body)


async def _bob_s_job_completes(client: Any) -> None:
    bob = await client.token("bob-key")
    job_id = await client.submit(bob, "estimator", [(bell(), "ZZ")])
    job = await client.wait_final(bob, job_id, timeout=30)
    assert job["state"]["status"] == "Completed", job
    np.testing.assert_allclose((await client.result(bob, job_id))[0].data.evs, 1.0, atol=1e-12)


async def _nothing_was_stored(client: Any, token: str) -> None:
    status, listing = await client.call("GET", "/jobs", token)
    assert status == 200 and listing["count"] == 0, listing


@pytest.mark.asyncio
async def test_forged_circuit_sizes_are_refused_before_decoding(tmp_path) -> None:
    async with running_server(make_config(tmp_path)) as client:
        alice = await client.token()
        attack = Attack(client, alice)
        await _bob_s_job_completes(client)  # warm: the engine has run once
        before = await asyncio.to_thread(rss)

        wide = forge_header(qpy_bytes(bell()), QPY_HEADER_AT, num_qubits=2**32 - 1)
        assert len(wide) < 500  # the 425 bytes
        for raw, needle in [
            (wide, "PUB 0: the circuit has 4294967295 qubits; this server takes at most 24 (max_qubits)"),
            (forge_header(qpy_bytes(measured_bell()), QPY_HEADER_AT, num_clbits=3_000_000), "3000000 clbits"),
            (forge_header(qpy_bytes(bell()), QPY_HEADER_AT, num_instructions=10**6), "1000000 operations"),
        ]:
            await attack.submit(needle, job_body("estimator", [[tagged(raw), [{"ZZ": 1.0}], None, None]]))
        nested = forged_block(num_qubits=10**7)
        await attack.submit(
            "a block or definition in the circuit has 10000000 qubits",
            job_body("sampler", [[tagged(nested), None, 10]]),
        )
        for length, needle in [(10**12, "ParameterVector elements: 1000000000000"), (10**7, "(max_parameters)")]:
            raw = forge_vector_length(qpy_bytes(vector_circuit()), length)
            pub = [tagged(raw), [{"Z": 1.0}], to_jsonable(np.zeros((1, 1))), None]
            await attack.submit(needle, job_body("estimator", [pub]))
        wide_value = [tagged(forge_uint_width("expression")), [{"Z": 1.0}], None, None]
        await attack.submit("a classical value of 4294967295 bits", job_body("estimator", [wide_value]))
        options_circuit = job_body("estimator", pubs_to_wire("estimator", [(bell(), "ZZ")]))
        options_circuit["params"]["options"] = {"extra": tagged(wide)}  # a circuit anywhere is checked
        await attack.submit("4294967295 qubits", options_circuit)

        await _nothing_was_stored(client, alice)
        await _bob_s_job_completes(client)
        grown = await asyncio.to_thread(rss) - before
        assert grown < 300 << 20, f"the server grew by {grown >> 20} MiB"


@pytest.mark.asyncio
async def test_bindings_shots_observables_and_output_are_bounded_from_declared_shapes(tmp_path) -> None:
    async with running_server(make_config(tmp_path, max_observable_terms=100_000)) as client:
        alice = await client.token()
        attack = Attack(client, alice)
        await _bob_s_job_completes(client)
        before = await asyncio.to_thread(rss)

        # A PUB of a few hundred bytes whose parameter values (no parameters) broadcast to 10^8.
        empty = pubs_to_wire("sampler", [(measured_bell(),)])[0]
        empty[1] = to_jsonable(np.zeros((100_000_000, 0)))
        assert len(json.dumps(empty)) < 1000
        await attack.submit("PUB 0: bindings after broadcasting to shape (100000000,)", job_body("sampler", [empty]))
        declared = pubs_to_wire("sampler", [(measured_bell(),)])[0]
        declared[1] = {"__type__": "BindingsArray", "__value__": {"shape": [100_000_000], "data": {}}}
        await attack.submit("(max_bindings)", job_body("sampler", [declared]))
        # Many bindings spread over PUBs: the limit is per job.
        spread = pubs_to_wire("sampler", [(measured_bell(), np.zeros((60_000, 0)), 1)] * 2)
        needle = "PUB 1: bindings after broadcasting to shape (60000,): 60000, 120000"
        await attack.submit(needle, job_body("sampler", spread))
        # Observables x bindings broadcast: 1000 x 1000 from two small arrays.
        crossed = pubs_to_wire("estimator", [(rotation(), [["Z"]] * 1000, np.zeros((1, 1000, 1)))])[0]
        await attack.submit("(1000, 1000)", job_body("estimator", [crossed]))

        for shots, status in [(10**8, 400), (10**12, 400), (1e8, 400)]:
            pub = pubs_to_wire("sampler", [(measured_bell(),)])[0]
            pub[2] = shots
            await attack.submit("this server takes at most 100000 (max_shots)", job_body("sampler", [pub]), status)
        huge_default = job_body("sampler", pubs_to_wire("sampler", [(measured_bell(),)]))
        huge_default["params"]["options"] = {"default_shots": 10**12}
        await attack.submit("default_shots is 1000000000000", huge_default)
        # 10^5 bindings x 1000 shots: a few hundred bytes asking for 10^8 sampled bytes.
        output = pubs_to_wire("sampler", [(measured_bell(), np.zeros((100_000, 0)), 1000)])[0]
        await attack.submit("(max_result_bits)", job_body("sampler", [output]))

        many = pubs_to_wire("estimator", [(bell(), "ZZ")])[0]
        many[1] = [{"ZZ": 1.0}] * 200_000  # counted in the JSON: no observable is built
        await attack.submit("more than 100000 Pauli terms", job_body("estimator", [many]))

        await _nothing_was_stored(client, alice)
        await _bob_s_job_completes(client)
        grown = await asyncio.to_thread(rss) - before
        assert grown < 300 << 20, f"the server grew by {grown >> 20} MiB"


@pytest.mark.asyncio
async def test_malformed_parameters_and_filters_are_400_never_500(tmp_path) -> None:
    async with running_server(make_config(tmp_path)) as client:
        alice = await client.token()
        attack = Attack(client, alice)
        good = pubs_to_wire("estimator", [(bell(), "ZZ")])
        job_id = await client.submit(alice, "estimator", [(bell(), "ZZ")])
        await client.wait_final(alice, job_id)

        for cost, needle in [
            (1e30, "must be a positive int"),
            (10**30, "(max_cost)"),
            (8 * 3600 + 1, "(max_cost)"),
            (-1, "must be a positive int"),
            ("5", "must be a positive int"),
            (True, "must be a positive int"),
        ]:
            await attack.submit(needle, job_body("estimator", good, cost=cost))
        await attack.submit("(max_tags)", job_body("estimator", good, tags=["t"] * 100_000))
        await attack.submit("(max_tag_length)", job_body("estimator", good, tags=["x" * 10_000_000]))
        await attack.submit("non-empty UTF-8 strings", job_body("estimator", good, tags=[{"a": 1}]))
        await attack.submit("session_id must be", job_body("estimator", good, session_id=["s"]))
        await attack.submit("session_id must be", job_body("estimator", good, session_id="s" * 1000))
        await attack.submit("program", job_body("estimator", good, program_id=["x" * 10_000]), status=404)
        await attack.submit("must be a JSON object", ["not", "an", "object"])
        # Lone surrogates ("\ud800" in JSON) are strings Python holds and SQLite cannot.
        await attack.submit("UTF-8 strings", job_body("estimator", good, tags=["\ud800"]))
        await attack.submit("UTF-8 strings", job_body("estimator", good, tags=["aqrt-idem-\udfff"]))
        await attack.submit("session_id must be", job_body("estimator", good, session_id="\ud800"))
        await attack.expect(400, "UTF-8 strings", "PUT", f"/jobs/{job_id}/tags", body={"tags": ["\ud800"]})
        await attack.expect(400, "(max_tags)", "PUT", f"/jobs/{job_id}/tags", body={"tags": ["t"] * 100_000})
        await attack.expect(400, "(max_tag_length)", "PUT", f"/jobs/{job_id}/tags", body={"tags": ["x" * 10_000]})

        for params, needle in [
            ({"created_after": "0001-01-01T00:00:00+01:00"}, "created_after must be an ISO 8601 time"),
            ({"created_before": "9999-12-31T23:59:59-01:00"}, "created_before must be an ISO 8601 time"),
            ({"created_after": "yesterday"}, "created_after must be an ISO 8601 time"),
            ({"offset": str(10**19)}, "offset must be in 0..9223372036854775807"),
            ({"offset": "-1"}, "offset must be in"),
            ({"limit": "-1"}, "limit must be in 0..200"),
            ({"limit": str(10**30)}, "limit must be an integer"),
            ({"limit": "1_0"}, "limit must be an integer"),
            ({"limit": "١٢"}, "limit must be an integer"),
            ({"limit": "ten"}, "limit must be an integer"),
            ({"pending": "maybe"}, "pending must be"),
            ({"sort": "sideways"}, "sort must be"),
            ([("tags", "a")] * 1001, "(max_tags)"),
            ({"tags": "x" * 1000}, "(max_tag_length)"),
        ]:
            await attack.expect(400, needle, "GET", "/jobs", params=params)
        status, listing = await client.call("GET", "/jobs", alice, params={"offset": str(2**63 - 1)})
        assert status == 200 and listing["jobs"] == [] and listing["count"] == 1

        for session, needle in [
            ({"mode": "batch", "backend": "aqrt_statevector", "instance": {"a": 1}}, "instance must be"),
            ({"mode": "batch", "backend": "aqrt_statevector", "instance": "c" * 5000}, "instance must be"),
            ({"mode": ["batch"], "backend": "aqrt_statevector"}, "mode must be"),
            ({"mode": "batch", "backend": "aqrt_statevector", "instance": "\ud800"}, "instance must be"),
            ({"mode": "batch", "backend": "aqrt_statevector", "max_ttl": 1e30}, "max_ttl must be"),
            ({"mode": "batch", "backend": "aqrt_statevector", "max_ttl": 10**30}, "max_ttl must be"),
        ]:
            await attack.expect(400, needle, "POST", "/sessions", body=session)
        await attack.expect(404, "not found", "POST", "/sessions", body={"mode": "batch", "backend": "b" * 100_000})

        # Header bytes that are not UTF-8 (aiohttp keeps them as lone surrogates).
        body = json.dumps(job_body("estimator", good)).encode()
        for header, path in [(b"Service-CRN", "/jobs"), (b"Service-CRN", "/sessions"), (b"Idempotency-Key", "/jobs")]:
            status, answer = await _raw_post(client, alice, path, header + b": a\xffb", body)
            assert status == 400 and "header must be UTF-8 text" in answer["errors"][0]["message"], answer

        status, listing = await client.call("GET", "/jobs", alice)
        assert status == 200 and [job["id"] for job in listing["jobs"]] == [job_id]
        await _bob_s_job_completes(client)


async def _raw_post(client: Any, token: str, path: str, header: bytes, body: bytes) -> tuple[int, Any]:
    """POST with a header line written byte for byte (HTTP clients refuse non-ASCII headers)."""
    host, port = client.base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            b"POST /api/v1"
            + path.encode()
            + b" HTTP/1.1\r\nHost: "
            + host.encode()
            + b"\r\nAuthorization: Bearer "
            + token.encode()
            + b"\r\n"
            + header
            + b"\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\nConnection: close\r\n\r\n"
            + body
        )
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, text = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(text)


@pytest.mark.asyncio
async def test_large_params_and_results_are_read_back_whole(tmp_path) -> None:
    """A job's params and result larger than what is written on the loop (64 KiB) come back
    whole from the worker thread that writes them."""
    angles = np.random.default_rng(7).uniform(0, np.pi, (20_000, 1))
    async with running_server(make_config(tmp_path)) as client:
        alice = await client.token()
        job_id = await client.submit(alice, "estimator", [(rotation(), "Z", angles)])
        assert (await client.wait_final(alice, job_id))["state"]["status"] == "Completed"
        result = await client.result(alice, job_id)
        np.testing.assert_allclose(result[0].data.evs, np.cos(angles[:, 0]), atol=1e-12)
        status, job = await client.call("GET", f"/jobs/{job_id}", alice)
        assert status == 200 and job["id"] == job_id and len(json.dumps(job["params"])) > 64 << 10
        (pub,), _ = await asyncio.to_thread(pubs_from_params, "estimator", job["params"], limits=SERVER_LIMITS)
        np.testing.assert_array_equal(pub.parameter_values.as_array(), angles)
        status, job = await client.call("GET", f"/jobs/{job_id}", alice, params={"exclude_params": "true"})
        assert status == 200 and "params" not in job
        for _ in range(25):
            await client.submit(alice, "estimator", [(bell(), "ZZ")], tags=["x" * 500] * 32)
        status, listing = await client.call("GET", "/jobs", alice, params={"limit": "200"})
        assert status == 200 and listing["count"] == 26 and len(listing["jobs"]) == 26
        assert listing["jobs"][0]["tags"] == ["x" * 500] * 32
