"""Numba kernels of the statevector engine, split by concern.

- :mod:`.bits`         index arithmetic shared by the kernels
- :mod:`.apply`        serial gate application (one op on a whole state)
- :mod:`.apply_par`    amplitude-parallel gate application (one op on a wide state)
- :mod:`.reductions`   Pauli term values and probabilities of a state
- :mod:`.interpreter`  whole programs per kernel call: ``run_program``, sweeps over bindings,
  cache-blocked groups
- :mod:`.registry`     the op-kernel table (op kind -> kernel, serial and parallel), read by the
  non-jitted dispatcher, the warm-up and the tests

Conventions:

- A state of n qubits is a C-contiguous complex128 (or complex64) array of length 2**n; qubit q
  is bit q of the amplitude index (Qiskit's little-endian order).
- A k-qubit operator on qubits (q_0, ..., q_{k-1}) is a (2**k, 2**k) matrix whose row/column
  index has q_j as bit j (Qiskit's convention). ``qubits`` arrays are in that gate order, int64.
- Matrices and diagonals have the state's dtype. Kernels update the state in place.
- ``*_par`` kernels are parallel over amplitudes (for wide states, called from the engine worker
  only); ``run_program`` is serial and is the unit of parallelism over bindings in sweeps.
- Programs travel as one :class:`~aqrt.engine.ops.OpArrays` record plus their entry buffers
  (format in :mod:`aqrt.engine.ops`).
- A Pauli term is (x_mask, z_mask): its value is sum_i (-1)^popcount(i & z) conj(psi[i ^ x]) psi[i];
  the caller folds Y phases and coefficients into the term's weight.
- Every kernel is ``@njit(cache=True)``: compiled once per signature, machine code cached on disk.
"""
