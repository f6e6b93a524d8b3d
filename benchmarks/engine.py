"""Simulation speed of aqrt's numba statevector engine against Qiskit, Aer, PennyLane Lightning, qsim and qulacs.

Sections (all by default; ``--only`` picks some), every contender measured in the same run,
with fixed seeds, each warmed up first with a small run of the same kind:

- ``wide``      hardware-efficient ansatz (per layer: ry then rz on every qubit, then the cx
                ladder cx(0,1), cx(1,2), ...), 10 layers, n = 20, 22, 24 qubits, one binding
                (uniform angles, seed 1234), H = sum_i Z_i + sum_i Z_i Z_{i+1}. Seconds per job
                (best of 3; best of 2 at the largest n), the fastest peer / aqrt, aqrt's time per
                gate at the largest n and how many passes over the state it is worth, against a
                memory-bandwidth floor measured with ``np.copyto``.
- ``versus``    the ``wide`` workload, aqrt complex128, aqrt complex64 and qsim only, in 7
                interleaved rounds (each round runs each once), every run with the share of the
                machine other processes used; qsim / aqrt ratios from the best run whose share
                was at most 10% (on a shared machine the ``wide`` rows, timed back to back,
                can catch a burst of outside load that one contender gets and another does not).
- ``sweep``     the same ansatz with 4 layers, n = 8 and 12, 1000 bindings in one PUB (seed 7),
                a 20-term random Pauli observable (seed 11). Bindings per second; aqrt, Aer and
                the naive loop in 7 interleaved rounds (best of 7 each), Qiskit and Lightning
                after them (the speed of this machine drifts by up to ~1.5x between minutes).
- ``loop``      the sweep's circuits (n = 8, 12 and 16) and observable, one binding per job, 50
                jobs one after another (a variational loop: each job's parameters come from the last result);
                milliseconds per job, aqrt, Aer and Qiskit in 7 interleaved rounds (best each).
- ``sampling``  n = 20 GHZ, then one seeded layer of ry, rx on every qubit, measure_all,
                100 000 shots. Seconds per job; distributions are checked against the exact one.
- ``cold``      fresh processes: the first aqrt job (numba cache present), the kernel
                load/compile part alone (``aqrt.engine.warmup()``), and the same with an empty
                numba cache (full compile).
- ``memory``    peak RSS of a fresh process running the aqrt wide job at the largest n.

Contenders:

- ``aqrt``       ``async with Session(service=LocalService()) as s``: ``await Estimator(mode=s).run
                 ([pub])`` (``Sampler`` for sampling); a fresh session per timed run, the timed
                 span is submit -> result (session open/close outside it).
- ``Aer``        ``qiskit_aer.primitives.EstimatorV2`` / ``SamplerV2``, default options (exact
                 expectation values): ``.run([pub]).result()``.
- ``aqrt complex64``  the same with ``LocalService(dtype="complex64")`` (wide section): single
                 precision, compared with aqrt complex128 within 1e-4.
- ``qsim``       ``qsimcirq.QSimSimulator(QSimOptions(cpu_threads=os.cpu_count()))``
                 ``.simulate_expectation_values`` (wide section) on the same circuit converted gate
                 by gate to Cirq (qubit q -> ``LineQubit(q)``, Z_i on ``LineQubit(i)``, so bit order
                 cannot differ); qsim computes in single precision (float32), so its value is
                 compared with aqrt's within 1e-4. Conversion is outside the timed span.
- ``naive``      (sweep section) a plain ``numba.njit(parallel=True)`` loop over bindings: per
                 binding, the ansatz gate by gate on a fresh state, then the terms' values; the
                 issue's yardstick for "the sweep is at the compute bound". It runs (and is
                 timed) in a process of its own, since it would share aqrt's OpenMP runtime
                 (see ``naive_process``).
- ``Qiskit``     ``qiskit.primitives.StatevectorEstimator`` / ``StatevectorSampler``; skipped
                 where one run would take well over a minute (and said so).
- ``Lightning``  PennyLane ``lightning.qubit``: a QNode building the same circuit gate by gate
                 (gate on qubit q -> wire q, Z_i on wire i, so bit order cannot differ) returning
                 ``qml.expval`` of the same observable (``qml.sample()`` with shots for sampling);
                 the sweep passes all bindings at once (parameter broadcasting).
- ``qulacs``     (sampling section) ``qulacs.QuantumCircuit`` built gate by gate on a fresh
                 ``QuantumState``, then ``state.sampling(shots, seed)``.

Every row also reports the share of the machine's CPU time other processes used while it was
timed (from /proc/stat minus this process's own CPU time): on a shared 2-core machine that is
the main source of noise, and the multi-threaded contenders (aqrt's numba kernels, Aer and
Lightning all use OpenMP) slow down several-fold when another process holds a core.

Qiskit and Lightning rows whose first timed run takes over 10 s are timed once (their noise
is small next to such times, and it keeps the whole run under ~8 minutes); aqrt and Aer rows
always get every repetition. Expectation values must agree with aqrt's within 1e-8 (1e-4 for
the single-precision rows; else a ``DISAGREE:`` line and exit status 1); sampled marginals must
be within 5 standard errors of the exact ones.

Usage::

    python benchmarks/engine.py [--quick] [--only wide,sweep,sampling,cold,memory] [--json PATH]

``--quick`` is a smoke run (about a minute): smaller widths, 100 bindings, 20 000 shots at
n = 16, no cold compile. The script is standalone: it puts the repository root on
``sys.path`` so the working tree's ``aqrt`` is measured even when it is not installed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import functools
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np
import qiskit
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.quantum_info import SparsePauliOp, Statevector

import aqrt
from aqrt import Estimator, LocalService, Sampler, Session

# Peers are imported lazily (see _aer(), _pennylane()): the memory probe imports this module in
# a fresh process and must carry only what an aqrt user's process carries.

EV_TOLERANCE = 1e-8
SINGLE_EV_TOLERANCE = 1e-4  # single-precision rows (aqrt complex64, qsim float32) against aqrt complex128
AQRT_SINGLE = "aqrt Estimator complex64"
QSIM = "qsim (float32)"
NAIVE_SWEEP = "naive numba prange loop"
SINGLE_PRECISION = frozenset({AQRT_SINGLE, QSIM})
Z_LIMIT = 5.0  # sampled marginals: |empirical - exact| within this many standard errors
ONCE_OVER_S = 10.0  # Qiskit / Lightning rows: a first timed run over this is not repeated
QISKIT_LIMIT_S = 60.0  # Qiskit reference rows are skipped when predicted to take longer
QISKIT_WIDE_MAX_N = 22

WIDE_SEED = 1234
SWEEP_SEED = 7
SWEEP_OBSERVABLE_SEED = 11
SAMPLING_ROTATION_SEED = 99
SHOTS_SEED = 5

FULL = {
    "wide_n": [20, 22, 24],
    "wide_layers": 10,
    "wide_warmup_n": 10,
    "sweep_n": [8, 12],
    "sweep_layers": 4,
    "sweep_bindings": 1000,
    "sweep_terms": 20,
    "sweep_warmup_bindings": 10,
    "loop_n": [8, 12, 16],
    "loop_jobs": 50,
    "sampling_n": 20,
    "shots": 100_000,
    "sampling_warmup_n": 10,
    "qiskit_sampler_probe_n": 16,
    "cold_compile": True,
    "repeat": 3,
    "repeat_largest": 2,
    "versus_rounds": 7,
}
QUICK = {
    **FULL,
    "wide_n": [14, 16, 18],
    "sweep_bindings": 100,
    "loop_jobs": 10,
    "sampling_n": 16,
    "shots": 20_000,
    "qiskit_sampler_probe_n": 12,
    "cold_compile": False,
    "versus_rounds": 3,
}
SECTIONS = ("wide", "versus", "sweep", "loop", "sampling", "cold", "memory")

Result = tuple[float, Any]  # (seconds timed, value)


# -- workloads ------------------------------------------------------------------------------------


def hardware_efficient_ansatz(n: int, layers: int) -> QuantumCircuit:
    """Per layer: ry(t) then rz(t) on every qubit, then cx(0,1), cx(1,2), ..., cx(n-2,n-1)."""
    theta = ParameterVector("t", 2 * n * layers)
    circuit = QuantumCircuit(n, name=f"hea{n}x{layers}")
    k = 0
    for _ in range(layers):
        for q in range(n):
            circuit.ry(theta[k], q)
            circuit.rz(theta[k + 1], q)
            k += 2
        for q in range(n - 1):
            circuit.cx(q, q + 1)
    return circuit


def ising_observable(n: int) -> SparsePauliOp:
    """H = sum_i Z_i + sum_i Z_i Z_{i+1}."""
    terms = [("Z", [i], 1.0) for i in range(n)] + [("ZZ", [i, i + 1], 1.0) for i in range(n - 1)]
    return SparsePauliOp.from_sparse_list(terms, num_qubits=n)


def random_pauli_observable(n: int, terms: int, seed: int) -> SparsePauliOp:
    """``terms`` random Pauli strings (each qubit uniform over I, X, Y, Z), normal coefficients."""
    rng = np.random.default_rng(seed)
    labels = ["".join(rng.choice(list("IXYZ"), n)) for _ in range(terms)]
    return SparsePauliOp(labels, rng.normal(size=terms))


def wide_values(circuit: QuantumCircuit) -> np.ndarray:
    return np.random.default_rng(WIDE_SEED).uniform(0, 2 * np.pi, circuit.num_parameters)


def sweep_values(circuit: QuantumCircuit, bindings: int) -> np.ndarray:
    return np.random.default_rng(SWEEP_SEED).uniform(0, 2 * np.pi, (bindings, circuit.num_parameters))


def sampling_angles(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SAMPLING_ROTATION_SEED)
    return rng.uniform(0, np.pi, n), rng.uniform(0, np.pi, n)


def ghz_rotated(n: int, measure: bool = True) -> QuantumCircuit:
    """h(0), cx(0,1), ..., cx(n-2,n-1), then ry(a_q), rx(b_q) on every qubit (seeded)."""
    a, b = sampling_angles(n)
    circuit = QuantumCircuit(n, name=f"ghz{n}")
    circuit.h(0)
    for q in range(n - 1):
        circuit.cx(q, q + 1)
    for q in range(n):
        circuit.ry(a[q], q)
        circuit.rx(b[q], q)
    if measure:
        circuit.measure_all()
    return circuit


# -- peers, imported lazily ---------------------------------------------------------------------------


@functools.cache
def _aer() -> Any:
    try:
        from qiskit_aer import primitives
    except ImportError:
        return None
    return primitives


@functools.cache
def _pennylane() -> Any:
    try:
        import pennylane
    except ImportError:
        return None
    try:
        pennylane.device("lightning.qubit", wires=1)
    except Exception:  # pennylane without the lightning plugin
        return None
    return pennylane


@functools.cache
def _qulacs() -> Any:
    try:
        import qulacs
    except ImportError:
        return None
    return qulacs


@functools.cache
def _qsim() -> Any:
    try:
        import cirq
        import qsimcirq
    except ImportError:
        return None
    return cirq, qsimcirq


# -- contenders ---------------------------------------------------------------------------------------


async def _aqrt_job(program: str, pub: Any, shots: int | None, dtype: str = "complex128") -> Result:
    async with Session(service=LocalService(dtype=dtype)) as session:
        if program == "estimator":
            primitive: Any = Estimator(mode=session)
            start = time.perf_counter()
            result = await primitive.run([pub])
        else:
            primitive = Sampler(mode=session, options={"seed": SHOTS_SEED})
            start = time.perf_counter()
            result = await primitive.run([pub], shots=shots)
        elapsed = time.perf_counter() - start
    return elapsed, result


def aqrt_estimate(pub: tuple[Any, ...], dtype: str = "complex128") -> Result:
    elapsed, result = asyncio.run(_aqrt_job("estimator", pub, None, dtype))
    return elapsed, np.asarray(result[0].data.evs, dtype=float)


def aqrt_sample(circuit: QuantumCircuit, shots: int) -> Result:
    elapsed, result = asyncio.run(_aqrt_job("sampler", circuit, shots))
    return elapsed, bitarray_outcomes(result[0].data.meas)


def _blocking(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = call()
    return time.perf_counter() - start, value


def aer_estimate(pub: tuple[Any, ...]) -> Result:
    estimator = _aer().EstimatorV2()
    elapsed, result = _blocking(lambda: estimator.run([pub]).result())
    return elapsed, np.asarray(result[0].data.evs, dtype=float)


def qiskit_estimate(pub: tuple[Any, ...]) -> Result:
    from qiskit.primitives import StatevectorEstimator

    estimator = StatevectorEstimator()
    elapsed, result = _blocking(lambda: estimator.run([pub]).result())
    return elapsed, np.asarray(result[0].data.evs, dtype=float)


def aer_sample(circuit: QuantumCircuit, shots: int) -> Result:
    sampler = _aer().SamplerV2(seed=SHOTS_SEED)
    elapsed, result = _blocking(lambda: sampler.run([circuit], shots=shots).result())
    return elapsed, bitarray_outcomes(result[0].data.meas)


def qiskit_sample(circuit: QuantumCircuit, shots: int) -> Result:
    from qiskit.primitives import StatevectorSampler

    sampler = StatevectorSampler(seed=SHOTS_SEED)
    elapsed, result = _blocking(lambda: sampler.run([circuit], shots=shots).result())
    return elapsed, bitarray_outcomes(result[0].data.meas)


_CIRQ_GATES = {"ry": "ry", "rz": "rz", "rx": "rx"}


def cirq_circuit(circuit: QuantumCircuit, values: np.ndarray) -> tuple[Any, list[Any]]:
    """``circuit`` bound to ``values`` as a Cirq circuit, gate by gate (qubit q -> LineQubit(q)).

    Only the gates the benchmark's workloads use are converted (rx, ry, rz, h, cx); Cirq's
    ``rx/ry/rz(t)`` are exp(-i t P / 2), Qiskit's definitions, so no angle changes.
    """
    cirq, _ = _qsim()
    qubits = cirq.LineQubit.range(circuit.num_qubits)
    bound = circuit.assign_parameters(values) if circuit.num_parameters else circuit
    index = {bit: i for i, bit in enumerate(bound.qubits)}
    ops = []
    for instruction in bound.data:
        name = instruction.operation.name
        on = [qubits[index[q]] for q in instruction.qubits]
        if name in _CIRQ_GATES:
            ops.append(getattr(cirq, _CIRQ_GATES[name])(float(instruction.operation.params[0])).on(*on))
        elif name == "h":
            ops.append(cirq.H.on(*on))
        elif name == "cx":
            ops.append(cirq.CNOT.on(*on))
        else:
            raise ValueError(f"cirq_circuit: no conversion for {name!r}")
    return cirq.Circuit(ops), qubits


def cirq_observable(observable: SparsePauliOp, qubits: list[Any]) -> Any:
    """A Qiskit Pauli sum (little-endian labels: the last character is qubit 0) as a cirq.PauliSum."""
    cirq, _ = _qsim()
    paulis = {"X": cirq.X, "Y": cirq.Y, "Z": cirq.Z}
    total = cirq.PauliSum()
    n = observable.num_qubits
    for label, coeff in zip(observable.paulis.to_labels(), observable.coeffs, strict=True):
        word = cirq.PauliString({qubits[n - 1 - j]: paulis[c] for j, c in enumerate(label) if c != "I"})
        total += complex(coeff) * word
    return total


def qsim_estimate(circuit: Any, observable: Any) -> Result:
    """qsimcirq's expectation value (its float32 state) on every core: the timed span is the call."""
    _, qsimcirq = _qsim()
    simulator = qsimcirq.QSimSimulator(qsimcirq.QSimOptions(cpu_threads=os.cpu_count() or 1))
    elapsed, values = _blocking(lambda: simulator.simulate_expectation_values(circuit, observables=[observable]))
    return elapsed, float(np.real(values[0]))


