"""How another process makes the same local backend: a :class:`BackendRecipe`.

An executor that runs whole jobs in other processes (:class:`aqrt.distributed.ClusterJobs`)
sends each job with its backend's recipe (the ``LocalService`` settings and the backend's
name, a few picklable fields) rather than the backend itself (which holds a device, its
target and noise model, and a service): the worker makes the backend from the recipe once per
process (:func:`~.service.backend_from_recipe`) and keeps it, so a device's target and noise
model are built once per worker.

A backend has a recipe when another process can make it by name: ``aqrt_statevector`` and the
fake devices of ``qiskit_ibm_runtime.fake_provider`` of a ``LocalService``. A device backend of
any other Qiskit backend (a ``GenericBackendV2``), or one given its own noise model, has none:
its jobs run in the process that holds it.
"""

from __future__ import annotations

import dataclasses

__all__ = ["BackendRecipe"]


@dataclasses.dataclass(frozen=True)
class BackendRecipe:
    """A local backend as another process makes it: ``LocalService(engine=..., dtype=...,
    max_qubits=..., noise=..., chunk_bindings=...).backend(name)``
    (:func:`~.service.backend_from_recipe`)."""

    name: str
    engine: str
    dtype: str
    max_qubits: int | None
    noise: bool
    chunk_bindings: int | None
