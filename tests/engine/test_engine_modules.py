"""The engine's module layout holds: its numpy-only modules do not import numba, and the warm-up
(driven by the op-kernel table) compiles every public kernel for each precision."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
from qiskit import QuantumCircuit

from aqrt.engine import fused_width, lower_circuit


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_lowering_and_the_other_numpy_modules_do_not_import_numba() -> None:
    out = _run(
        """
        import sys
        import numpy as np
        import aqrt.engine.lowering
        from aqrt.engine import blocking, gates, observables, ops
        from aqrt.engine.lowering import LoweredCircuit
        program = LoweredCircuit(2, [], ()).bind(np.zeros((3, 0)))
        blocking.schedule_groups(program)
        print("numba" in sys.modules, program.num_bindings)
        """
    )
    assert out.split() == ["False", "3"]


def test_warmup_compiles_every_kernel_production_calls_for_each_precision() -> None:
    """After warmup(), every public kernel has a signature for each dtype, and running programs
    through every entry point of ``simulate`` (small and wide paths, an op too wide for a cache
    block, serial paths) compiles nothing more: warm-up passes production's argument types."""
    out = _run(
        """
        import json
        import numpy as np
        from numba.core.dispatcher import Dispatcher
        from qiskit import QuantumCircuit
        from qiskit.circuit.library import MCXGate, UnitaryGate
        from qiskit.quantum_info import random_unitary
        from aqrt.engine import lower_circuit, simulate, warmup
        from aqrt.engine.kernels import apply, apply_par, bits, interpreter, reductions, registry

        modules = (apply, apply_par, interpreter, reductions)
        public = {f"{m.__name__}.{n}": getattr(m, n) for m in modules for n in m.__all__}
        every = [v for m in (*modules, bits) for v in vars(m).values() if isinstance(v, Dispatcher)]
        assert {row.kernel for row in registry.OP_KERNELS} <= set(public.values())
        report = {}
        for dtype in ("complex64", "complex128"):
            warmup(dtype)
            report[dtype] = sorted(
                name for name, kernel in public.items() if not any(dtype in str(s) for s in kernel.signatures)
            )
        before = {id(k): len(k.signatures) for k in every}

        n = 12
        circuit = QuantumCircuit(n)
        for q in range(n):
            circuit.ry(0.1 * q, q)
        circuit.cx(0, n - 1)
        circuit.cx(n - 1, 0)
        circuit.rzz(0.3, 2, 9)
        circuit.swap(3, 10)
        circuit.append(MCXGate(3), [1, 8, 11, 5])
        circuit.append(UnitaryGate(random_unitary(16, seed=1)), [8, 9, 10, 11])  # too wide for a block
        x = np.array([0, 3, 5], dtype=np.int64)
        z = np.array([1, 3, 0], dtype=np.int64)
        lowered = lower_circuit(circuit)
        for wide_from in (simulate.WIDE_QUBITS, n):  # the small path, then the wide one at n = 12
            simulate.WIDE_QUBITS = wide_from
            for dtype in (np.complex64, np.complex128):
                program = lowered.bind(np.zeros((3, 0)), dtype=dtype)
                simulate.term_values(program, x, z)
                simulate.run_serial(program, x, z)
                simulate.probabilities(program, 0, 3)
                simulate.serial_probabilities(program, 0, 3)
                simulate.final_state(program, 1, parallel=False)
                simulate.final_state(program, 1, parallel=True)
        compiled = sorted(k.__name__ for k in every if len(k.signatures) != before[id(k)])
        print(json.dumps({"missing": report, "compiled_after_warmup": compiled}))
        """
    )
    assert json.loads(out) == {"missing": {"complex64": [], "complex128": []}, "compiled_after_warmup": []}


def test_bind_defaults_to_the_fused_width_production_uses() -> None:
    from aqrt.backends.local import engine_pubs

    assert engine_pubs.fused_width is fused_width
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.rz(0.3, 1)
    circuit.cx(0, 1)
    circuit.ry(0.2, 0)
    lowered = lower_circuit(circuit)
    values = np.zeros((1, 0))
    by_default = lowered.bind(values)
    as_production = lowered.bind(values, max_fused_qubits=fused_width(circuit.num_qubits))
    assert by_default.num_ops == as_production.num_ops
    np.testing.assert_array_equal(by_default.ops.kinds, as_production.ops.kinds)
    np.testing.assert_array_equal(by_default.static_buffer, as_production.static_buffer)
    assert lowered.bind(values, max_fused_qubits=2).num_ops != by_default.num_ops  # the default matters
