"""The local backends: ``LocalService``, the statevector backend on this machine, and device
backends (a Qiskit device's target, simulated here without noise).

Modules, one job each:

- :mod:`.service` the service and its backends by name; :mod:`.backend` the Backend contract
  (and Qiskit's ``BackendV2``); :mod:`.device` a device backend; :mod:`.devices` the fake
  devices of qiskit-ibm-runtime by name; :mod:`.target` the statevector target; :mod:`.isa`
  IBM's ISA check; :mod:`.status` ``backend.status()``
- :mod:`.runner` runs a job in the calling thread (plan, run, assemble): the one interface
  executors, the synchronous adapters and benchmarks use
- :mod:`.executors` where a job runs (the engine worker thread; ``JobExecutor`` for others)
- :mod:`.chunks` a job's PUBs cut into self-contained chunks of bindings
- :mod:`.engine_pubs` PUBs on the numba engine; :mod:`.reference` PUBs on Qiskit's Statevector
- :mod:`.fingerprint`, :mod:`.memory`, :mod:`.cost`, :mod:`.seeding`, :mod:`.transpile`,
  :mod:`.options_report`, :mod:`.warmup`, :mod:`.errors`: one concern each
"""

from .backend import LocalBackend
from .device import DeviceBackend
from .executors import JobExecutor, WorkerThread
from .runner import LocalJobRunner
from .service import LocalService
from .status import BackendStatus

__all__ = [
    "BackendStatus",
    "DeviceBackend",
    "JobExecutor",
    "LocalBackend",
    "LocalJobRunner",
    "LocalService",
    "WorkerThread",
]