@functools.cache
def _naive_sweep_kernel() -> Any:
    """A plain ``@njit(parallel=True)`` loop over bindings (the issue's "naive numba loop"): per
    binding, the ansatz gate by gate (ry, rz as 2x2 products, the cx ladder as swaps) on a fresh
    state, then every Pauli term's value; no fusion, no blocking, no batching."""
    import numba

    @numba.njit(cache=False, inline="always")
    def bin_parity(value: int) -> int:  # pragma: no cover - compiled
        count = 0
        while value:
            value &= value - 1
            count ^= 1
        return count

    @numba.njit(parallel=True, cache=False)
    def sweep(
        n: int, layers: int, values: np.ndarray, x_masks: np.ndarray, z_masks: np.ndarray, phases: np.ndarray
    ) -> np.ndarray:  # pragma: no cover - compiled
        bindings = values.shape[0]
        out = np.zeros(bindings)
        for b in numba.prange(bindings):
            state = np.zeros(1 << n, dtype=np.complex128)
            state[0] = 1.0
            k = 0
            for _ in range(layers):
                for q in range(n):
                    c, s = np.cos(values[b, k] / 2), np.sin(values[b, k] / 2)
                    e0, e1 = np.exp(-0.5j * values[b, k + 1]), np.exp(0.5j * values[b, k + 1])
                    k += 2
                    m00, m01, m10, m11 = e0 * c, -e0 * s, e1 * s, e1 * c  # rz(t1) ry(t0)
                    bit = 1 << q
                    for i0 in range(1 << n):
                        if i0 & bit == 0:
                            a0 = state[i0]
                            a1 = state[i0 | bit]
                            state[i0] = m00 * a0 + m01 * a1
                            state[i0 | bit] = m10 * a0 + m11 * a1
                for q in range(n - 1):
                    control, target = 1 << q, 1 << (q + 1)
                    for i0 in range(1 << n):
                        if i0 & control and not i0 & target:
                            a = state[i0]
                            state[i0] = state[i0 | target]
                            state[i0 | target] = a
            total = 0.0
            for t in range(x_masks.shape[0]):
                acc = 0.0j
                for i in range(1 << n):
                    j = i ^ x_masks[t]
                    sign = 1.0 - 2.0 * (bin_parity(j & z_masks[t]))
                    acc += np.conj(state[i]) * sign * state[j]
                total += (phases[t] * acc).real
            out[b] = total
        return out

    return sweep


def naive_terms(observable: SparsePauliOp) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x masks, z masks, coefficient * i**(number of Y)) of every term: P = i**ny X^x Z^z."""
    xs, zs, phases = [], [], []
    for label, coeff in zip(observable.paulis.to_labels(), observable.coeffs, strict=True):
        x = z = ny = 0
        for q, char in enumerate(reversed(label)):
            x |= (char in "XY") << q
            z |= (char in "ZY") << q
            ny += char == "Y"
        xs.append(x)
        zs.append(z)
        phases.append(complex(coeff) * 1j**ny)
    return np.array(xs, dtype=np.int64), np.array(zs, dtype=np.int64), np.array(phases, dtype=np.complex128)


def naive_sweep(n: int, layers: int, values: np.ndarray, terms: tuple[np.ndarray, ...]) -> Result:
    kernel = _naive_sweep_kernel()
    elapsed, evs = _blocking(lambda: kernel(n, layers, np.ascontiguousarray(values), *terms))
    return elapsed, evs


def _naive_sweep_after_gc(n: int, layers: int, values: np.ndarray, terms: tuple[np.ndarray, ...]) -> Result:
    gc.collect()  # as before every contender's run in this process
    return naive_sweep(n, layers, values, terms)


@contextlib.contextmanager
def naive_process() -> Iterator[Callable[[int, int, np.ndarray, tuple[np.ndarray, ...]], Result]]:
    """:func:`naive_sweep` in a process of its own (timed there): numba's OpenMP runtime counts
    the threads of every team in a process, and the naive kernel, run from this process's main
    thread, adds a team beside the engine worker's; with more threads than CPUs libgomp stops
    spinning at barriers, and aqrt's kernels (several parallel regions a job) pay a thread wake-up
    at each (measured: one-binding n = 16 jobs 2.7 -> 6.5 ms after one naive run). Aer, qsim and
    Lightning bring OpenMP runtimes of their own; the naive loop shares aqrt's, so it runs apart."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pid = pool.submit(os.getpid).result()
        CpuMeter.helper_pids.append(pid)  # its CPU time is this benchmark's, not other processes'
        try:
            yield lambda n, layers, values, terms: pool.submit(_naive_sweep_after_gc, n, layers, values, terms).result()
        finally:
            CpuMeter.helper_pids.remove(pid)


