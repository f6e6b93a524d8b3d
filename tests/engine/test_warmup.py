"""Kernels compile by need, tier by tier (``aqrt.engine.kernels``): a Bell job loads the small
tier only, the serial paths that run inline on the event loop never compile (they refuse a
program whose tier is not loaded), and ``warmup()`` still loads every tier."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.containers.sampler_pub import SamplerPub

from aqrt import LocalService
from aqrt._concurrency import CancelFlag
from aqrt.backends.base import NOT_INLINE, ExecutionContext
from aqrt.backends.local import warmup as local_warmup
from aqrt.engine import kernels, lower_circuit, simulate, warmup
from aqrt.engine._warmup import is_warm
from aqrt.engine.kernels.interpreter import run_basic_program, run_program
from aqrt.engine.ops import CTRL, CX, DENSE, DIAG, PERM, BoundProgram, OpArrays
from aqrt.job import JobRequest
from aqrt.options import Options

from .support import random_op

DTYPES = [np.complex128, np.complex64]
BASIC_CASES = [(DENSE, 1), (PERM, 1), (DIAG, 1), (DIAG, 2), (DIAG, 3), (CTRL, 1), (CTRL, 2), (CTRL, 4), (CX, 2)]


@pytest.fixture(scope="module", autouse=True)
def _compiled() -> None:
    for dtype in ("complex128", "complex64"):
        warmup(dtype, ["small", "ops", "sweep"])


def _bell(num_qubits: int = 2) -> QuantumCircuit:
    circuit = QuantumCircuit(num_qubits)
    circuit.h(0)
    circuit.cx(0, 1)
    return circuit


def _with_swap() -> QuantumCircuit:
    circuit = _bell()
    circuit.swap(0, 1)
    return circuit


def _program(ops: list[tuple], dtype: type) -> tuple[OpArrays, np.ndarray]:
    widest = max(qubits.shape[0] for _, qubits, _, _ in ops)
    arrays = OpArrays(
        kinds=np.array([kind for kind, _, _, _ in ops], dtype=np.int64),
        qubits=np.zeros((len(ops), widest), dtype=np.int64),
        widths=np.array([qubits.shape[0] for _, qubits, _, _ in ops], dtype=np.int64),
        aux=np.array([aux for _, _, _, aux in ops], dtype=np.int64).reshape(len(ops), 2),
        sources=np.zeros(len(ops), dtype=np.int64),
        offsets=np.cumsum([0] + [entries.shape[0] for _, _, entries, _ in ops[:-1]]).astype(np.int64),
    )
    for j, (_, qubits, _, _) in enumerate(ops):
        arrays.qubits[j, : qubits.shape[0]] = qubits
    static = np.concatenate([entries for _, _, entries, _ in ops] + [np.zeros(1)]).astype(dtype)
    return arrays, static


# -- the small interpreter ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_run_basic_program_gives_what_run_program_gives(dtype: type) -> None:
    """Every op kind it runs, alone and in a random program, on states below and above the SIMD
    threshold (qubit 4): the same amplitudes as run_program, bit for bit, but for a one-qubit
    permutation with arbitrary phases (the controlled kernel without controls runs it: within a
    rounding of the product; X and Y exactly)."""
    rng = np.random.default_rng(15)
    for n in (4, 7, 10):
        programs = [[random_op(kind, width, n, rng, dtype)] for kind, width in BASIC_CASES]
        programs.append([random_op(*BASIC_CASES[i], n, rng, dtype) for i in rng.integers(len(BASIC_CASES), size=40)])
        for ops in programs:
            arrays, static = _program(ops, dtype)
            assert simulate.is_basic(arrays)
            state = np.ascontiguousarray(rng.normal(size=1 << n) + 1j * rng.normal(size=1 << n), dtype=dtype)
            by_basic, by_full = state.copy(), state.copy()
            run_basic_program(by_basic, arrays.as_tuple(), static, np.zeros(0, dtype=dtype))
            run_program(by_full, arrays.as_tuple(), static, np.zeros(0, dtype=dtype))
            where = f"n={n} kinds={arrays.kinds.tolist()}"
            if PERM in arrays.kinds:
                scale = float(np.abs(by_full).max())
                np.testing.assert_allclose(
                    by_basic, by_full, rtol=0, atol=4 * np.finfo(dtype).eps * scale, err_msg=where
                )
            else:
                np.testing.assert_array_equal(by_basic, by_full, err_msg=where)
    for matrix in ([[0, 1], [1, 0]], [[0, -1j], [1j, 0]]):  # X and Y, alone: bit for bit
        arrays, static = _program(
            [(PERM, np.array([3]), np.array(matrix, dtype=dtype).reshape(-1), np.zeros(2))], dtype
        )
        state = np.ascontiguousarray(rng.normal(size=32) + 1j * rng.normal(size=32), dtype=dtype)
        by_basic, by_full = state.copy(), state.copy()
        run_basic_program(by_basic, arrays.as_tuple(), static, np.zeros(0, dtype=dtype))
        run_program(by_full, arrays.as_tuple(), static, np.zeros(0, dtype=dtype))
        np.testing.assert_array_equal(by_basic, by_full)


def test_run_basic_program_refuses_an_op_only_run_program_runs() -> None:
    rng = np.random.default_rng(1)
    for kind, width in ((DENSE, 2), (PERM, 2), (DENSE, 3)):
        arrays, static = _program([random_op(kind, width, 4, rng, np.complex128)], np.complex128)
        assert not simulate.is_basic(arrays)
        with pytest.raises(ValueError, match="only run_program runs"):
            run_basic_program(np.zeros(16, dtype=np.complex128), arrays.as_tuple(), static, np.zeros(0, np.complex128))


def test_common_circuits_are_basic_and_a_swap_is_not() -> None:
    ghz = _bell(5)
    for q in range(1, 4):
        ghz.cx(q, q + 1)
    ansatz = QuantumCircuit(3)
    ansatz.x(0)
    ansatz.ry(0.3, [0, 1, 2])
    ansatz.cz(0, 1)
    ansatz.rzz(0.2, 1, 2)
    ansatz.ccx(0, 1, 2)
    for circuit, basic in ((_bell(), True), (ghz, True), (ansatz, True), (_with_swap(), False)):
        program = lower_circuit(circuit).bind(np.zeros((1, 0)))
        assert simulate.is_basic(program.ops) is basic
        assert simulate.serial_tier(program) == ("small" if basic else "ops")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_one_binding_runs_serially_and_gives_what_a_sweep_gives(dtype: type) -> None:
    """term_values and probabilities of one binding skip the sweep kernels (and their tier):
    the values are those a sweep computes for that binding (to rounding: the sweep kernels
    reduce several bindings' terms together)."""
    circuit = _with_swap()
    circuit.ry(0.4, 1)
    circuit.t(0)
    x = np.array([0, 3, 1], dtype=np.int64)
    z = np.array([3, 0, 2], dtype=np.int64)
    for program in (
        lower_circuit(circuit).bind(np.zeros((1, 0)), dtype=dtype),
        lower_circuit(_bell()).bind(np.zeros((1, 0)), dtype=dtype),
    ):
        twice = BoundProgram(
            num_qubits=program.num_qubits,
            ops=program.ops,
            static_buffer=program.static_buffer,
            binding_buffers=np.repeat(program.binding_buffers, 2, axis=0),
        )
        swept = simulate.term_values(twice, x, z)  # two bindings: the sweep kernels
        tolerance = 1e-12 if np.dtype(dtype) == np.complex128 else 1e-5
        for values in (simulate.term_values(program, x, z), simulate.run_serial(program, x, z)):
            np.testing.assert_allclose(values[0], swept[0], rtol=0, atol=tolerance)
            np.testing.assert_allclose(values[0], swept[1], rtol=0, atol=tolerance)
        probabilities = simulate.probabilities(program, 0, 1)[0]
        np.testing.assert_allclose(probabilities, simulate.probabilities(twice, 0, 2)[1], rtol=0, atol=tolerance)


# -- the inline rule: serial paths never compile ---------------------------------------------------


@pytest.fixture
def nothing_loaded(monkeypatch: pytest.MonkeyPatch) -> set[tuple[str, str]]:
    """A process in which no tier is loaded yet (the kernels themselves stay compiled)."""
    loaded: set[tuple[str, str]] = set()
    monkeypatch.setattr(kernels, "_loaded", loaded)
    return loaded


def test_serial_paths_refuse_a_tier_that_is_not_loaded(nothing_loaded: set[tuple[str, str]]) -> None:
    x = z = np.array([3], dtype=np.int64)
    bell = lower_circuit(_bell()).bind(np.zeros((1, 0)))
    swap = lower_circuit(_with_swap()).bind(np.zeros((1, 0)))
    for call in (lambda p: simulate.run_serial(p, x, z), lambda p: simulate.serial_probabilities(p, 0, 1)):
        with pytest.raises(simulate.KernelsNotLoaded) as refused:
            call(bell)
        assert (refused.value.tier, refused.value.dtype) == ("small", "complex128")
        kernels.mark_loaded("small", "complex128")
        call(bell)
        with pytest.raises(simulate.KernelsNotLoaded, match="'ops' kernels for complex128"):
            call(swap)
        kernels.mark_loaded("ops", "complex128")
        call(swap)
        nothing_loaded.clear()


def test_entry_points_load_the_tier_they_use_and_serial_paths_never_do(
    nothing_loaded: set[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Off the loop, an entry point asks the registered loader (the warm-up) for the tier it is
    about to use, so that its compile gets the notice; the inline paths only refuse."""
    asked: list[tuple[str, str]] = []
    monkeypatch.setattr(kernels, "_loader", lambda tier, dtype: asked.append((tier, dtype)))
    x = z = np.array([3], dtype=np.int64)
    bell = lower_circuit(_bell()).bind(np.zeros((1, 0)))
    swap = lower_circuit(_with_swap()).bind(np.zeros((1, 0)), dtype=np.complex64)
    swept = lower_circuit(_bell()).bind(np.zeros((3, 0)))
    simulate.term_values(bell, x, z)
    simulate.probabilities(swap, 0, 1)
    simulate.term_values(swept, x, z)
    simulate.final_state(bell, parallel=False)
    assert asked == [("small", "complex128"), ("ops", "complex64"), ("sweep", "complex128"), ("small", "complex128")]
    with pytest.raises(simulate.KernelsNotLoaded):
        simulate.run_serial(bell, x, z)
    assert len(asked) == 4


def _request(*pubs: tuple, options: Options | None = None) -> JobRequest:
    return JobRequest("job", "estimator", [EstimatorPub.coerce(pub) for pub in pubs], options or Options(), None)


def test_no_job_runs_inline_on_the_kernels_before_their_tier_is_loaded(nothing_loaded: set[tuple[str, str]]) -> None:
    """Before the small tier is loaded only jobs the numpy interpreter takes run inline (a Bell
    job does; one declaring 11 qubits does not, and goes to the worker); once it is loaded a Bell
    job runs inline on the kernels, and a SWAP job (the ops tier) goes to the worker, whose run
    of it loads that tier; then it runs inline."""
    backend = LocalService().backend()
    context = ExecutionContext({}, CancelFlag())
    bell = _request((_bell(), "ZZ"))
    swap = _request((_with_swap(), "ZZ"))
    declared_wide = _request((_bell(11), "Z" * 11))
    assert backend.run_inline(declared_wide, context) is NOT_INLINE
    assert float(backend.run_inline(bell, context)[0].data.evs) == pytest.approx(1.0)  # the numpy interpreter
    assert not nothing_loaded  # which loads nothing
    assert local_warmup.declared_tiers(bell, noisy=False) == ("small",)
    kernels.mark_loaded("small", "complex128")  # what the first job's warm-up leaves
    assert float(backend.run_inline(bell, context)[0].data.evs) == pytest.approx(1.0)
    assert backend.run_inline(swap, context) is NOT_INLINE
    assert not local_warmup.engine_is_warm("complex128", ("small", "ops"))
    backend.runner.run(swap, context)  # its run on the worker: the engine loads the ops tier it uses
    assert local_warmup.engine_is_warm("complex128", ("small", "ops"))
    assert float(backend.run_inline(swap, context)[0].data.evs) == pytest.approx(1.0)


def test_a_job_names_the_tiers_its_pubs_need() -> None:
    wide = QuantumCircuit(18)
    wide.h(range(18))
    on_a_device = _bell(127)  # a Bell circuit on two of a device's 127 qubits
    nine = QuantumCircuit(9)
    nine.h(range(9))
    thirteen = QuantumCircuit(13)
    thirteen.h(range(13))
    cases = [
        ((_bell(), "ZZ"), False, ("small",), ("small",)),
        ((_bell(), "ZZ", np.zeros((3, 0))), False, ("small", "sweep"), ("small", "sweep")),
        ((wide, "Z" * 18), False, ("small", "wide"), ("small", "wide")),
        ((thirteen, "Z" * 13), False, ("small", "wide"), ("small", "wide")),  # one binding: parallel
        ((thirteen, "Z" * 13, np.zeros((2, 0))), False, ("small", "sweep"), ("small", "sweep")),
        ((_bell(13), "Z" * 13), False, ("small", "wide"), ("small",)),  # two active qubits
        ((on_a_device, "Z" * 127), False, ("small", "wide"), ("small",)),
        ((nine, "Z" * 9), True, ("small", "wide", "noisy"), ("small", "wide", "noisy")),  # a density matrix
        ((_bell(), "ZZ"), True, ("small", "noisy"), ("small", "noisy")),
    ]
    for pub, noisy, declared, needed in cases:
        request = _request(pub)
        assert local_warmup.declared_tiers(request, noisy=noisy) == declared
        assert local_warmup.needed_tiers(request, noisy=noisy) == needed
    circuit = QuantumCircuit(2)
    circuit.rx(Parameter("a"), 0)
    swept = _request((circuit, "ZZ", np.linspace(0, 1, 5).reshape(5, 1)))
    assert local_warmup.needed_tiers(swept, noisy=False) == ("small", "sweep")
    measured = _bell()
    measured.measure_all()
    sampled = JobRequest("job", "sampler", [SamplerPub.coerce(measured, 100)], Options(), None)
    assert local_warmup.needed_tiers(sampled, noisy=False) == ("small", "sampling")


def test_tiers_bring_the_tiers_they_require(nothing_loaded: set[tuple[str, str]]) -> None:
    warmup("complex64", ["sweep"])  # a sweep runs run_program per binding: the ops tier too
    assert nothing_loaded == {("ops", "complex64"), ("sweep", "complex64")}
    assert is_warm("complex64", ["sweep"]) and is_warm(np.dtype(np.complex64).name, ["ops"])
    assert not is_warm("complex64") and not is_warm("complex128", ["ops"])
    with pytest.raises(ValueError, match="unknown kernel tier 'tiny'"):
        warmup("complex128", ["tiny"])
    with pytest.raises(ValueError, match="complex128 or complex64"):
        warmup("float64", ["small"])


# -- a fresh process on an empty cache ---------------------------------------------------------------

_FIRST_JOB = """
import asyncio, json, logging, sys
from numba.core.dispatcher import Dispatcher
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp
from aqrt import Estimator, LocalService, Session

notices = []
class Keep(logging.Handler):
    def emit(self, record):
        notices.append(record.getMessage())
logging.getLogger("aqrt.engine").addHandler(Keep(logging.INFO))
logging.getLogger("aqrt.engine").setLevel(logging.INFO)

async def main():
    # 11 declared qubits (9 idle): wider than the numpy interpreter takes before the kernels load
    circuit = QuantumCircuit(11)
    circuit.h(0)
    circuit.cx(0, 1)
    if sys.argv[1] == "bell+swap":
        circuit.swap(0, 1)
    async with Session(service=LocalService(), max_time=60):
        result = await Estimator().run([(circuit, SparsePauliOp("I" * 9 + "ZZ"))])
    return float(result[0].data.evs)

value = asyncio.run(main())
compiled = sorted(
    name
    for module in [m for n, m in list(sys.modules.items()) if n.startswith("aqrt.engine.kernels.")]
    for name, kernel in vars(module).items()
    if isinstance(kernel, Dispatcher) and kernel.signatures
)
print(json.dumps({"value": value, "compiled": compiled, "notices": notices}))
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_first_bell_job_compiles_the_small_tier_only(tmp_path: Path) -> None:
    """In a fresh process on an empty numba cache, a Bell Estimator job on a circuit declaring 11
    qubits (so not the numpy interpreter's: see tests/primitives/test_numpy_first_jobs.py for
    the 2-qubit one) compiles the small tier and says so once; the sweep, every-op, wide-state
    and trajectory kernels stay uncompiled. A second process loads the same kernels from the
    cache, silently; a third, whose circuit has a SWAP, compiles the every-op tier when its
    program needs it, and says so."""
    environment = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    runs = []
    for gates in ("bell", "bell", "bell+swap"):
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(_FIRST_JOB), gates],
            capture_output=True,
            text=True,
            timeout=540,
            env=environment,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        runs.append(json.loads(done.stdout.splitlines()[-1]))
    first, second, with_swap = runs
    assert first["value"] == pytest.approx(1.0) and second["value"] == pytest.approx(1.0)
    assert len(first["notices"]) == 1 and "small-state kernels for complex128" in first["notices"][0]
    assert second["notices"] == []
    # A SWAP needs run_program: its process loads the small tier silently and compiles, saying so, the ops tier.
    assert with_swap["value"] == pytest.approx(1.0)
    assert len(with_swap["notices"]) == 1 and "every-gate kernels for complex128" in with_swap["notices"][0]
    for name in ("run_program", "sweep_term_values", "sweep_probabilities", "apply_group_par", "pauli_values_par"):
        assert name not in first["compiled"], first["compiled"]
    assert not [name for name in first["compiled"] if name.endswith("_par") or "trajector" in name]
    assert {"run_basic_program", "pauli_values"} <= set(first["compiled"])
