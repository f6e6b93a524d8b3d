"""Estimator, Sampler and Executor (IBM's ``executor`` program), async; EngineEstimator /
EngineSampler (Qiskit's synchronous BaseEstimatorV2 / BaseSamplerV2 over the local engine) and
their EngineJob."""

from .estimator import Estimator
from .executor import Executor
from .sampler import Sampler
from .sync import EngineEstimator, EngineJob, EngineSampler

__all__ = ["EngineEstimator", "EngineJob", "EngineSampler", "Estimator", "Executor", "Sampler"]