def _pennylane_word(qml: Any, label: str) -> Any:
    """A Qiskit Pauli label (little-endian: the last character is qubit 0) as a PennyLane op."""
    n = len(label)
    ops = [{"X": qml.X, "Y": qml.Y, "Z": qml.Z}[c](n - 1 - j) for j, c in enumerate(label) if c != "I"]
    if not ops:
        return qml.Identity(0)
    return ops[0] if len(ops) == 1 else qml.prod(*ops)


def pennylane_observable(qml: Any, observable: SparsePauliOp) -> Any:
    words = [_pennylane_word(qml, label) for label in observable.paulis.to_labels()]
    coeffs = [float(c.real) for c in observable.coeffs]
    if all(c == 1.0 for c in coeffs):
        return qml.sum(*words)
    return qml.dot(coeffs, words)


def lightning_ansatz_qnode(n: int, layers: int, observable: SparsePauliOp) -> Callable[[np.ndarray], Any]:
    """The hardware-efficient ansatz as a lightning.qubit QNode; values (P,) or (B, P) (broadcast)."""
    qml = _pennylane()
    hamiltonian = pennylane_observable(qml, observable)
    device = qml.device("lightning.qubit", wires=n)

    @qml.qnode(device, diff_method=None)
    def circuit(t: np.ndarray) -> Any:
        k = 0
        for _ in range(layers):
            for q in range(n):
                qml.RY(t[..., k], wires=q)
                qml.RZ(t[..., k + 1], wires=q)
                k += 2
            for q in range(n - 1):
                qml.CNOT(wires=[q, q + 1])
        return qml.expval(hamiltonian)

    return circuit


def lightning_estimate(qnode: Callable[[np.ndarray], Any], values: np.ndarray) -> Result:
    elapsed, value = _blocking(lambda: qnode(values))
    return elapsed, np.asarray(value, dtype=float)


def lightning_sampler_qnode(n: int, shots: int) -> Callable[[], Any]:
    qml = _pennylane()
    a, b = sampling_angles(n)
    device = qml.device("lightning.qubit", wires=n, seed=SHOTS_SEED)

    @qml.set_shots(shots)
    @qml.qnode(device, diff_method=None)
    def circuit() -> Any:
        qml.Hadamard(wires=0)
        for q in range(n - 1):
            qml.CNOT(wires=[q, q + 1])
        for q in range(n):
            qml.RY(a[q], wires=q)
            qml.RX(b[q], wires=q)
        return qml.sample()

    return circuit


def qulacs_sample(n: int, shots: int) -> Result:
    """qulacs: the sampling circuit built gate by gate (``add_RotY_gate``/``add_RotX_gate`` are
    Qiskit's ry/rx), run on a fresh ``QuantumState``, then ``state.sampling(shots, seed)``
    (outcomes as integers, bit q = qubit q); all inside the timed span, as for the others."""
    qulacs = _qulacs()
    a, b = sampling_angles(n)
    start = time.perf_counter()
    circuit = qulacs.QuantumCircuit(n)
    circuit.add_H_gate(0)
    for q in range(n - 1):
        circuit.add_CNOT_gate(q, q + 1)
    for q in range(n):
        circuit.add_RotY_gate(q, a[q])
        circuit.add_RotX_gate(q, b[q])
    state = qulacs.QuantumState(n)
    circuit.update_quantum_state(state)
    outcomes = np.asarray(state.sampling(shots, SHOTS_SEED), dtype=np.int64)
    return time.perf_counter() - start, outcomes


def lightning_sample(qnode: Callable[[], Any]) -> Result:
    elapsed, samples = _blocking(qnode)
    samples = np.asarray(samples, dtype=np.int64)  # (shots, n), column i = wire i = qubit i
    weights = np.int64(1) << np.arange(samples.shape[1], dtype=np.int64)
    return elapsed, samples @ weights


def bitarray_outcomes(bits: Any) -> np.ndarray:
    """A BitArray's shots as integers (bit q = qubit q)."""
    packed = np.asarray(bits.array, dtype=np.int64)  # (shots, bytes), big-endian bytes
    nbytes = packed.shape[-1]
    shifts = 8 * np.arange(nbytes - 1, -1, -1, dtype=np.int64)
    return (packed << shifts).sum(axis=-1).reshape(-1)


# -- measurement ----------------------------------------------------------------------------------


def time_runs(call: Callable[[], Result], repeat: int, once_over: float | None = None) -> tuple[list[float], Any]:
    """``repeat`` timed runs (fewer if the first exceeds ``once_over`` seconds).

    Also records, for :func:`row`, how much of the machine other processes used meanwhile.
    """
    global _last_others_share
    meter = CpuMeter()
    times: list[float] = []
    value = None
    for _ in range(repeat):
        gc.collect()
        elapsed, value = call()
        times.append(elapsed)
        if once_over is not None and elapsed > once_over:
            break
    _last_others_share = meter.stop()["others_share"]
    return times, value


# Share of the machine's CPU time used by other processes during the last time_runs() (read by row()).
_last_others_share: float | None = None


def row(label: str, times: list[float], **extra: Any) -> dict[str, Any]:
    return {
        "contender": label,
        "runs": len(times),
        "times_s": times,
        "best_s": min(times),
        "median_s": statistics.median(times),
        "others_share": _last_others_share,
        **extra,
    }


def skipped(label: str, why: str, **extra: Any) -> dict[str, Any]:
    return {"contender": label, "skipped": why, **extra}


def _failed(label: str, exc: BaseException, **extra: Any) -> dict[str, Any]:
    return skipped(label, f"failed: {type(exc).__name__}: {exc}", **extra)


