"""The local backend: ``LocalService`` and the statevector backend on this machine.

Modules, one job each:

- :mod:`.service` the service and its backends by name; :mod:`.backend` the Backend contract
- :mod:`.runner` runs a job in the calling thread (plan, run, assemble): the one interface
  executors, the synchronous adapters and benchmarks use
- :mod:`.executors` where a job runs (the engine worker thread; ``JobExecutor`` for others)
- :mod:`.chunks` a job's PUBs cut into self-contained chunks of bindings
- :mod:`.engine_pubs` PUBs on the numba engine; :mod:`.reference` PUBs on Qiskit's Statevector
- :mod:`.fingerprint`, :mod:`.memory`, :mod:`.cost`, :mod:`.seeding`, :mod:`.transpile`,
  :mod:`.options_report`, :mod:`.warmup`, :mod:`.errors`: one concern each
"""

from .backend import LocalBackend
from .executors import JobExecutor, WorkerThread
from .runner import LocalJobRunner
from .service import LocalService

__all__ = ["JobExecutor", "LocalBackend", "LocalJobRunner", "LocalService", "WorkerThread"]
