"""The README's example runs and is exact; the public surface stays in place; import stays cheap."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from qiskit.circuit.random import random_circuit
from qiskit.quantum_info import SparsePauliOp, Statevector

import aqrt

ROOT = Path(__file__).resolve().parents[2]


def test_main_example_prints_the_exact_expectation_value() -> None:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "estimator_session.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    match = re.search(r"^expectation value: ([-0-9.e]+)$", completed.stdout, re.MULTILINE)
    assert match, completed.stdout
    circuit = random_circuit(2, 2, seed=1).decompose(reps=1)
    exact = Statevector(circuit).expectation_value(SparsePauliOp("IY")).real
    assert abs(float(match.group(1)) - exact) < 1e-12
    assert "observable: SparsePauliOp(['IY']" in completed.stdout
    assert "options_not_applied" in completed.stdout and "resilience_level" in completed.stdout


def test_public_names_are_exported_and_exist() -> None:
    assert sorted(aqrt.__all__) == sorted(set(aqrt.__all__))
    for name in aqrt.__all__:
        assert hasattr(aqrt, name), name
    for name in ("Session", "Batch", "Estimator", "Sampler", "Options", "LocalService", "Job", "JobStatus"):
        assert name in aqrt.__all__


def test_error_tree_subclasses_stdlib_meanings() -> None:
    assert issubclass(aqrt.InvalidPubError, ValueError)
    assert issubclass(aqrt.InvalidTimeSpecError, ValueError)
    assert issubclass(aqrt.JobTimeoutError, TimeoutError)
    assert issubclass(aqrt.ResultTimeoutError, TimeoutError)
    assert issubclass(aqrt.BackendNotFoundError, LookupError)
    for name in aqrt.errors.__all__:
        kind = getattr(aqrt.errors, name)
        assert issubclass(kind, aqrt.AqrtError) or issubclass(kind, UserWarning), name
        assert name in aqrt.errors.__doc__, f"{name} is missing from the tree drawn in errors.py"
    assert issubclass(aqrt.OptionsNotAppliedWarning, UserWarning)


def test_importing_aqrt_does_not_load_numba_or_aiohttp() -> None:
    code = "import sys, aqrt; print(sorted(m for m in ('numba', 'aiohttp') if m in sys.modules))"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert completed.stdout.strip() == "[]"
