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


def test_warmup_compiles_every_public_kernel_for_each_precision() -> None:
    out = _run(
        """
        import json
        from aqrt.engine import warmup
        from aqrt.engine.kernels import apply, apply_par, interpreter, reductions, registry

        modules = (apply, apply_par, interpreter, reductions)
        kernels = {f"{m.__name__}.{n}": getattr(m, n) for m in modules for n in m.__all__}
        assert {row.kernel for row in registry.OP_KERNELS} <= set(kernels.values())
        report = {}
        for dtype in ("complex64", "complex128"):
            warmup(dtype)
            report[dtype] = sorted(
                name for name, kernel in kernels.items() if not any(dtype in str(s) for s in kernel.signatures)
            )
        print(json.dumps(report))
        """
    )
    assert json.loads(out) == {"complex64": [], "complex128": []}


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