class CpuMeter:
    """CPU time used by other processes on this machine while a section ran (contention)."""

    helper_pids: ClassVar[list[int]] = []  # this benchmark's own processes (a contender run apart)

    def __init__(self) -> None:
        self._start = self._read()

    @staticmethod
    def _read() -> tuple[float, float, float]:
        busy = 0.0
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
            ticks = [int(x) for x in fields]
            busy = (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait
        except (OSError, ValueError, IndexError):
            pass
        own = 0.0
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
            usage = resource.getrusage(who)
            own += usage.ru_utime + usage.ru_stime
        for pid in CpuMeter.helper_pids:  # alive, so not in RUSAGE_CHILDREN yet
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                own += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
            except (OSError, ValueError, IndexError):
                pass
        return time.perf_counter(), busy, own

    def stop(self) -> dict[str, float]:
        wall0, busy0, own0 = self._start
        wall1, busy1, own1 = self._read()
        wall = wall1 - wall0
        others = max(0.0, (busy1 - busy0) - (own1 - own0))
        cpus = os.cpu_count() or 1
        return {
            "wall_s": round(wall, 1),
            "others_cpu_s": round(others, 1),
            "others_share": round(others / (wall * cpus), 3) if wall > 0 else 0.0,
        }


# -- wide -----------------------------------------------------------------------------------------


def copy_bandwidth(mib: int = 256, repeat: int = 5) -> dict[str, Any]:
    """np.copyto of a ``mib`` MiB complex128 array, best of ``repeat``: bytes moved = read + write.

    np.copyto runs on one thread; the engine's wide kernels run on every core, so the same copy
    is also timed as a numba ``prange`` loop on all numba threads (numba is aqrt's own dependency),
    on aqrt's engine worker thread, where aqrt's kernels run. Run from this thread it would start
    a second OpenMP team in this process: with more OpenMP threads than CPUs, libgomp stops
    spinning at barriers, and every later aqrt kernel pays a thread wake-up at each of its
    parallel regions (one-binding n = 16 loop jobs: 2.7 -> 6.6 ms a job after one such copy).
    """
    import numba

    from aqrt._concurrency import engine_executor

    @numba.njit(parallel=True, cache=False)
    def parallel_copy(dst: np.ndarray, src: np.ndarray) -> None:  # pragma: no cover - compiled
        for i in numba.prange(src.size):
            dst[i] = src[i]

    n = (mib << 20) // 16
    src = np.full(n, 1 + 1j, dtype=np.complex128)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    one = []
    for _ in range(repeat):
        start = time.perf_counter()
        np.copyto(dst, src)
        one.append(time.perf_counter() - start)

    def time_parallel_copies() -> list[float]:
        parallel_copy(dst, src)  # compile
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            parallel_copy(dst, src)
            times.append(time.perf_counter() - start)
        return times

    par = engine_executor().submit(time_parallel_copies).result()
    moved = 2 * src.nbytes
    return {
        "array_mib": mib,
        "bytes_moved": moved,
        "best_s_numpy": min(one),
        "gb_per_s_numpy": moved / min(one) / 1e9,
        "numba_threads": numba.get_num_threads(),
        "best_s_parallel": min(par),
        "gb_per_s_parallel": moved / min(par) / 1e9,
    }


def _qsim_wide_pub(pub: tuple[Any, ...]) -> tuple[Any, Any]:
    circuit, observable, values = pub
    cirq_version, qubits = cirq_circuit(circuit, values)
    return cirq_version, cirq_observable(observable, qubits)


def run_wide(cfg: dict[str, Any]) -> dict[str, Any]:
    layers = cfg["wide_layers"]
    widths = cfg["wide_n"]
    largest = max(widths)
    aer = _aer()
    qml = _pennylane()

    # warm-up: every contender once on a small circuit of the same kind
    wn = cfg["wide_warmup_n"]
    warm_circuit = hardware_efficient_ansatz(wn, layers)
    warm_pub = (warm_circuit, ising_observable(wn), wide_values(warm_circuit))
    print(f"  wide: warm-up at n={wn}", file=sys.stderr, flush=True)
    aqrt_estimate(warm_pub)
    aqrt_estimate(warm_pub, "complex64")
    qiskit_estimate(warm_pub)
    qsim = _qsim()
    if qsim is not None:
        qsim_estimate(*_qsim_wide_pub(warm_pub))
    if aer is not None:
        aer_estimate(warm_pub)
    if qml is not None:
        lightning_estimate(lightning_ansatz_qnode(wn, layers, warm_pub[1]), warm_pub[2])

    rows: list[dict[str, Any]] = []
    disagreements: list[str] = []
    qiskit_last: tuple[int, float] | None = None
    for n in widths:
        circuit = hardware_efficient_ansatz(n, layers)
        observable = ising_observable(n)
        values = wide_values(circuit)
        pub = (circuit, observable, values)
        repeat = cfg["repeat_largest"] if n == largest else cfg["repeat"]
        common = {"n": n, "gates": circuit.size(), "terms": len(observable)}
        here: list[dict[str, Any]] = []

        print(f"  wide n={n}: aqrt", file=sys.stderr, flush=True)
        times, ev = time_runs(lambda: aqrt_estimate(pub), repeat)
        here.append(row("aqrt Estimator", times, ev=float(ev), **common))
        print(f"  wide n={n}: aqrt complex64", file=sys.stderr, flush=True)
        times, ev = time_runs(lambda: aqrt_estimate(pub, "complex64"), repeat)
        here.append(row(AQRT_SINGLE, times, ev=float(ev), **common))

        if qsim is not None:
            print(f"  wide n={n}: qsim", file=sys.stderr, flush=True)
            qsim_pub = _qsim_wide_pub(pub)
            times, ev = time_runs(lambda: qsim_estimate(*qsim_pub), repeat)
            here.append(row(QSIM, times, ev=float(ev), **common))
        else:
            here.append(skipped(QSIM, "qsimcirq is not installed", **common))

        if aer is not None:
            print(f"  wide n={n}: Aer", file=sys.stderr, flush=True)
            times, ev = time_runs(lambda: aer_estimate(pub), repeat)
            here.append(row("Aer EstimatorV2", times, ev=float(ev), **common))
        else:
            here.append(skipped("Aer EstimatorV2", "qiskit-aer is not installed", **common))

        if qml is not None:
            print(f"  wide n={n}: Lightning", file=sys.stderr, flush=True)
            try:
                qnode = lightning_ansatz_qnode(n, layers, observable)
                times, ev = time_runs(lambda: lightning_estimate(qnode, values), repeat, ONCE_OVER_S)
                here.append(row("Lightning lightning.qubit", times, ev=float(ev), **common))
            except Exception as exc:
                here.append(_failed("Lightning lightning.qubit", exc, **common))
        else:
            here.append(skipped("Lightning lightning.qubit", "pennylane-lightning is not installed", **common))

        label = "Qiskit StatevectorEstimator"
        if n > QISKIT_WIDE_MAX_N:
            here.append(skipped(label, f"n > {QISKIT_WIDE_MAX_N}: far over {QISKIT_LIMIT_S:.0f} s per run", **common))
        else:
            predicted = None if qiskit_last is None else qiskit_last[1] * 2 ** (n - qiskit_last[0]) * 1.1
            if predicted is not None and predicted > QISKIT_LIMIT_S:
                here.append(skipped(label, f"predicted {predicted:.0f} s per run (> {QISKIT_LIMIT_S:.0f} s)", **common))
            else:
                print(f"  wide n={n}: Qiskit", file=sys.stderr, flush=True)
                times, ev = time_runs(lambda: qiskit_estimate(pub), repeat, ONCE_OVER_S)
                here.append(row(label, times, ev=float(ev), **common))
                qiskit_last = (n, min(times))

        base = here[0]
        for entry in here:
            if "best_s" in entry:
                entry["x_aqrt"] = entry["best_s"] / base["best_s"]
                deviation = abs(entry["ev"] - base["ev"])
                entry["deviation_vs_aqrt"] = deviation
                tolerance = SINGLE_EV_TOLERANCE if entry["contender"] in SINGLE_PRECISION else EV_TOLERANCE
                if deviation > tolerance:
                    disagreements.append(
                        f"DISAGREE: wide n={n} {entry['contender']}: ev {entry['ev']!r} vs aqrt {base['ev']!r} "
                        f"(|diff| = {deviation:.2e} > {tolerance:g})"
                    )
        rows += here

    print("  wide: copy bandwidth", file=sys.stderr, flush=True)
    bandwidth = copy_bandwidth()
    summary: dict[str, Any] = {"bandwidth": bandwidth, "fastest_peer": {}, "qsim": {}}
    for n in widths:
        by_name = {r["contender"]: r for r in rows if r["n"] == n and "best_s" in r}
        if QSIM in by_name:
            summary["qsim"][str(n)] = {
                "qsim_best_s": by_name[QSIM]["best_s"],
                "qsim_over_aqrt": by_name[QSIM]["best_s"] / by_name["aqrt Estimator"]["best_s"],
                "qsim_over_aqrt_complex64": by_name[QSIM]["best_s"] / by_name[AQRT_SINGLE]["best_s"]
                if AQRT_SINGLE in by_name
                else None,
            }
        aqrt_row = next(r for r in rows if r["n"] == n and r["contender"].startswith("aqrt"))
        peers = [r for r in rows if r["n"] == n and "best_s" in r and not r["contender"].startswith("aqrt")]
        if peers:
            fastest = min(peers, key=lambda r: r["best_s"])
            summary["fastest_peer"][str(n)] = {
                "contender": fastest["contender"],
                "best_s": fastest["best_s"],
                "peer_over_aqrt": fastest["best_s"] / aqrt_row["best_s"],
            }
    aqrt_largest = next(r for r in rows if r["n"] == largest and r["contender"].startswith("aqrt"))
    state_bytes = (1 << largest) * 16
    floor_1 = 2 * state_bytes / (bandwidth["gb_per_s_numpy"] * 1e9)
    floor_2 = 2 * state_bytes / (bandwidth["gb_per_s_parallel"] * 1e9)
    summary["largest"] = {
        "n": largest,
        "gates": aqrt_largest["gates"],
        "aqrt_best_s": aqrt_largest["best_s"],
        "aqrt_s_per_gate": aqrt_largest["best_s"] / aqrt_largest["gates"],
        "state_bytes": state_bytes,
        "floor_per_pass_s": floor_1,
        "passes": aqrt_largest["best_s"] / floor_1,
        "passes_per_gate": aqrt_largest["best_s"] / floor_1 / aqrt_largest["gates"],
        "floor_per_pass_s_parallel": floor_2,
        "passes_parallel": aqrt_largest["best_s"] / floor_2,
    }
    return {"layers": layers, "rows": rows, "summary": summary, "disagreements": disagreements}


# -- versus: aqrt (both precisions) and qsim in interleaved rounds ---------------------------------

CLEAN_SHARE = 0.10  # a timed run during which other processes used more of the machine is not clean


def run_versus(cfg: dict[str, Any]) -> dict[str, Any]:
    """The wide workload, aqrt complex128, aqrt complex64 and qsim in rounds (each round runs each
    once, in that order), so a burst of outside load hits all three alike; every run records the
    share of the machine other processes used meanwhile, and ratios use the best *clean* run."""
    if _qsim() is None:
        return {"rows": [], "skipped": "qsimcirq is not installed"}
    layers = cfg["wide_layers"]
    rows: list[dict[str, Any]] = []
    warm_circuit = hardware_efficient_ansatz(cfg["wide_warmup_n"], layers)
    warm_pub = (warm_circuit, ising_observable(cfg["wide_warmup_n"]), wide_values(warm_circuit))
    aqrt_estimate(warm_pub)
    aqrt_estimate(warm_pub, "complex64")
    qsim_estimate(*_qsim_wide_pub(warm_pub))
    for n in cfg["wide_n"]:
        circuit = hardware_efficient_ansatz(n, layers)
        pub = (circuit, ising_observable(n), wide_values(circuit))
        qsim_pub = _qsim_wide_pub(pub)
        calls: dict[str, Callable[[], Result]] = {
            "aqrt Estimator": lambda: aqrt_estimate(pub),
            AQRT_SINGLE: lambda: aqrt_estimate(pub, "complex64"),
            QSIM: lambda: qsim_estimate(*qsim_pub),
        }
        runs: dict[str, list[tuple[float, float]]] = {label: [] for label in calls}
        print(f"  versus n={n}: {cfg['versus_rounds']} rounds", file=sys.stderr, flush=True)
        for _ in range(cfg["versus_rounds"]):
            for label, call in calls.items():
                gc.collect()
                meter = CpuMeter()
                elapsed, _ = call()
                runs[label].append((elapsed, meter.stop()["others_share"]))
        for label, timed in runs.items():
            clean = [t for t, share in timed if share <= CLEAN_SHARE]
            rows.append(
                {
                    "n": n,
                    "contender": label,
                    "times_s": [t for t, _ in timed],
                    "others_shares": [share for _, share in timed],
                    "best_s": min(t for t, _ in timed),
                    "clean_runs": len(clean),
                    "best_clean_s": min(clean) if clean else None,
                }
            )
    return {"rows": rows, "rounds": cfg["versus_rounds"], "clean_share": CLEAN_SHARE}


def versus_ratios(section: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Per n: qsim's best clean time / aqrt's (each precision); None without clean runs of both."""
    out: dict[str, dict[str, float | None]] = {}
    for n in sorted({r["n"] for r in section["rows"]}):
        by_name = {r["contender"]: r for r in section["rows"] if r["n"] == n}
        qsim = by_name[QSIM]["best_clean_s"]
        out[str(n)] = {
            label: None
            if qsim is None or by_name[label]["best_clean_s"] is None
            else qsim / by_name[label]["best_clean_s"]
            for label in ("aqrt Estimator", AQRT_SINGLE)
        }
    return out


def format_versus(section: dict[str, Any]) -> list[str]:
    if "skipped" in section:
        return [f"versus: skipped: {section['skipped']}"]
    lines = [
        f"versus: the wide workload, aqrt (both precisions) and qsim in {section['rounds']} interleaved rounds; "
        f"'clean' runs are those during which other processes used <= {100 * section['clean_share']:.0f}% "
        "of the machine" + _contention(section)
    ]
    header = f"{'n':>3}  {'contender':<28}{'best s':>9}{'clean runs':>12}{'best clean s':>14}   others per run"
    lines += [header, "-" * len(header)]
    for entry in section["rows"]:
        clean = "-" if entry["best_clean_s"] is None else f"{entry['best_clean_s']:.3f}"
        shares = " ".join(f"{100 * share:.0f}%" for share in entry["others_shares"])
        lines.append(
            f"{entry['n']:>3}  {entry['contender']:<28}{entry['best_s']:>9.3f}{entry['clean_runs']:>12}{clean:>14}   "
            + shares
        )
    for n, ratios in versus_ratios(section).items():
        text = "; ".join(
            f"qsim / {label} = " + ("-" if value is None else f"{value:.2f}x") for label, value in ratios.items()
        )
        lines.append(f"n={n} (best clean runs): {text}")
    return lines


# -- sweep ----------------------------------------------------------------------------------------


def run_sweep(cfg: dict[str, Any]) -> dict[str, Any]:
    with naive_process() as naive:
        return _run_sweep(cfg, naive)


def _run_sweep(cfg: dict[str, Any], naive: Callable[..., Result]) -> dict[str, Any]:
    global _last_others_share
    layers = cfg["sweep_layers"]
    bindings = cfg["sweep_bindings"]
    aer = _aer()
    qml = _pennylane()
    rows: list[dict[str, Any]] = []
    disagreements: list[str] = []
    for n in cfg["sweep_n"]:
        circuit = hardware_efficient_ansatz(n, layers)
        observable = random_pauli_observable(n, cfg["sweep_terms"], SWEEP_OBSERVABLE_SEED)
        values = sweep_values(circuit, bindings)
        pub = (circuit, observable, values)
        warm_pub = (circuit, observable, values[: cfg["sweep_warmup_bindings"]])
        qnode = lightning_ansatz_qnode(n, layers, observable) if qml is not None else None
        common = {
            "n": n,
            "gates": circuit.size(),
            "parameters": circuit.num_parameters,
            "bindings": bindings,
            "terms": len(observable),
        }
        here: list[dict[str, Any]] = []
        # aqrt, Aer and the naive loop in interleaved rounds (each round runs each once), so that a
        # slow spell of the machine hits all three alike; Qiskit and Lightning (seconds) after them
        terms = naive_terms(observable)
        rounds: dict[str, Callable[[], Result]] = {"aqrt Estimator": lambda: aqrt_estimate(pub)}
        if aer is not None:
            rounds["Aer EstimatorV2"] = lambda: aer_estimate(pub)
        rounds[NAIVE_SWEEP] = lambda: naive(n, layers, values, terms)  # in its own process
        aqrt_estimate(warm_pub)
        if aer is not None:
            aer_estimate(warm_pub)
        naive(n, layers, warm_pub[2], terms)  # compiles
        print(f"  sweep n={n}: {', '.join(rounds)} in {cfg['versus_rounds']} rounds", file=sys.stderr, flush=True)
        meter = CpuMeter()
        timed: dict[str, list[float]] = {label: [] for label in rounds}
        values_of: dict[str, Any] = {}
        for _ in range(cfg["versus_rounds"]):
            for label, call in rounds.items():
                gc.collect()
                elapsed, values_of[label] = call()
                timed[label].append(elapsed)
        _last_others_share = meter.stop()["others_share"]
        for label in rounds:
            here.append(row(label, timed[label], evs=values_of[label], **common))
        if aer is None:
            here.insert(1, skipped("Aer EstimatorV2", "qiskit-aer is not installed", **common))
        label = "Qiskit StatevectorEstimator"
        print(f"  sweep n={n}: {label}", file=sys.stderr, flush=True)
        qiskit_estimate(warm_pub)
        times, evs = time_runs(lambda: qiskit_estimate(pub), cfg["repeat"], ONCE_OVER_S)
        here.append(row(label, times, evs=evs, **common))
        label = "Lightning (broadcast)"
        if qnode is None:
            here.append(skipped(label, "pennylane-lightning is not installed", **common))
        else:
            print(f"  sweep n={n}: {label}", file=sys.stderr, flush=True)
            try:
                lightning_estimate(qnode, warm_pub[2])
                times, evs = time_runs(lambda: lightning_estimate(qnode, values), cfg["repeat"], ONCE_OVER_S)
                here.append(row(label, times, evs=evs, **common))
            except Exception as exc:
                here.append(_failed(label, exc, **common))
        base = here[0]
        for entry in here:
            if "best_s" not in entry:
                continue
            entry["bindings_per_s"] = bindings / entry["best_s"]
            entry["aqrt_speedup"] = entry["best_s"] / base["best_s"]
            deviation = float(
                np.max(np.abs(np.asarray(entry["evs"]).reshape(-1) - np.asarray(base["evs"]).reshape(-1)))
            )
            entry["max_deviation_vs_aqrt"] = deviation
            if deviation > EV_TOLERANCE:
                disagreements.append(
                    f"DISAGREE: sweep n={n} {entry['contender']}: "
                    f"max |ev - aqrt ev| = {deviation:.2e} > {EV_TOLERANCE:g}"
                )
        for entry in here:
            entry.pop("evs", None)
        rows += here
    return {"layers": layers, "rows": rows, "disagreements": disagreements}


# -- loop: one binding per job, jobs one after another ------------------------------------------


async def _aqrt_loop(circuit: QuantumCircuit, observable: SparsePauliOp, values: np.ndarray) -> Result:
    async with Session(service=LocalService()) as session:
        estimator = Estimator(mode=session)
        evs = []
        start = time.perf_counter()
        for row_values in values:
            result = await estimator.run([(circuit, observable, row_values)])
            evs.append(float(result[0].data.evs))
        elapsed = time.perf_counter() - start
    return elapsed, np.array(evs)


def aqrt_loop(circuit: QuantumCircuit, observable: SparsePauliOp, values: np.ndarray) -> Result:
    return asyncio.run(_aqrt_loop(circuit, observable, values))


def blocking_loop(estimator: Any, circuit: QuantumCircuit, observable: SparsePauliOp, values: np.ndarray) -> Result:
    """``estimator.run([(circuit, observable, row)]).result()`` for each row in turn."""
    evs = []
    start = time.perf_counter()
    for row_values in values:
        evs.append(float(estimator.run([(circuit, observable, row_values)]).result()[0].data.evs))
    return time.perf_counter() - start, np.array(evs)


def run_loop(cfg: dict[str, Any]) -> dict[str, Any]:
    """The sweep's circuits, one binding per job, the jobs one after another (each awaited before
    the next is submitted, as a variational loop runs): time per job. aqrt, Aer and Qiskit in
    interleaved rounds, best round each."""
    global _last_others_share
    from qiskit.primitives import StatevectorEstimator

    from aqrt.engine import warmup

    layers = cfg["sweep_layers"]
    jobs = cfg["loop_jobs"]
    aer = _aer()
    rows: list[dict[str, Any]] = []
    disagreements: list[str] = []
    # The serial kernels loaded, as in a process that has run jobs for a while: a process's
    # first two seconds of small jobs run on the numpy interpreter, which this section alone
    # (--only loop) would otherwise time at n = 8.
    warmup("complex128", ("small",))
    for n in cfg["loop_n"]:
        circuit = hardware_efficient_ansatz(n, layers)
        observable = random_pauli_observable(n, cfg["sweep_terms"], SWEEP_OBSERVABLE_SEED)
        values = sweep_values(circuit, jobs)
        common = {"n": n, "gates": circuit.size(), "jobs": jobs, "terms": len(observable)}
        rounds: dict[str, Callable[[], Result]] = {"aqrt Estimator": lambda: aqrt_loop(circuit, observable, values)}
        if aer is not None:
            aer_estimator = aer.EstimatorV2()
            rounds["Aer EstimatorV2"] = lambda: blocking_loop(aer_estimator, circuit, observable, values)
        qiskit_estimator = StatevectorEstimator()
        rounds["Qiskit StatevectorEstimator"] = lambda: blocking_loop(qiskit_estimator, circuit, observable, values)
        aqrt_loop(circuit, observable, values[:3])  # warm-up: a few jobs of each
        if aer is not None:
            blocking_loop(aer_estimator, circuit, observable, values[:3])
        blocking_loop(qiskit_estimator, circuit, observable, values[:3])
        print(f"  loop n={n}: {', '.join(rounds)} in {cfg['versus_rounds']} rounds", file=sys.stderr, flush=True)
        meter = CpuMeter()
        timed: dict[str, list[float]] = {label: [] for label in rounds}
        evs_of: dict[str, np.ndarray] = {}
        for _ in range(cfg["versus_rounds"]):
            for label, call in rounds.items():
                gc.collect()
                elapsed, evs_of[label] = call()
                timed[label].append(elapsed)
        _last_others_share = meter.stop()["others_share"]
        here = [row(label, timed[label], **common) for label in rounds]
        if aer is None:
            here.insert(1, skipped("Aer EstimatorV2", "qiskit-aer is not installed", **common))
        base = here[0]
        for entry in here:
            if "best_s" not in entry:
                continue
            label = entry["contender"]
            entry["ms_per_job"] = 1e3 * entry["best_s"] / jobs
            entry["aqrt_speedup"] = entry["best_s"] / base["best_s"]
            deviation = float(np.max(np.abs(evs_of[label] - evs_of["aqrt Estimator"])))
            entry["max_deviation_vs_aqrt"] = deviation
            if deviation > EV_TOLERANCE:
                disagreements.append(
                    f"DISAGREE: loop n={n} {label}: max |ev - aqrt ev| = {deviation:.2e} > {EV_TOLERANCE:g}"
                )
        rows += here
    return {"layers": layers, "rows": rows, "disagreements": disagreements}


# -- sampling -------------------------------------------------------------------------------------


def exact_distribution(n: int) -> np.ndarray:
    return Statevector(ghz_rotated(n, measure=False)).probabilities()


def distribution_checks(outcomes: np.ndarray, probs: np.ndarray, n: int, top: np.ndarray) -> dict[str, Any]:
    shots = outcomes.size
    idx = np.arange(probs.size, dtype=np.int64)
    z_marginal = []
    for q in range(n):
        p = float(probs[((idx >> q) & 1) == 1].sum())
        emp = float(np.mean((outcomes >> q) & 1))
        z_marginal.append((emp - p) / max(np.sqrt(p * (1 - p) / shots), 1e-300))
    counts = np.bincount(outcomes, minlength=probs.size)
    emp_top = counts[top] / shots
    z_top = (emp_top - probs[top]) / np.sqrt(probs[top] * (1 - probs[top]) / shots)
    return {
        "shots": int(shots),
        "max_abs_z_marginal": float(np.max(np.abs(z_marginal))),
        "max_abs_z_top10": float(np.max(np.abs(z_top))),
        "tvd_vs_exact": float(0.5 * np.abs(counts / shots - probs).sum()),
        "distinct_outcomes": int(np.count_nonzero(counts)),
    }


def expected_tvd(probs: np.ndarray, shots: int, seed: int = 0) -> float:
    """TVD to the exact distribution of an ideal sampler at this shot count (one seeded draw)."""
    counts = np.random.default_rng(seed).multinomial(shots, probs / probs.sum())
    return float(0.5 * np.abs(counts / shots - probs).sum())


def run_sampling(cfg: dict[str, Any]) -> dict[str, Any]:
    n = cfg["sampling_n"]
    shots = cfg["shots"]
    aer = _aer()
    qml = _pennylane()
    circuit = ghz_rotated(n)
    warm = ghz_rotated(cfg["sampling_warmup_n"])
    common = {"n": n, "shots": shots}
    rows: list[dict[str, Any]] = []
    outcomes: dict[str, np.ndarray] = {}

    def measure(
        label: str, call: Callable[[], Result], warm_call: Callable[[], Result], once_over: float | None
    ) -> None:
        print(f"  sampling n={n}: {label}", file=sys.stderr, flush=True)
        try:
            warm_call()
            times, value = time_runs(call, cfg["repeat"], once_over)
        except Exception as exc:
            rows.append(_failed(label, exc, **common))
            return
        rows.append(row(label, times, **common))
        outcomes[label] = value

    measure("aqrt Sampler", lambda: aqrt_sample(circuit, shots), lambda: aqrt_sample(warm, shots), None)
    if aer is not None:
        measure("Aer SamplerV2", lambda: aer_sample(circuit, shots), lambda: aer_sample(warm, shots), None)
    else:
        rows.append(skipped("Aer SamplerV2", "qiskit-aer is not installed", **common))
    if qml is not None:
        try:
            qnode, warm_qnode = (
                lightning_sampler_qnode(n, shots),
                lightning_sampler_qnode(cfg["sampling_warmup_n"], shots),
            )
            measure(
                "Lightning qml.sample",
                lambda: lightning_sample(qnode),
                lambda: lightning_sample(warm_qnode),
                ONCE_OVER_S,
            )
        except Exception as exc:
            rows.append(_failed("Lightning qml.sample", exc, **common))
    else:
        rows.append(skipped("Lightning qml.sample", "pennylane-lightning is not installed", **common))

    if _qulacs() is not None:
        measure(
            "qulacs sampling",
            lambda: qulacs_sample(n, shots),
            lambda: qulacs_sample(cfg["sampling_warmup_n"], shots),
            None,
        )
    else:
        rows.append(skipped("qulacs sampling", "qulacs is not installed", **common))

    # StatevectorSampler's cost grows with 2**n; predict from a smaller width before committing.
    label = "Qiskit StatevectorSampler"
    probe_n = cfg["qiskit_sampler_probe_n"]
    print(f"  sampling: Qiskit probe at n={probe_n}", file=sys.stderr, flush=True)
    qiskit_sample(warm, shots)
    probe_s, _ = qiskit_sample(ghz_rotated(probe_n), shots)
    predicted = probe_s * 2 ** (n - probe_n)
    if predicted > 1.5 * QISKIT_LIMIT_S:
        rows.append(skipped(label, f"predicted {predicted:.0f} s from {probe_s:.2f} s at n={probe_n}", **common))
    else:
        print(f"  sampling n={n}: {label} (predicted {predicted:.0f} s)", file=sys.stderr, flush=True)
        times, value = time_runs(lambda: qiskit_sample(circuit, shots), cfg["repeat"], ONCE_OVER_S)
        rows.append(row(label, times, predicted_s=predicted, **common))
        outcomes[label] = value

    probs = exact_distribution(n)
    top = np.argsort(probs)[::-1][:10]
    base = rows[0]
    disagreements: list[str] = []
    for entry in rows:
        if "best_s" not in entry:
            continue
        entry["aqrt_speedup"] = entry["best_s"] / base["best_s"]
        check = distribution_checks(outcomes[entry["contender"]], probs, n, top)
        entry.update(check)
        if check["max_abs_z_marginal"] > Z_LIMIT or check["max_abs_z_top10"] > Z_LIMIT:
            disagreements.append(
                f"DISAGREE: sampling {entry['contender']}: |z| marginal {check['max_abs_z_marginal']:.1f}, "
                f"top-10 outcomes {check['max_abs_z_top10']:.1f} (limit {Z_LIMIT:g})"
            )
    pair: dict[str, Any] = {}
    if "aqrt Sampler" in outcomes and "Aer SamplerV2" in outcomes:
        a, b = outcomes["aqrt Sampler"], outcomes["Aer SamplerV2"]
        z = []
        for q in range(n):
            pa, pb = float(np.mean((a >> q) & 1)), float(np.mean((b >> q) & 1))
            pooled = (pa + pb) / 2
            se = np.sqrt(max(pooled * (1 - pooled), 1e-300) * (1 / a.size + 1 / b.size))
            z.append((pa - pb) / se)
        pair = {"max_abs_z_marginal_aqrt_vs_aer": float(np.max(np.abs(z)))}
        if pair["max_abs_z_marginal_aqrt_vs_aer"] > Z_LIMIT:
            disagreements.append(
                f"DISAGREE: sampling aqrt vs Aer marginals: max |z| = {pair['max_abs_z_marginal_aqrt_vs_aer']:.1f}"
            )
    return {
        "rows": rows,
        "ideal_tvd_at_these_shots": expected_tvd(probs, shots),
        **pair,
        "disagreements": disagreements,
    }


# -- cold start and memory (fresh processes) --------------------------------------------------------

_FIRST_JOB = r"""
import time
t0 = time.perf_counter()
import asyncio, json, sys
sys.path.insert(0, {root!r})
import aqrt
t_import = time.perf_counter()
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp
qc = QuantumCircuit(2)
qc.h(0)
qc.cx(0, 1)
pub = (qc, SparsePauliOp("ZZ"))

async def main():
    async with aqrt.Session(service=aqrt.LocalService()) as session:
        t_open = time.perf_counter()
        first = await aqrt.Estimator(mode=session).run([pub])
        t_first = time.perf_counter()
        await aqrt.Estimator(mode=session).run([pub])
        t_second = time.perf_counter()
    return t_open, t_first, t_second, float(first[0].data.evs)

t_build = time.perf_counter()
t_open, t_first, t_second, ev = asyncio.run(main())
print(json.dumps({{
    "import_aqrt_s": t_import - t0,
    "session_open_s": t_open - t_build,
    "first_job_s": t_first - t_open,
    "second_job_s": t_second - t_first,
    "in_process_total_s": t_first - t0,
    "ev": ev,
}}))
"""

_WARMUP = r"""
import time
t0 = time.perf_counter()
import json, sys
sys.path.insert(0, {root!r})
import aqrt
t_aqrt = time.perf_counter()
import aqrt.engine
from aqrt.backends.local import engine_pubs as engine_path
t_import = time.perf_counter()
aqrt.engine.warmup()
t_warm = time.perf_counter()
print(json.dumps({{"import_aqrt_s": t_aqrt - t0, "import_engine_s": t_import - t_aqrt, "warmup_s": t_warm - t_import}}))
"""

_MEMORY = r"""
import json, resource, sys, time
sys.path.insert(0, {bench!r})
import engine as bench
import aqrt.engine
from aqrt.backends.local import engine_pubs as engine_path
aqrt.engine.warmup()

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return None

circuit = bench.hardware_efficient_ansatz({n}, {layers})
pub = (circuit, bench.ising_observable({n}), bench.wide_values(circuit))
before_rss, before_hwm = status("VmRSS"), status("VmHWM")
elapsed, ev = bench.aqrt_estimate(pub)
print(json.dumps({{
    "rss_before": before_rss,
    "hwm_before": before_hwm,
    "vm_hwm": status("VmHWM"),
    "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "job_s": elapsed,
    "ev": float(ev),
}}))
"""


def _subprocess_json(code: str, env_extra: dict[str, str] | None = None, timeout: float = 300) -> dict[str, Any]:
    env = {**os.environ, **(env_extra or {})}
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=timeout, cwd=REPO_ROOT
    )
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"probe failed (exit {out.returncode}): {out.stderr.strip()[-2000:]}")
    data = json.loads(out.stdout.strip().splitlines()[-1])
    data["process_wall_s"] = wall
    return data


def run_cold(cfg: dict[str, Any]) -> dict[str, Any]:
    root = str(REPO_ROOT)
    print("  cold: first job (numba cache present)", file=sys.stderr, flush=True)
    first = _subprocess_json(_FIRST_JOB.format(root=root))
    print("  cold: kernels alone (numba cache present)", file=sys.stderr, flush=True)
    warm = _subprocess_json(_WARMUP.format(root=root))
    result: dict[str, Any] = {"first_job_cached": first, "warmup_cached": warm}
    if cfg["cold_compile"]:
        with tempfile.TemporaryDirectory(prefix="aqrt-numba-cold-") as cache_dir:
            print("  cold: kernels with an empty numba cache (full compile)", file=sys.stderr, flush=True)
            result["warmup_cold_compile"] = _subprocess_json(_WARMUP.format(root=root), {"NUMBA_CACHE_DIR": cache_dir})
    return result


def run_memory(cfg: dict[str, Any]) -> dict[str, Any]:
    n = max(cfg["wide_n"])
    print(f"  memory: aqrt wide job at n={n} in a fresh process", file=sys.stderr, flush=True)
    data = _subprocess_json(_MEMORY.format(bench=str(Path(__file__).resolve().parent), n=n, layers=cfg["wide_layers"]))
    state = (1 << n) * 16
    data["n"] = n
    data["state_bytes"] = state
    data["peak_over_state"] = data["vm_hwm"] / state
    data["growth_over_state"] = (data["vm_hwm"] - data["rss_before"]) / state
    return data


# -- facts and output -------------------------------------------------------------------------------


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_facts() -> dict[str, Any]:
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        affinity = None
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = _git("status", "--porcelain", "--", "aqrt")
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        memory = None
    import numba

    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "cpu_model": _cpu_model(),
        "memory_gib": None if memory is None else round(memory / 2**30, 1),
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "aqrt": aqrt.__version__,
        "aqrt_git": None if commit is None else commit + (" (aqrt/ modified)" if dirty else " (aqrt/ clean)"),
        "qiskit": qiskit.__version__,
        "qiskit_aer": _version("qiskit-aer"),
        "pennylane": _version("pennylane"),
        "pennylane_lightning": _version("pennylane_lightning"),
        "qsimcirq": _version("qsimcirq"),
        "numba": numba.__version__,
        "numpy": np.__version__,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _fmt_row_times(entry: dict[str, Any]) -> str:
    share = entry.get("others_share")
    others = "" if share is None else f"{100 * share:.0f}%"
    return f"{others:>7}{entry['runs']:>5}{entry['best_s']:>10.3f}{entry['median_s']:>10.3f}"


def _contention(section: dict[str, Any]) -> str:
    cpu = section.get("cpu")
    if not cpu:
        return ""
    return (
        f"  [section wall {cpu['wall_s']} s; other processes used {cpu['others_cpu_s']} CPU-s "
        f"= {100 * cpu['others_share']:.0f}% of the machine meanwhile]"
    )


def format_wide(section: dict[str, Any]) -> list[str]:
    lines = [
        f"wide: hardware-efficient ansatz (ry, rz on every qubit; cx ladder) x {section['layers']} layers, "
        "1 binding, H = sum Z_i + sum Z_i Z_i+1" + _contention(section)
    ]
    header = (
        f"{'n':>3}{'gates':>7}  {'contender':<30}{'others':>7}{'runs':>5}{'best s':>10}{'median s':>10}"
        f"{'t / t_aqrt':>12}{'ev':>20}"
    )
    lines += [header, "-" * len(header)]
    previous = None
    for entry in section["rows"]:
        if previous is not None and entry["n"] != previous:
            lines.append("")
        previous = entry["n"]
        lead = f"{entry['n']:>3}{entry['gates']:>7}  {entry['contender']:<30}"
        if "skipped" in entry:
            lines.append(lead + f"  skipped: {entry['skipped']}")
            continue
        lines.append(lead + _fmt_row_times(entry) + f"{entry['x_aqrt']:>11.2f}x{entry['ev']:>20.12f}")
    lines.append("")
    for n, peer in section["summary"]["fastest_peer"].items():
        ratio = peer["peer_over_aqrt"]
        verdict = f"aqrt {ratio:.2f}x faster" if ratio >= 1 else f"aqrt {1 / ratio:.2f}x slower"
        lines.append(
            f"n={n}: fastest peer {peer['contender']} {peer['best_s']:.3f} s; fastest peer / aqrt = "
            f"{ratio:.2f}x ({verdict})"
        )
    for n, entry in section["summary"].get("qsim", {}).items():
        single = entry["qsim_over_aqrt_complex64"]
        lines.append(
            f"n={n}: qsim (float32) / aqrt complex128 = {entry['qsim_over_aqrt']:.2f}x; "
            f"qsim / aqrt complex64 = " + ("-" if single is None else f"{single:.2f}x")
        )
    big = section["summary"]["largest"]
    bw = section["summary"]["bandwidth"]
    lines.append(
        f"aqrt at n={big['n']}: {big['aqrt_best_s']:.3f} s / {big['gates']} gates (before fusion) = "
        f"{big['aqrt_s_per_gate'] * 1e3:.2f} ms per gate"
    )
    lines.append(
        f"copy bandwidth ({bw['array_mib']} MiB complex128, bytes = read + write, best of 5): "
        f"np.copyto {bw['gb_per_s_numpy']:.1f} GB/s; numba prange copy on {bw['numba_threads']} threads "
        f"{bw['gb_per_s_parallel']:.1f} GB/s"
    )
    lines.append(
        f"floor per pass over the 2^{big['n']} state (read + write {2 * big['state_bytes'] >> 20} MiB): "
        f"{big['floor_per_pass_s'] * 1e3:.1f} ms at np.copyto bandwidth, "
        f"{big['floor_per_pass_s_parallel'] * 1e3:.1f} ms at the parallel copy's"
    )
    lines.append(
        f"aqrt n={big['n']} time = {big['passes']:.0f} passes at the np.copyto floor "
        f"({big['passes_per_gate']:.2f} per gate), {big['passes_parallel']:.0f} at the parallel floor "
        f"({big['passes_parallel'] / big['gates']:.2f} per gate)"
    )
    return lines


def _format_per_n_table(
    section: dict[str, Any], title: str, count: tuple[str, str, int], rate: tuple[str, str, int, str], over: str
) -> list[str]:
    """The sweep and loop tables: a row per n and contender, ``count`` = (key, header, width) of
    the per-row count column, ``rate`` = (key, header, width, format) of the speed column."""
    key, heading, width = count
    rate_key, rate_heading, rate_width, rate_format = rate
    lines = [title + _contention(section)]
    header = (
        f"{'n':>3}{'gates':>7}{heading:>{width}}  {'contender':<30}{'others':>7}{'runs':>5}{'best s':>10}"
        f"{'median s':>10}{rate_heading:>{rate_width}}{'aqrt speedup':>14}{'max |dev|':>11}"
    )
    lines += [header, "-" * len(header)]
    previous = None
    for entry in section["rows"]:
        if previous is not None and entry["n"] != previous:
            lines.append("")
        previous = entry["n"]
        lead = f"{entry['n']:>3}{entry['gates']:>7}{entry[key]:>{width}}  {entry['contender']:<30}"
        if "skipped" in entry:
            lines.append(lead + f"  skipped: {entry['skipped']}")
            continue
        lines.append(
            lead + _fmt_row_times(entry) + f"{entry[rate_key]:>{rate_width}{rate_format}}"
            f"{entry['aqrt_speedup']:>13.2f}x{entry['max_deviation_vs_aqrt']:>11.1e}"
        )
    lines.append(f"(aqrt speedup = contender's time / aqrt's; max |dev| = largest |ev - aqrt ev| over all {over})")
    return lines


def format_sweep(section: dict[str, Any]) -> list[str]:
    title = (
        f"sweep: hardware-efficient ansatz x {section['layers']} layers, one PUB of many bindings, "
        "random 20-term Pauli observable"
    )
    return _format_per_n_table(
        section, title, ("bindings", "bindings", 10), ("bindings_per_s", "bindings/s", 12, ".0f"), "bindings"
    )


def format_loop(section: dict[str, Any]) -> list[str]:
    title = (
        f"loop: the sweep's ansatz x {section['layers']} layers and observable, one binding per job, "
        "each job awaited before the next"
    )
    return _format_per_n_table(section, title, ("jobs", "jobs", 6), ("ms_per_job", "ms/job", 9, ".2f"), "jobs")


def format_sampling(section: dict[str, Any]) -> list[str]:
    first = section["rows"][0]
    lines = [
        f"sampling: n={first['n']} GHZ + seeded ry, rx layer, measure_all, {first['shots']} shots"
        + _contention(section)
    ]
    header = (
        f"{'contender':<30}{'others':>7}{'runs':>5}{'best s':>10}{'median s':>10}{'aqrt speedup':>14}"
        f"{'|z| marg.':>11}{'|z| top10':>11}{'TVD exact':>11}"
    )
    lines += [header, "-" * len(header)]
    for entry in section["rows"]:
        lead = f"{entry['contender']:<30}"
        if "skipped" in entry:
            lines.append(lead + f"  skipped: {entry['skipped']}")
            continue
        lines.append(
            lead + _fmt_row_times(entry) + f"{entry['aqrt_speedup']:>13.2f}x{entry['max_abs_z_marginal']:>11.1f}"
            f"{entry['max_abs_z_top10']:>11.1f}{entry['tvd_vs_exact']:>11.3f}"
        )
    lines.append(
        f"(|z| = largest deviation from the exact per-qubit marginals / 10 most likely outcomes, in standard "
        f"errors; TVD of an ideal sampler at these shots: {section['ideal_tvd_at_these_shots']:.3f})"
    )
    if "max_abs_z_marginal_aqrt_vs_aer" in section:
        lines.append(f"aqrt vs Aer per-qubit marginals: max |z| = {section['max_abs_z_marginal_aqrt_vs_aer']:.1f}")
    return lines


def format_cold(section: dict[str, Any]) -> list[str]:
    first = section["first_job_cached"]
    warm = section["warmup_cached"]
    lines = ["cold start (fresh processes)" + _contention(section)]
    lines.append(
        f"first job, numba cache present: process wall {first['process_wall_s']:.2f} s; in process "
        f"{first['in_process_total_s']:.2f} s = import aqrt {first['import_aqrt_s']:.2f} s + session open "
        f"{first['session_open_s'] * 1e3:.1f} ms + first job {first['first_job_s']:.2f} s "
        f"(second job {first['second_job_s'] * 1e3:.1f} ms)"
    )
    lines.append(
        f"kernels alone, cache present: import aqrt {warm['import_aqrt_s']:.2f} s, then import numba + "
        f"engine {warm['import_engine_s']:.2f} s, warmup() {warm['warmup_s']:.2f} s "
        f"(process wall {warm['process_wall_s']:.2f} s)"
    )
    if "warmup_cold_compile" in section:
        cold = section["warmup_cold_compile"]
        lines.append(
            f"kernels alone, empty numba cache (full compile): import numba + engine "
            f"{cold['import_engine_s']:.2f} s, warmup() {cold['warmup_s']:.2f} s "
            f"(process wall {cold['process_wall_s']:.2f} s)"
        )
    return lines


def format_memory(section: dict[str, Any]) -> list[str]:
    mib = 1 << 20
    return [
        f"peak memory, aqrt wide job at n={section['n']} (fresh process; state {section['state_bytes'] / mib:.0f} MiB)"
        + _contention(section),
        (
            f"VmHWM {section['vm_hwm'] / mib:.0f} MiB = "
            f"{section['peak_over_state']:.2f}x the state; RSS before the job {section['rss_before'] / mib:.0f} MiB, "
            f"growth {(section['vm_hwm'] - section['rss_before']) / mib:.0f} MiB = {section['growth_over_state']:.2f}x "
            f"the state (job {section['job_s']:.2f} s)"
        ),
        "(VmHWM of the probe process; its ru_maxrss is not used: Linux carries the parent's peak across fork/exec)",
    ]


def targets(outcome: dict[str, Any]) -> list[dict[str, Any]]:
    """The "done means" figures of the engine-speed issue (#14), each against its goal."""
    found = []
    wide = outcome.get("wide")
    versus = outcome.get("versus")
    if versus and "skipped" not in versus:
        for n, ratios in versus_ratios(versus).items():
            for label, goal in (("aqrt Estimator", 1.5), (AQRT_SINGLE, 2.0)):
                if ratios[label] is not None:
                    found.append(
                        {
                            "what": f"wide n={n}: qsim / {label} (clean, interleaved)",
                            "value": ratios[label],
                            "goal": goal,
                        }
                    )
    elif wide:
        for n, entry in wide["summary"].get("qsim", {}).items():
            found.append(
                {"what": f"wide n={n}: qsim time / aqrt complex128 time", "value": entry["qsim_over_aqrt"], "goal": 1.5}
            )
            if entry["qsim_over_aqrt_complex64"] is not None:
                found.append(
                    {
                        "what": f"wide n={n}: qsim time / aqrt complex64 time",
                        "value": entry["qsim_over_aqrt_complex64"],
                        "goal": 2.0,
                    }
                )
    sweep = outcome.get("sweep")
    if sweep:
        for n, contender, goal in ((8, "Aer", 20.0), (8, NAIVE_SWEEP, 4.0), (12, "Aer", 10.0)):
            peer = next(
                (r for r in sweep["rows"] if r["n"] == n and r["contender"].startswith(contender) and "best_s" in r),
                None,
            )
            if peer is not None:
                found.append(
                    {
                        "what": f"sweep n={n}: aqrt bindings/s / {contender}'s",
                        "value": peer["aqrt_speedup"],
                        "goal": goal,
                    }
                )
    sampling = outcome.get("sampling")
    if sampling:
        for prefix, goal in (("Aer", 10.0), ("qulacs", 2.0)):
            peer = next((r for r in sampling["rows"] if r["contender"].startswith(prefix) and "best_s" in r), None)
            if peer is not None:
                found.append(
                    {
                        "what": f"sampling n={peer['n']}: {prefix} time / aqrt time",
                        "value": peer["aqrt_speedup"],
                        "goal": goal,
                    }
                )
    for entry in found:
        entry["met"] = entry["value"] >= entry["goal"]
    return found


def format_report(
    facts: dict[str, Any], config: dict[str, Any], outcome: dict[str, Any], *, show_targets: bool = False
) -> str:
    lines = [
        "aqrt numba statevector engine: simulation speed against Qiskit, Aer, Lightning, qsim and qulacs",
        f"date        {facts['date']}",
        (
            f"machine     {facts['cpu_count']} CPUs ({facts['cpus_usable']} usable), {facts['cpu_model']}, "
            f"{facts['memory_gib']} GiB; load average at start {facts['load_average_at_start']}"
        ),
        f"platform    {facts['platform']}",
        f"python      {facts['python']}",
        (
            f"versions    aqrt {facts['aqrt']} [{facts['aqrt_git']}], qiskit {facts['qiskit']}, qiskit-aer "
            f"{facts['qiskit_aer']}, pennylane {facts['pennylane']}, "
            f"pennylane-lightning {facts['pennylane_lightning']}, qsimcirq {facts.get('qsimcirq')}, "
            f"numba {facts['numba']}, numpy {facts['numpy']}"
        ),
        (
            f"config      {'quick' if config['quick'] else 'full'}; best of {config['repeat']} "
            f"(of {config['repeat_largest']} at the largest wide n); Qiskit/Lightning rows over {ONCE_OVER_S:g} s "
            f"timed once; seeds: wide {WIDE_SEED}, sweep {SWEEP_SEED}, observable {SWEEP_OBSERVABLE_SEED}, "
            f"rotations {SAMPLING_ROTATION_SEED}, shots {SHOTS_SEED}"
        ),
        (
            "others      column 'others': share of the machine's CPU time that other processes used while that row "
            "was timed (contention; rows above ~10% are not clean)"
        ),
        "",
    ]
    formatters = {
        "wide": format_wide,
        "versus": format_versus,
        "sweep": format_sweep,
        "loop": format_loop,
        "sampling": format_sampling,
        "cold": format_cold,
        "memory": format_memory,
    }
    for name in SECTIONS:
        if name in outcome:
            lines += formatters[name](outcome[name])
            lines.append("")
    found = targets(outcome) if show_targets else []
    if found:
        lines.append("targets")
        for entry in found:
            lines.append(
                f"  {entry['what']:<58} {entry['value']:>7.2f}x   goal >= {entry['goal']:g}x   "
                f"{'met' if entry['met'] else 'NOT MET'}"
            )
        lines.append("")
    disagreements = [d for name in SECTIONS for d in outcome.get(name, {}).get("disagreements", [])]
    if disagreements:
        lines += disagreements
    else:
        lines.append(
            f"values: expectation values agree with aqrt's within {EV_TOLERANCE:g} (single-precision rows "
            f"{SINGLE_EV_TOLERANCE:g}); sampled marginals and top outcomes within {Z_LIMIT:g} standard errors of exact"
        )
    return "\n".join(lines)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run (about a minute)")
    parser.add_argument("--only", metavar="SECTIONS", help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every figure as JSON")
    parser.add_argument(
        "--targets",
        action="store_true",
        help="also print the engine issue's goals (ratios against qsim, Aer and a naive loop), met or not; "
        "for the project's developers (the JSON always has them)",
    )
    args = parser.parse_args(argv)
    chosen = list(SECTIONS) if args.only is None else [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown or not chosen:
        parser.error(f"--only takes a comma-separated subset of {','.join(SECTIONS)}; got {args.only!r}")

    cfg = dict(QUICK if args.quick else FULL)
    facts = machine_facts()
    config = {
        **cfg,
        "quick": args.quick,
        "sections": chosen,
        "ev_tolerance": EV_TOLERANCE,
        "z_limit": Z_LIMIT,
        "once_over_s": ONCE_OVER_S,
    }
    runners = {
        "wide": run_wide,
        "versus": run_versus,
        "sweep": run_sweep,
        "loop": run_loop,
        "sampling": run_sampling,
        "cold": run_cold,
        "memory": run_memory,
    }
    outcome: dict[str, Any] = {}
    wall = time.perf_counter()
    for name in SECTIONS:
        if name in chosen:
            meter = CpuMeter()
            outcome[name] = runners[name](cfg)
            outcome[name]["cpu"] = meter.stop()
    config["wall_s"] = round(time.perf_counter() - wall, 1)
    facts["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(format_report(facts, config, outcome, show_targets=args.targets))
    print(f"(benchmark wall time {config['wall_s']} s; load average at end {facts['load_average_at_end']})")
    outcome["targets"] = targets(outcome)
    if args.json is not None:
        args.json.write_text(json.dumps(_jsonable({"machine": facts, "config": config, **outcome}), indent=2) + "\n")
        print(f"JSON written to {args.json}", file=sys.stderr)
    disagreements = [d for name in SECTIONS for d in outcome.get(name, {}).get("disagreements", [])]
    return 1 if disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
